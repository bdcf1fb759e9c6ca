/**
 * gc reads each pack's blob list from its trailer when it needs it rather
 * than holding every list: a kept pack whose trailer does not hold a live
 * blob where the index places it stops gc before anything is deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptionError } from '../../core/errors.js';
import { hashHex } from '../format/hash.js';
import { decodeIndex, encodeIndex } from '../format/index-format.js';
import { Repository } from '../repo/repository.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import { compareTrees, describeTree, prng, tempDir } from '../testing.js';

const INIT = { packSize: 8 * 1024, chunker: { minSize: 4096, avgSize: 16384, maxSize: 65536 } };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('gc', () => {
  it('refuses, deleting nothing, when the index places a live blob where its pack does not hold it', async () => {
    const src = tempDir('kova-gc-src-');
    dirs.push(src);
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, `f${i}`), prng(i + 1, 3000));
    const storage = new MemoryStorage();
    const repo = await Repository.create(storage, INIT);
    const first = await repo.snapshot(src);
    fs.writeFileSync(path.join(src, 'f0'), prng(999, 3000));
    await repo.snapshot(src, { parent: first.id });
    await repo.deleteSnapshot(first.id);

    // Move one data blob of a full pack to a wrong offset in the index.
    const name = [...storage.files.keys()].find((k) => k.startsWith('index/') && !k.endsWith('.keep'))!;
    const packs = decodeIndex(storage.files.get(name)!, name);
    const target = packs.find((p) => p.blobs.length > 1)!;
    const moved = target.blobs[1]!;
    const damaged = packs.map((p) =>
      p === target ? { ...p, blobs: p.blobs.map((b) => (b === moved ? { ...b, offset: b.offset + 1 } : b)) } : p,
    );
    const buf = encodeIndex(damaged);
    storage.files.delete(name);
    storage.files.set(`index/${hashHex(buf)}`, buf);
    const before = new Set(storage.files.keys());

    const fresh = await Repository.openStorage(storage);
    const err = await fresh.gc({ repackBelow: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as Error).message).toMatch(/gc refused: pack .* does not hold the blobs the index places there/);
    expect(new Set([...storage.files.keys()].filter((k) => !k.startsWith('locks/')))).toEqual(
      new Set([...before].filter((k) => !k.startsWith('locks/'))),
    );
  }, 60_000);
});

describe('gc marking', () => {
  it('keeps exactly the blobs the remaining snapshots reach, trees shared between them included', async () => {
    const src = tempDir('kova-gc-src-');
    const out = tempDir('kova-gc-out-');
    dirs.push(src, out);
    // Nested directories, some unchanged between snapshots (shared subtrees), files sharing chunks.
    const write = (rel: string, data: Buffer): void => {
      fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      fs.writeFileSync(path.join(src, rel), data);
    };
    for (let d = 0; d < 12; d++) for (let f = 0; f < 6; f++) write(`d${d}/sub${f % 3}/f${f}`, prng(d * 100 + f + 1, 200 + f * 700));
    write('same-a', prng(7, 5000));
    write('same-b', prng(7, 5000));
    const storage = new MemoryStorage();
    const repo = await Repository.create(storage, INIT);
    const first = await repo.snapshot(src);
    fs.rmSync(path.join(src, 'd0'), { recursive: true });
    write('d1/sub0/f0', prng(4242, 9000));
    const second = await repo.snapshot(src, { parent: first.id });
    write('d2/new', prng(31337, 30_000));
    const third = await repo.snapshot(src, { parent: second.id });
    await repo.deleteSnapshots([first.id, third.id]);

    // What the remaining snapshot reaches, walked with the full decoder.
    const reached = new Set<string>();
    const walk = async (tree: string): Promise<void> => {
      reached.add(tree);
      for (const n of await repo.readTree(tree, { cache: false })) {
        if (n.subtree !== undefined && !reached.has(n.subtree)) await walk(n.subtree);
        for (const c of n.content ?? []) if (c.id !== null) reached.add(c.id);
      }
    };
    await walk(second.root.subtree!);

    const report = await repo.gc({ repackBelow: 1 });
    expect(report.liveBlobs).toBe(reached.size);
    const after = await Repository.openStorage(storage);
    const index = await after.loadIndex();
    expect(index.blobCount).toBe(reached.size);
    for (const id of reached) expect(index.has(id)).toBe(true);
    expect((await after.verify({ readData: true })).findings).toEqual([]);
    await after.restore(second.id, path.join(out, 'r'));
    fs.rmSync(path.join(src, 'd2/new'));
    expect(compareTrees(describeTree(src), describeTree(path.join(out, 'r')), { dirMtimes: false })).toEqual([]);
  }, 60_000);
});
