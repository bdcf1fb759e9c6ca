/**
 * FileReader reads an extent of at least one block with O_DIRECT where the
 * file system allows it (the temporary directory here: ext4 or tmpfs), with
 * the bytes a buffered read returns: whole aligned lengths, the end of a
 * file or of a data extent at any offset, holes skipped, a file truncated
 * while it is read captured as what could be read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKER, resolveGear } from '../chunker/gear.js';
import type { ContentRef } from '../format/tree.js';
import { native } from '../native.js';
import { prng, tempDir } from '../testing.js';
import { ProgressTracker } from '../util/progress.js';
import { DIRECT_ALIGN, FileReader, readDirect } from './file-reader.js';

const MiB = 1024 * 1024;
const BLOCK = 8 * MiB;
const O_DIRECT = fs.constants.O_DIRECT;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = tempDir('kova-file-reader-');
  dirs.push(d);
  return d;
}

/** openFlags: the file status flags of `fd`, as the kernel reports them. */
function openFlags(fd: number): number {
  const line = fs
    .readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags:'));
  return parseInt(line!.split(/\s+/)[1]!, 8);
}

/**
 * read reads `file` with a FileReader; returns its content, the blobs it
 * stored (into `blobs`, which may hold some already), how many blobs it
 * handed to saveBlob, and the bytes read each way. `afterFirstBlock` runs
 * once the first block is read (the next read is then in flight).
 */
async function read(file: string, size: number, afterFirstBlock?: () => void, blobs = new Map<string, Buffer>()) {
  const bytes = { direct: 0, buffered: 0 };
  let saved = 0;
  const reader = new FileReader({
    gear: resolveGear({ ...DEFAULT_CHUNKER, seed: '0123456789abcdef' }),
    saveBlob: (_type, raw, id) => {
      expect(native.hash(raw).toString('hex')).toBe(id);
      saved++;
      blobs.set(id, Buffer.from(raw)); // raw is a view of a block that is reused
      return Promise.resolve();
    },
    hasBlob: (id) => blobs.has(id),
    progress: new ProgressTracker(undefined),
    checkAbort: () => undefined,
    onRead: (n, direct) => {
      if (bytes.direct + bytes.buffered === 0) afterFirstBlock?.();
      bytes[direct ? 'direct' : 'buffered'] += n;
    },
  });
  const fd = fs.openSync(file, 'r');
  try {
    const got = await reader.read(fd, size);
    // Direct reads are switched off again once the file is read.
    expect(openFlags(fd) & O_DIRECT).toBe(0);
    return { ...got, blobs, bytes, saved };
  } finally {
    fs.closeSync(fd);
  }
}

/** assemble rebuilds the bytes a content list describes (holes as zeros). */
function assemble(content: readonly ContentRef[], blobs: Map<string, Buffer>): Buffer {
  return Buffer.concat(content.map((r) => (r.id === null ? Buffer.alloc(r.length) : blobs.get(r.id)!)));
}

