/**
 * A one-capture snapshot (Repository.snapshot) keeps no trees for a next
 * capture: with nothing changed, no listing is encoded at all (each
 * directory's tree is the parent's), so a no-change snapshot costs no
 * encoding of the whole volume's listings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as Tree from '../format/tree.js';
import { Repository } from '../repo/repository.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import { prng, tempDir } from '../testing.js';

const encoded = vi.hoisted(() => ({ count: 0 }));
vi.mock('../format/tree.js', async (importOriginal) => {
  const real = await importOriginal<typeof Tree>();
  return {
    ...real,
    encodeTree: (...args: Parameters<typeof real.encodeTree>) => {
      encoded.count++;
      return real.encodeTree(...args);
    },
  };
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('Repository.snapshot', () => {
  it('encodes no listing when nothing changed since the parent', async () => {
    const src = tempDir('kova-session-trees-');
    dirs.push(src);
    for (let i = 0; i < 40; i++) {
      const dir = path.join(src, `d${i % 5}`, `e${i % 2}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `f${i}`), prng(i + 1, 100 + i));
    }
    const repo = await Repository.create(new MemoryStorage());
    const first = await repo.snapshot(src);
    expect(encoded.count).toBeGreaterThanOrEqual(11); // root, 5 dirs, 10 subdirs: written once
    // Change times move past the racily-clean window of the first scan.
    await new Promise((r) => setTimeout(r, 50));
    encoded.count = 0;
    const second = await repo.snapshot(src, { parent: first.id });
    expect(second.root.subtree).toBe(first.root.subtree);
    expect(encoded.count).toBe(0);
  });
});
