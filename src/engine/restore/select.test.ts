/**
 * Restoring a selection of a snapshot's paths: the chosen entries come back
 * whole with every attribute, the directories leading to them with theirs,
 * nothing else is written, and neither the trees nor the blobs outside the
 * chosen paths are read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KovaError } from '../../core/errors.js';
import type { TreeNode } from '../format/tree.js';
import { Repository } from '../repo/repository.js';
import { setTimesNs } from '../native.js';
import { type EntryDesc, compareTrees, describeTree, prng, tempDir } from '../testing.js';
import { Restorer, selectionOf } from './restorer.js';

const cleanups: string[] = [];
afterEach(() => {
  for (const d of cleanups.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function workDir(): string {
  const d = tempDir('kova-select-');
  cleanups.push(d);
  return d;
}

function write(root: string, rel: string, data: Buffer | string): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}

const parts = (p: string): Buffer[] => p.split('/').map((s) => Buffer.from(s));
const hex = (p: string): string =>
  p
    .split('/')
    .map((s) => Buffer.from(s).toString('hex'))
    .join('/');

/** The description of `src` limited to the entries a selection of `chosen` restores. */
function expected(src: string, chosen: readonly string[]): Map<string, EntryDesc> {
  const all = describeTree(src);
  const keep = new Map<string, EntryDesc>();
  const wanted = chosen.map(hex);
  for (const [k, v] of all) {
    const inside = wanted.some((w) => k === w || k.startsWith(`${w}/`));
    const above = k === '' || wanted.some((w) => w.startsWith(`${k}/`));
    if (inside || above) keep.set(k, v);
  }
  return keep;
}

async function source(work: string): Promise<string> {
  const src = path.join(work, 'src');
  write(src, 'db/main.sqlite', prng(1, 200_000));
  write(src, 'db/wal/0001', prng(2, 50_000));
  write(src, 'db/wal/0002', prng(3, 70_000));
  write(src, 'conf/app.toml', 'name = "x"\n');
  write(src, 'conf/deep/er/leaf.txt', 'leaf');
  write(src, 'media/big.bin', prng(4, 600_000));
  write(src, 'media/small.txt', 'small');
  fs.symlinkSync('../db/main.sqlite', path.join(src, 'conf/link'));
  fs.linkSync(path.join(src, 'db/wal/0001'), path.join(src, 'media/hard'));
  fs.chmodSync(path.join(src, 'conf'), 0o750);
  fs.chmodSync(path.join(src, 'conf/deep/er/leaf.txt'), 0o640);
  setTimesNs(path.join(src, 'conf/deep/er/leaf.txt'), 1n, 1_600_000_000_123_456_789n);
  setTimesNs(path.join(src, 'conf/deep'), 1n, 1_500_000_000_000_000_001n);
  setTimesNs(path.join(src, 'conf'), 1n, 1_400_000_000_000_000_002n);
  return src;
}

/** A blob source that records which trees and blobs were read. */
function recording(repo: Repository): {
  readTree(id: string): Promise<readonly TreeNode[]>;
  readBlob(id: string): Promise<Buffer>;
  blobs: Set<string>;
  trees: Set<string>;
} {
  const blobs = new Set<string>();
  const trees = new Set<string>();
  return {
    blobs,
    trees,
    readTree: (id) => {
      trees.add(id);
      return repo.readTree(id);
    },
    readBlob: (id) => {
      blobs.add(id);
      return repo.readBlob(id);
    },
  };
}

/** The chunk ids of the files at or below `rel` in the snapshot. */
async function chunksBelow(repo: Repository, root: TreeNode, rel: string): Promise<Set<string>> {
  let node = root;
  for (const name of rel.split('/')) node = (await repo.readTree(node.subtree!)).find((n) => n.name.toString() === name)!;
  const out = new Set<string>();
  const walk = async (n: TreeNode): Promise<void> => {
    if (n.type === 'file') for (const c of n.content ?? []) if (c.id) out.add(c.id);
    if (n.type === 'dir') for (const c of await repo.readTree(n.subtree!)) await walk(c);
  };
  await walk(node);
  return out;
}

describe('restoring selected paths', () => {
  it('restores the chosen entries whole and the directories leading to them, with every attribute', async () => {
    const work = workDir();
    const src = await source(work);
    const repo = await Repository.init(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      const chosen = ['db/wal', 'conf/deep/er/leaf.txt', 'conf/link', 'media/hard'];
      const dst = path.join(work, 'dst');
      await repo.restore(snap, dst, { include: chosen.map(parts) });
      expect(compareTrees(expected(src, chosen), describeTree(dst), { dirMtimes: true })).toEqual([]);
      expect(fs.existsSync(path.join(dst, 'db/main.sqlite'))).toBe(false);
      expect(fs.readdirSync(path.join(dst, 'media'))).toEqual(['hard']);
    } finally {
      await repo.close();
    }
  });

  it('reads no blob and no tree outside the chosen paths', async () => {
    const work = workDir();
    const src = await source(work);
    const repo = await Repository.init(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      const rec = recording(repo);
      await new Restorer(rec, snap, { include: [parts('db/wal')] }).run(path.join(work, 'dst'));
      expect(rec.blobs).toEqual(await chunksBelow(repo, snap.root, 'db/wal'));
      const media = (await repo.readTree(snap.root.subtree!)).find((n) => n.name.toString() === 'media')!;
      expect(rec.trees.has(media.subtree!)).toBe(false);
    } finally {
      await repo.close();
    }
  });

  it('merges a path below another chosen one into it', () => {
    const sel = selectionOf([parts('a/b/c'), parts('a/b'), parts('a/x')]);
    expect(sel).toEqual(
      new Map([
        [
          'a',
          new Map([
            ['b', null],
            ['x', null],
          ]),
        ],
      ]),
    );
    expect(selectionOf([parts('a/b'), []])).toBeNull();
  });

  it('refuses a path the snapshot lacks before writing anything', async () => {
    const work = workDir();
    const src = await source(work);
    const repo = await Repository.init(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      const dst = path.join(work, 'dst');
      const err = await repo.restore(snap, dst, { include: [parts('db/wal'), parts('conf/app.toml/x')] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KovaError);
      expect((err as KovaError).code).toBe('PATH_NOT_FOUND');
      expect((err as KovaError).message).toContain('conf/app.toml/x');
      expect(fs.existsSync(dst)).toBe(false);
    } finally {
      await repo.close();
    }
  });
});
