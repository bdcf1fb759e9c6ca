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

describe('IdTable appends', () => {
  /** records lists the table's records as hex id and payload word, in order. */
  const records = (t: IdTable): [string, number][] =>
    [...t.records()].map(({ buf, at }) => [buf.toString('hex', at, at + ID_BYTES), buf.readUInt32LE(at + ID_BYTES)]);

  for (const [what, crowd] of [
    ['uniform ids', 0],
    ['ids sharing their first four bytes (compared whole)', 4],
    ['ids differing only in their last bytes', 28],
  ] as const) {
    it(`settle keeps the earliest record of each id, as inserting one by one does: ${what}`, () => {
      const distinct = ids(3000, crowd);
      // Each id up to three times, in a shuffled order; the payload is the arrival number.
      const arrivals: Buffer[] = [];
      for (let i = 0; i < distinct.length; i++) for (let k = 0; k <= i % 3; k++) arrivals.push(distinct[i]!);
      for (let i = arrivals.length - 1; i > 0; i--) {
        const j = crypto.randomInt(i + 1);
        [arrivals[i], arrivals[j]] = [arrivals[j]!, arrivals[i]!];
      }
      // Some inserted before the appends: those keep their records over any appended copy.
      const before = arrivals.slice(0, 500);
      const later = arrivals.slice(500);
      const inserted = new IdTable(4);
      const appended = new IdTable(4);
      for (const [i, id] of before.entries()) {
        for (const t of [inserted, appended]) {
          const ref = t.insert(id);
          if (ref) ref.buf.writeUInt32LE(i, ref.at + ID_BYTES);
        }
      }
      const src = Buffer.concat(later);
      for (let i = 0; i < later.length; i++) {
        const ref = inserted.insert(later[i]!);
        if (ref) ref.buf.writeUInt32LE(before.length + i, ref.at + ID_BYTES);
        const at = appended.append(src, i * ID_BYTES);
        appended.appendedBuf!.writeUInt32LE(before.length + i, at + ID_BYTES);
      }
      expect(appended.size).toBe(new Set(before.map((b) => b.toString('hex'))).size + later.length);
      const kept: number[] = [];
      appended.settle((buf, at) => kept.push(buf.readUInt32LE(at + ID_BYTES)));
      expect(appended.size).toBe(distinct.length);
      expect(records(appended)).toEqual(records(inserted));
      // `kept` saw each appended record that stayed, and no other.
      const fromAppends = records(inserted)
        .map(([, n]) => n)
        .filter((n) => n >= before.length);
      expect(kept.sort((a, b) => a - b)).toEqual(fromAppends.sort((a, b) => a - b));
      for (const id of distinct) expect(appended.has(id)).toBe(true);
      for (const id of ids(200, crowd)) expect(appended.has(id)).toBe(distinct.some((d) => d.equals(id)));
      // The table takes inserts again, and refuses an id it holds.
      expect(appended.insert(distinct[0]!)).toBeNull();
    });
  }

  it('cannot be searched, listed, sealed or inserted into before it is settled', () => {
    const t = new IdTable(0);
    const [a, b] = ids(2);
    t.insert(a!);
    t.append(b!, 0);
    expect(() => t.has(a!)).toThrow(/not yet settled/);
    expect(() => t.insert(ids(1)[0]!)).toThrow(/not yet settled/);
    expect(() => t.seal()).toThrow(/not yet settled/);
    expect(() => [...t.records()]).toThrow(/not yet settled/);
    t.settle();
    expect(t.has(a!) && t.has(b!)).toBe(true);
    expect(t.size).toBe(2);
  });
});
