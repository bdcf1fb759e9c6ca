/**
 * open-repos: repositories kept open between browse requests: one read lock
 * shared by the readers of a repository and released by the last, an index
 * that follows new snapshots and gc, and a read that meets a blob its index
 * does not know refreshing it and trying once more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Repository } from '../engine/index.js';
import { tempDir } from '../engine/testing.js';
import { OpenRepos, type RepoLease } from './open-repos.js';

class Busy extends Error {}

describe('OpenRepos', () => {
  let root: string;
  let repoDir: string;
  let src: string;
  let repos: OpenRepos;
  const leases: RepoLease[] = [];

  const lockFiles = (): string[] => fs.readdirSync(path.join(repoDir, 'locks')).filter((n) => n !== '.keep');
  const acquire = async (): Promise<RepoLease> => {
    const l = await repos.acquire(repoDir);
    leases.push(l);
    return l;
  };
  /** writeFiles fills the source directory with `n` small files of distinct content, tagged `tag`. */
  const writeFiles = (tag: string, n: number): void => {
    fs.rmSync(src, { recursive: true, force: true });
    fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(src, 'dir', `f${i}`), `${tag}:${i}:${'x'.repeat(200)}`);
  };
  /** snapshot takes a snapshot of the source directory with its own handle on the repository. */
  const snapshot = async (): Promise<string> => {
    const repo = await Repository.open(repoDir);
    try {
      return (await repo.snapshot(src)).id;
    } finally {
      await repo.close();
    }
  };
  /** fileText reads `dir/name` of snapshot `id` through a lease, the way browsing does. */
  const fileText = async (lease: RepoLease, id: string, name: string): Promise<string> => {
    const rec = await lease.repo.findSnapshot(id);
    const top = await lease.retry(() => lease.repo.readTree(rec.root.subtree!, { cache: false }));
    const dir = top.find((n) => n.name.toString() === 'dir')!;
    const files = await lease.retry(() => lease.repo.readTree(dir.subtree!, { cache: false }));
    const file = files.find((n) => n.name.toString() === name)!;
    const parts = await Promise.all(file.content!.map((c) => lease.retry(() => lease.repo.readBlob(c.id!))));
    return Buffer.concat(parts).toString();
  };

  beforeEach(async () => {
    root = tempDir('kova-open-repos-');
    repoDir = path.join(root, 'repo');
    src = path.join(root, 'src');
    await (await Repository.init(repoDir, { packSize: 8 * 1024 })).close();
    repos = new OpenRepos({ lockWaitMs: 200, busy: () => new Busy('busy') });
  });
  afterEach(async () => {
    for (const l of leases.splice(0)) await l.release();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('readers at the same time share one read lock; the last one out releases it; the repository stays open', async () => {
    writeFiles('a', 3);
    await snapshot();
    const a = await acquire();
    const b = await acquire();
    expect(a.repo).toBe(b.repo);
    expect(lockFiles()).toHaveLength(1);
    expect(repos.state(repoDir)).toEqual({ readers: 2, locked: true });
    await a.release();
    await a.release(); // idempotent: b still holds it
    expect(lockFiles()).toHaveLength(1);
    await b.release();
    expect(lockFiles()).toEqual([]);
    expect(repos.state(repoDir)).toEqual({ readers: 0, locked: false });

    // The next reader takes a new lock on the same open repository, without reading the index again.
    const read = vi.spyOn(a.repo.storage, 'read');
    const c = await acquire();
    expect(c.repo).toBe(a.repo);
    expect(lockFiles()).toHaveLength(1);
    expect(read.mock.calls.filter(([name]) => name.startsWith('index/'))).toEqual([]);
    read.mockRestore();
  });

  it('gc waits for the readers, and a reader waits for gc a bounded time, then gets the busy error', async () => {
    writeFiles('a', 3);
    await snapshot();
    const gcRepo = await Repository.open(repoDir);
    try {
      const a = await acquire();
      await expect(gcRepo.lock('exclusive', 'gc')).rejects.toMatchObject({ code: 'REPO_LOCKED' });
      await a.release();
      const gc = await gcRepo.lock('exclusive', 'gc');
      await expect(repos.acquire(repoDir)).rejects.toBeInstanceOf(Busy);
      expect(repos.state(repoDir)).toEqual({ readers: 0, locked: false });
      await gc.release();
      await acquire();
      expect(lockFiles()).toHaveLength(1);
    } finally {
      await gcRepo.close();
    }
  });

  it('a kept index follows a new snapshot and a gc that rewrote the packs', async () => {
    const text = (tag: string, i: number): string => `${tag}:${i}:${'x'.repeat(200)}`;
    writeFiles('one', 40);
    const first = await snapshot();
    let lease = await acquire();
    expect(await fileText(lease, first, 'f7')).toBe(text('one', 7));
    await lease.release();

    // The second snapshot keeps ten of the files: their blobs stay in the first one's packs.
    writeFiles('one', 10);
    const second = await snapshot();
    lease = await acquire();
    // Read straight from the repository (no retry): the index was refreshed when the lease was taken.
    const rec = await lease.repo.findSnapshot(second);
    expect(await lease.repo.readTree(rec.root.subtree!, { cache: false })).toHaveLength(1);
    expect(await fileText(lease, second, 'f7')).toBe(text('one', 7));
    await lease.release();

    // gc moves the kept blobs out of the packs the first snapshot filled, and deletes those.
    const other = await Repository.open(repoDir);
    await other.deleteSnapshot(first);
    const report = await other.gc({ repackBelow: 1 });
    await other.close();
    expect(report.packsRepacked).toBeGreaterThan(0);

    lease = await acquire();
    const read = vi.spyOn(lease.repo.storage, 'readAt');
    for (const i of [0, 7, 9]) expect(await fileText(lease, second, `f${i}`)).toBe(text('one', i));
    // Every read went to a pack that exists now.
    expect(read).toHaveBeenCalled();
    for (const [name] of read.mock.calls) expect(fs.existsSync(path.join(repoDir, name))).toBe(true);
    read.mockRestore();
  });

  it('a read meeting a blob committed after its lease began refreshes the index and tries once more', async () => {
    writeFiles('one', 5);
    await snapshot();
    const lease = await acquire();
    // A snapshot may commit while readers hold their read locks.
    writeFiles('late', 5);
    const late = await snapshot();
    const rec = await lease.repo.findSnapshot(late);
    await expect(lease.repo.readTree(rec.root.subtree!, { cache: false })).rejects.toMatchObject({ code: 'REPO_CORRUPT' });
    expect(await fileText(lease, late, 'f3')).toBe(`late:3:${'x'.repeat(200)}`);
    // A blob that is nowhere still fails, after one refresh.
    await expect(lease.retry(() => lease.repo.readBlob('ab'.repeat(32)))).rejects.toMatchObject({ code: 'REPO_CORRUPT' });
  });

  it('keeps idle repositories only up to the index bound', async () => {
    writeFiles('a', 3);
    await snapshot();
    const small = new OpenRepos({ lockWaitMs: 0, maxIndexBytes: 1 });
    const l = await small.acquire(repoDir);
    expect(small.size).toBe(1);
    expect(l.repo.indexBytes).toBeGreaterThan(0);
    await l.release();
    expect(small.size).toBe(0);
    // The dropped repository's index is unloaded, not left for the GC.
    expect(l.repo.indexBytes).toBe(0);
  });
});
