/**
 * FileReader reads a large file in blocks from a shared pool: a file
 * truncated while it is read is captured as what could be read, and the
 * blocks go back to the pool once each.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKER, resolveGear } from '../chunker/gear.js';
import type { ContentRef } from '../format/tree.js';
import { prng, tempDir } from '../testing.js';
import { ProgressTracker } from '../util/progress.js';
import { FileReader } from './file-reader.js';

const MiB = 1024 * 1024;
const BLOCK = 8 * MiB;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = tempDir('kova-file-reader-');
  dirs.push(d);
  return d;
}

/**
 * read reads `file` with a FileReader; returns its content and the blobs it
 * stored. `afterFirstBlock` runs once the first block is read (the next read
 * is then in flight).
 */
async function read(file: string, size: number, afterFirstBlock?: () => void) {
  const blobs = new Map<string, Buffer>();
  let read = 0;
  const reader = new FileReader({
    gear: resolveGear({ ...DEFAULT_CHUNKER, seed: '0123456789abcdef' }),
    saveBlob: (_type, raw, id) => {
      blobs.set(id, Buffer.from(raw)); // raw is a view of a block that is reused
      return Promise.resolve();
    },
    progress: new ProgressTracker(undefined),
    checkAbort: () => undefined,
    onRead: (n) => {
      if (read === 0) afterFirstBlock?.();
      read += n;
    },
  });
  const fd = fs.openSync(file, 'r');
  try {
    return { ...(await reader.read(fd, size)), blobs };
  } finally {
    fs.closeSync(fd);
  }
}

/** assemble rebuilds the bytes a content list describes (holes as zeros). */
function assemble(content: readonly ContentRef[], blobs: Map<string, Buffer>): Buffer {
  return Buffer.concat(content.map((r) => (r.id === null ? Buffer.alloc(r.length) : blobs.get(r.id)!)));
}

describe('FileReader', () => {
  it('captures a file truncated while it is read as what could be read', async () => {
    const file = path.join(scratch(), 'f');
    const data = prng(4, 3 * BLOCK);
    fs.writeFileSync(file, data);
    // Cut before the third block is asked for: its read ends short, and the one after finds nothing.
    const cut = 2 * BLOCK + 5000;
    const got = await read(file, data.length, () => fs.truncateSync(file, cut));
    expect(got.size).toBe(cut);
    expect(assemble(got.content, got.blobs).equals(data.subarray(0, cut))).toBe(true);
    // That last block went back to the pool once, so the next file's reads never share one.
    const other = path.join(scratch(), 'g');
    const more = prng(6, 3 * BLOCK + 1);
    fs.writeFileSync(other, more);
    const next = await read(other, more.length);
    expect(assemble(next.content, next.blobs).equals(more)).toBe(true);
  });
});
