/**
 * The archiver writes each directory's tree as soon as its entries are
 * done, depth first: a deep chain of directories and a wide directory
 * round-trip exactly, every stored tree is the canonical encoding of its
 * listing (so its id is what any capture of the same listing gives), and a
 * second capture of an unchanged tree gives the same root tree id.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashHex } from '../format/hash.js';
import { type TreeNode, encodeTree } from '../format/tree.js';
import { matchParent } from './archiver.js';
import { Repository } from '../repo/repository.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import { compareTrees, describeTree, prng, tempDir } from '../testing.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('capturing deep and wide trees', () => {
  it('round-trips them exactly, with canonical trees and a stable root id', async () => {
    const src = tempDir('kova-archiver-src-');
    dirs.push(src);
    let deep = src;
    for (let i = 0; i < 120; i++) {
      deep = path.join(deep, `d${i}`);
      fs.mkdirSync(deep);
      fs.writeFileSync(path.join(deep, 'f'), prng(i + 1, 100));
    }
    const wide = path.join(src, 'wide');
    fs.mkdirSync(wide);
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(wide, `w${i}`), prng(10_000 + i, i % 300));

    const storage = new MemoryStorage();
    const repo = await Repository.create(storage, { packSize: 64 * 1024 });
    const first = await repo.snapshot(src);
    expect(first.stats.dirs).toBe(122);

    // Every tree reachable from the root: canonical, and one per directory.
    let trees = 0;
    const walk = async (id: string): Promise<void> => {
      const nodes = await repo.readTree(id);
      expect(hashHex(encodeTree(nodes))).toBe(id);
      trees++;
      for (const n of nodes) if (n.type === 'dir') await walk(n.subtree!);
    };
    await walk(first.root.subtree!);
    expect(trees).toBe(122);

    const dst = path.join(tempDir('kova-archiver-dst-'), 'out');
    dirs.push(path.dirname(dst));
    await repo.restore(first.id, dst);
    expect(compareTrees(describeTree(src), describeTree(dst))).toEqual([]);

    // Nothing changed: the same root tree, whether compared with the parent or read afresh.
    await new Promise((r) => setTimeout(r, 50));
    const again = await repo.snapshot(src, { parent: first.id });
    const full = await repo.snapshot(src);
    expect(again.root.subtree).toBe(first.root.subtree);
    expect(full.root.subtree).toBe(first.root.subtree);
    expect(again.stats.newBlobs + full.stats.newBlobs).toBe(0);
  }, 120_000);
});

describe('matchParent', () => {
  it("gives each entry the parent's node of the same name, as a map by name does", () => {
    const node = (name: Buffer): TreeNode => ({
      name,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtimeNs: 0n,
      ctimeNs: 0n,
      ino: 1n,
      nlink: 1,
      size: 0,
      content: [],
    });
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const randomName = (): Buffer => Buffer.from(Array.from({ length: 1 + rand(4) }, () => [0x61, 0x62, 0x41, 0xe9, 0xff][rand(5)]!));
    for (let round = 0; round < 200; round++) {
      const unique = (n: number): Buffer[] => {
        const m = new Map<string, Buffer>();
        for (let k = 0; k < n; k++) {
          const b = randomName();
          m.set(b.toString('hex'), b);
        }
        return [...m.values()].sort(Buffer.compare);
      };
      const parent = unique(rand(40)).map(node);
      const entries = unique(rand(40)).map((name) => ({ name }));
      const byName = new Map(parent.map((n) => [n.name.toString('hex'), n]));
      expect(matchParent(entries, parent)).toEqual(entries.map((e) => byName.get(e.name.toString('hex'))));
    }
  });
});
