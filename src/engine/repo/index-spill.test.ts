/**
 * A repository whose index holds only a few records in memory and spills the
 * rest to files: snapshots (deduplicating against spilled blobs), restores,
 * verification and gc all work as with the index whole in memory, and the
 * spill files leave nothing behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareTrees, describeTree, prng, tempDir } from '../testing.js';
import { Repository } from './repository.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** openRunFiles lists this process's open descriptors on (deleted) index runs under `tmp`. */
function openRunFiles(tmp: string): string[] {
  const open: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the listing's own descriptor)
    }
    if (target.startsWith(tmp + '/') && target.includes('-index-')) open.push(target);
  }
  return open;
}

describe('an index past its memory', () => {
  it('snapshots, restores, verifies and collects garbage with most of the index in files', async () => {
    const work = tempDir('kova-spill-repo-');
    dirs.push(work);
    const src = path.join(work, 'src');
    const repoDir = path.join(work, 'repo');
    const write = (rel: string, data: Buffer): void => {
      fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      fs.writeFileSync(path.join(src, rel), data);
    };
    for (let d = 0; d < 20; d++)
      for (let f = 0; f < 30; f++) write(`d${d}/f${f}`, prng(d * 1000 + f + 1, 100 + ((d * 31 + f * 17) % 3000)));
    write('big', prng(99, 3_000_000));
    await (await Repository.init(repoDir, { packSize: 256 * 1024 })).close();

    const repo = await Repository.open(repoDir, { indexMemoryRecords: 100 });
    const first = await repo.snapshot(src);
    // Append to a few files, add one, remove a directory: the second snapshot deduplicates against spilled blobs.
    for (let d = 0; d < 20; d += 5) fs.appendFileSync(path.join(src, `d${d}/f3`), prng(5000 + d, 700));
    write('d3/new', prng(4242, 20_000));
    fs.rmSync(path.join(src, 'd7'), { recursive: true });
    const second = await repo.snapshot(src, { parent: first.id });
    const index = await repo.reloadIndex();
    expect(index.blobCount).toBeGreaterThan(600);
    expect(index.spilledBlobs).toBeGreaterThanOrEqual(index.blobCount - 100);
    // The second snapshot stored only what changed: one new blob per changed file, and the new trees.
    expect(second.stats.newBlobs).toBeLessThan(20);

    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    await repo.restore(second.id, path.join(out, 'a'));
    expect(compareTrees(describeTree(src), describeTree(path.join(out, 'a')), { dirMtimes: false })).toEqual([]);
    expect((await repo.verify({ readData: true })).findings).toEqual([]);

    await repo.deleteSnapshot(first.id);
    const report = await repo.gc({ repackBelow: 1 });
    expect(report.liveBlobs).toBeGreaterThan(500);
    expect((await repo.verify({ readData: true })).findings).toEqual([]);
    await repo.restore(second.id, path.join(out, 'b'));
    expect(compareTrees(describeTree(src), describeTree(path.join(out, 'b')), { dirMtimes: false })).toEqual([]);
    await repo.close();
    // The runs' files were unlinked when made: the repository's tmp directory holds none of them.
    const tmp = path.join(repoDir, 'tmp');
    expect(fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((n) => n.includes('-index-')) : []).toEqual([]);

    // A loaded index holds its runs' files open (close() keeps the index);
    // unloadIndex() closes them at once. Indexes dropped earlier in this test
    // leave theirs to the GC, so only this handle's own runs are counted.
    const before = new Set(openRunFiles(tmp));
    const reader = await Repository.open(repoDir, { indexMemoryRecords: 100 });
    await reader.loadIndex();
    await reader.close();
    const own = openRunFiles(tmp).filter((f) => !before.has(f));
    expect(own.length).toBeGreaterThan(0);
    reader.unloadIndex();
    expect(reader.indexBytes).toBe(0);
    expect(openRunFiles(tmp).filter((f) => own.includes(f))).toEqual([]);
  }, 120_000);
});
