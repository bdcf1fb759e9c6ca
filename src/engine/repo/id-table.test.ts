/**
 * IdTable lookups: the search starts where an id's bits place it in its
 * bucket and widens from there, so it must find every id, and no other,
 * whether ids are uniform (as BLAKE3's are) or crowded where the guess is
 * wrong; seal's numbers must be dense and in id order.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ID_BYTES, IdTable } from './id-table.js';

/** ids makes n distinct ids; `crowd` fixes their first `crowd` bytes so they share a bucket and most of the bits the search guesses from. */
function ids(n: number, crowd = 0): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  const prefix = crypto.randomBytes(crowd);
  while (out.length < n) {
    const id = crypto.randomBytes(ID_BYTES);
    prefix.copy(id);
    const key = id.toString('hex');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(id);
  }
  return out;
}

function table(all: readonly Buffer[]): IdTable {
  const t = new IdTable(4);
  for (const id of all) {
    const ref = t.insert(id);
    expect(ref).not.toBeNull();
    ref!.buf.writeUInt32LE(all.indexOf(id) >>> 0, ref!.at + ID_BYTES);
  }
  return t;
}

describe('IdTable lookups', () => {
  for (const [what, crowd] of [
    ['uniform ids', 0],
    ['ids crowded in one bucket, the guessed bits alike', 4],
    ['ids crowded in one bucket, differing only in their last bytes', 28],
  ] as const) {
    it(`finds every id and no other: ${what}`, () => {
      const all = ids(3000, crowd);
      const [held, absent] = [all.slice(0, 2000), all.slice(2000)];
      const t = table(held);
      for (const id of held) expect(t.has(id)).toBe(true);
      for (const id of absent) expect(t.has(id)).toBe(false);
      // Found before and after the tails are merged (seal merges them).
      t.seal();
      const sorted = [...held].sort(Buffer.compare);
      const src = Buffer.concat([...sorted, ...absent]);
      for (let i = 0; i < sorted.length; i++) {
        expect(t.ordinal(src, i * ID_BYTES)).toBe(i);
        expect(t.foundBuf!.readUInt32LE(t.foundAt + ID_BYTES)).toBe(held.indexOf(sorted[i]!));
      }
      for (let i = sorted.length; i < sorted.length + absent.length; i++) expect(t.ordinal(src, i * ID_BYTES)).toBe(-1);
    });
  }

  it('finds the first and last ids of a bucket and misses just outside them', () => {
    const low = Buffer.alloc(ID_BYTES, 0);
    const high = Buffer.alloc(ID_BYTES, 0xff);
    const mid = ids(500).map((id) => {
      id[0] = 0x00; // bucket 0 (the first 12 bits zero) holds these, low and top
      id[1]! &= 0x0f;
      return id;
    });
    const top = Buffer.from(high);
    top[0] = 0x00;
    top[1] = 0x0f; // still bucket 0: its first 12 bits are zero
    const t = table([low, top, ...mid.filter((id) => !id.equals(low) && !id.equals(top))]);
    t.seal();
    expect(t.ordinal(low, 0)).toBe(0);
    expect(t.ordinal(top, 0)).toBe(t.size - 1);
    const belowTop = Buffer.from(top);
    belowTop[ID_BYTES - 1] = 0xfe;
    expect(t.has(belowTop)).toBe(false);
    const aboveLow = Buffer.from(low);
    aboveLow[ID_BYTES - 1] = 1;
    expect(t.has(aboveLow)).toBe(false);
  });
});