describe('direct reads', () => {
  it('sets and clears O_DIRECT on an open file, and reads only aligned buffers then', async () => {
    const file = path.join(scratch(), 'f');
    fs.writeFileSync(file, prng(1, 3 * DIRECT_ALIGN));
    const fd = fs.openSync(file, 'r');
    try {
      expect(native.setDirect(fd, true)).toBe(true);
      expect(openFlags(fd) & O_DIRECT).toBe(O_DIRECT);
      // An aligned buffer reads; the same read one byte off is refused, and readDirect says so.
      const raw = Buffer.allocUnsafeSlow(4 * DIRECT_ALIGN);
      const at = native.alignOffset(raw);
      expect(at).toBeLessThan(DIRECT_ALIGN);
      const aligned = raw.subarray(at, at + 3 * DIRECT_ALIGN);
      expect(fs.readSync(fd, aligned, 0, aligned.length, 0)).toBe(aligned.length);
      expect(aligned.equals(fs.readFileSync(file))).toBe(true);
      expect(() => fs.readSync(fd, raw.subarray(at + 1), 0, DIRECT_ALIGN, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(await readDirect(fd, raw.subarray(at + 1), DIRECT_ALIGN, 0)).toBeNull();
      expect(native.setDirect(fd, false)).toBe(true);
      expect(openFlags(fd) & O_DIRECT).toBe(0);
      expect(fs.readSync(fd, raw.subarray(at + 1), 0, DIRECT_ALIGN, 0)).toBe(DIRECT_ALIGN);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('reports false on a file system without direct I/O', () => {
    const fd = fs.openSync('/proc/self/stat', 'r');
    try {
      expect(native.setDirect(fd, true)).toBe(false);
      expect(openFlags(fd) & O_DIRECT).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('reads an extent of whole blocks and an unaligned end directly, and a short extent through the cache', async () => {
    const file = path.join(scratch(), 'f');
    // [0, 2 blocks + 12345): data; a hole of 4 MiB; a short data extent; an unaligned end.
    const first = prng(2, 2 * BLOCK + 12_345);
    const tail = prng(3, 3 * MiB + 777);
    const holeAt = 2 * BLOCK + 16 * DIRECT_ALIGN;
    const size = holeAt + 4 * MiB + tail.length;
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, first, 0, first.length, 0);
    fs.writeSync(fd, tail, 0, tail.length, holeAt + 4 * MiB);
    fs.closeSync(fd);
    const expected = Buffer.alloc(size);
    first.copy(expected, 0);
    tail.copy(expected, holeAt + 4 * MiB);

    const got = await read(file, size);
    expect(got.size).toBe(size);
    expect(assemble(got.content, got.blobs).equals(expected)).toBe(true);
    // The first extent (2 blocks and 64 KiB, rounded to the file system's blocks) is read directly; the short last one is not.
    expect(got.bytes.direct).toBeGreaterThanOrEqual(first.length);
    expect(got.bytes.direct).toBeLessThan(holeAt);
    expect(got.bytes.buffered).toBeGreaterThanOrEqual(tail.length);
    expect(got.bytes.direct + got.bytes.buffered).toBeLessThan(size - 3 * MiB); // the hole is not read
  });

  it('captures a file truncated while it is read as what could be read', async () => {
    const file = path.join(scratch(), 'f');
    const data = prng(4, 3 * BLOCK);
    fs.writeFileSync(file, data);
    // Cut before the third block is asked for: its read ends short, at an unaligned offset.
    const cut = 2 * BLOCK + 5000;
    const got = await read(file, data.length, () => fs.truncateSync(file, cut));
    expect(got.size).toBe(cut);
    expect(assemble(got.content, got.blobs).equals(data.subarray(0, cut))).toBe(true);
    expect(got.bytes).toEqual({ direct: cut, buffered: 0 });
    // Its last read found nothing: that block went back to the pool once,
    // so the next file's reads never share one.
    const other = path.join(scratch(), 'g');
    const more = prng(6, 3 * BLOCK + 1);
    fs.writeFileSync(other, more);
    const next = await read(other, more.length);
    expect(assemble(next.content, next.blobs).equals(more)).toBe(true);
  });

  it('captures a file appended to since it was seen as the size seen, to the byte', async () => {
    const file = path.join(scratch(), 'f');
    const data = prng(5, 3 * BLOCK);
    fs.writeFileSync(file, data);
    // Seen at 2 blocks and 12,345 bytes: the last direct read asks for whole pages and keeps only those bytes.
    const seen = 2 * BLOCK + 12_345;
    const got = await read(file, seen);
    expect(got.size).toBe(seen);
    expect(assemble(got.content, got.blobs).equals(data.subarray(0, seen))).toBe(true);
    expect(got.bytes).toEqual({ direct: seen, buffered: 0 });
  });
});

describe('chunks already stored', () => {
  it('hands saveBlob only the chunks not stored yet, and records every chunk', async () => {
    const file = path.join(scratch(), 'f');
    const data = prng(7, 3 * BLOCK + 4321);
    fs.writeFileSync(file, data);
    const first = await read(file, data.length);
    expect(first.saved).toBe(first.content.length);
    expect(first.content.length).toBeGreaterThan((3 * BLOCK) / (1024 * 1024)); // chunks span block boundaries too

    // The same file again: every chunk is stored, none is saved again.
    const again = await read(file, data.length, undefined, first.blobs);
    expect(again.content).toEqual(first.content);
    expect(again.saved).toBe(0);

    // A few bytes rewritten in the middle of the second block: only the chunks around them are new.
    const changed = Buffer.from(data);
    prng(8, 100).copy(changed, BLOCK + 3 * 1024 * 1024);
    fs.writeFileSync(file, changed);
    const blobs = new Map(first.blobs);
    const after = await read(file, changed.length, undefined, blobs);
    expect(assemble(after.content, blobs).equals(changed)).toBe(true);
    const fresh = after.content.filter((r) => r.id !== null && !first.blobs.has(r.id));
    expect(fresh.length).toBeGreaterThan(0);
    expect(after.saved).toBe(fresh.length);
  });
});
