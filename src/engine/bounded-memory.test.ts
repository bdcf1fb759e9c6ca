/**
 * What the engine keeps between steps is bounded by constants, not by the
 * number of entries of a volume: the repository's tree cache by decoded
 * entries (and a capture does not fill it), a session's trees for its next
 * capture by encoded bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Repository } from './repo/repository.js';
import { MemoryStorage } from './storage/memory-storage.js';
import { tempDir } from './testing.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A source of `dirCount` directories of `perDir` empty files each (plus `extra` bytes in the first file of each). */
function source(dirCount: number, perDir: number): string {
  const src = tempDir('kova-bounded-src-');
  dirs.push(src);
  for (let d = 0; d < dirCount; d++) {
    const dir = path.join(src, `d${d}`);
    fs.mkdirSync(dir);
    for (let i = 0; i < perDir; i++) fs.writeFileSync(path.join(dir, `f${i}`), i === 0 ? `dir ${d}` : '');
  }
  return src;
}

describe('bounded memory', () => {
  it('keeps at most 16,384 decoded entries in the repository tree cache, whatever the number of trees read', async () => {
    const storage = new MemoryStorage();
    const repo = await Repository.create(storage);
    const record = await repo.snapshot(source(3, 6_000));
    const reader = await Repository.openStorage(storage);
    const top = await reader.readTree(record.root.subtree!);
    expect(top.map((n) => n.name.toString())).toEqual(['d0', 'd1', 'd2']);
    let last: unknown = null;
    for (const d of top) {
      last = await reader.readTree(d.subtree!);
      expect(reader.cachedTreeNodes).toBeLessThanOrEqual(16_384);
    }
    expect(reader.cachedTreeNodes).toBeGreaterThanOrEqual(6_000);
    // The latest tree is still served from the cache.
    expect(await reader.readTree(top[2]!.subtree!)).toBe(last);
  }, 60_000);

  it("leaves the repository's tree cache empty after a capture against a parent (each listing is read once)", async () => {
    const src = source(5, 10);
    const storage = new MemoryStorage();
    const first = await (await Repository.create(storage)).snapshot(src);
    const repo = await Repository.openStorage(storage);
    const second = await repo.snapshot(src, { parent: first.id });
    expect(second.root.subtree).toBe(first.root.subtree);
    expect(repo.cachedTreeNodes).toBe(0);
  }, 60_000);

  it("holds a session's trees for its next capture within the byte budget, and the next capture still reuses every file", async () => {
    const src = source(40, 20);
    const storage = new MemoryStorage();
    const repo = await Repository.create(storage);
    const session = await repo.beginSnapshot('snapshot', { treeBytes: 8 * 1024 });
    try {
      const first = await session.capture(src);
      expect(session.cachedTreeBytes).toBeGreaterThan(0);
      expect(session.cachedTreeBytes).toBeLessThanOrEqual(8 * 1024);
      const second = await session.capture(src, { parent: first });
      expect(session.cachedTreeBytes).toBeLessThanOrEqual(8 * 1024);
      expect(second.root.subtree).toBe(first.root.subtree);
      expect(second.stats.files).toBe(40 * 20);
    } finally {
      await session.abort();
    }
  }, 60_000);
});
