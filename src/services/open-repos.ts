/**
 * open-repos: the repositories that browse requests read, kept open between
 * requests, and one read lock per repository shared by the requests reading
 * it at the same time.
 *
 * Opening a repository for each request read its config and its whole index
 * again, and took and released a lock file of its own. Here a repository is
 * opened once; its index is kept and refreshed at the start of each request
 * (Repository.refreshIndex: one listing of index/; files are read only when
 * that listing changed, all of them again when any went away, as after a
 * gc).
 *
 * Lease rules: acquire() counts a reader in. The first reader of a
 * repository takes a read lock (repo/lock.ts) for everyone; readers that
 * come while it is held share it; the last one out releases it and closes
 * the repository's file handles. gc, which needs the exclusive lock,
 * therefore waits for the reads in progress and runs as soon as none is,
 * as it did with one lock per request; a new read after the release takes a
 * new lock, and waits for a gc that holds the exclusive one (`lockWaitMs`,
 * then 409 REPOSITORY_BUSY). The index refresh happens under the lock, so
 * the index a request uses cannot be made stale by a gc while it reads. A
 * snapshot committed during a read may add index files; a read that meets a
 * blob its index does not place refreshes the index and tries once more
 * (`retry`).
 *
 * Memory: repositories no request uses are kept, with their index, up to
 * `maxIndexBytes` of index in all, least recently used dropped first; a
 * dropped one's index is unloaded then, which closes the files a large
 * index spilled to (their disk space is not left to the GC). All
 * of this runs on the event loop: the counts need no other guard.
 */
import { CorruptionError, RepoLockedError } from '../core/errors.js';
import { Repository } from '../engine/index.js';
import type { RepoLock } from '../engine/repo/lock.js';

export interface OpenReposOptions {
  /** How long the first reader waits for the read lock while gc holds the repository. */
  readonly lockWaitMs: number;
  /** Most bytes of index kept for repositories not in use (default 128 MiB). */
  readonly maxIndexBytes?: number;
  /** The error to throw when the lock wait runs out (default: the engine's RepoLockedError). */
  readonly busy?: () => Error;
}

/** A reader's hold on an open repository. release() is idempotent. */
export interface RepoLease {
  readonly repo: Repository;
  /**
   * retry runs `read`; if it fails with corruption (a blob not indexed, a
   * pack missing) and the index has changed since it was last refreshed,
   * it refreshes the index and runs `read` once more.
   */
  retry<T>(read: () => Promise<T>): Promise<T>;
  release(): Promise<void>;
}

interface Entry {
  readonly repo: Repository;
  readers: number;
  /** The shared read lock, or its acquisition in progress; null while no one reads. */
  lock: Promise<RepoLock> | null;
}

export class OpenRepos {
  private readonly entries = new Map<string, Entry>();
  /** Opens in progress, so concurrent first requests open a repository once. */
  private readonly opening = new Map<string, Promise<Entry>>();
  private readonly maxIndexBytes: number;

  constructor(private readonly opts: OpenReposOptions) {
    this.maxIndexBytes = opts.maxIndexBytes ?? 128 * 1024 * 1024;
  }

  /** Repositories kept open now (for tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Readers holding `dir` now, and whether its shared lock is held (for tests). */
  state(dir: string): { readers: number; locked: boolean } | null {
    const e = this.entries.get(dir);
    return e ? { readers: e.readers, locked: e.lock !== null } : null;
  }

  private async entry(dir: string): Promise<Entry> {
    const known = this.entries.get(dir);
    if (known) {
      // Most recently used last.
      this.entries.delete(dir);
      this.entries.set(dir, known);
      return known;
    }
    const running = this.opening.get(dir);
    if (running) return running;
    const p = Repository.open(dir, { lockTimeoutMs: this.opts.lockWaitMs }).then((repo) => {
      const e: Entry = { repo, readers: 0, lock: null };
      this.entries.set(dir, e);
      return e;
    });
    this.opening.set(dir, p);
    try {
      return await p;
    } finally {
      this.opening.delete(dir);
    }
  }

  /**
   * acquire opens the repository in `dir` (or finds it open), joins or takes
   * its shared read lock and refreshes its index. The caller releases the
   * lease when its answer is sent.
   */
  async acquire(dir: string): Promise<RepoLease> {
    const e = await this.entry(dir);
    e.readers++;
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      e.readers--;
      if (e.readers > 0) return;
      const lock = e.lock;
      e.lock = null;
      try {
        if (lock) await (await lock.catch(() => null))?.release();
      } finally {
        // The handles are reopened by the next reader; the index stays.
        if (e.readers === 0) await e.repo.close();
        this.trim();
      }
    };
    try {
      e.lock ??= e.repo.lock('read', 'browse').catch((err: unknown) => {
        throw err instanceof RepoLockedError && this.opts.busy ? this.opts.busy() : err;
      });
      const lock = e.lock;
      try {
        await lock;
      } catch (err) {
        // Whoever waited on this failed acquisition fails too; the next reader tries afresh.
        if (e.lock === lock) e.lock = null;
        throw err;
      }
      await e.repo.refreshIndex();
    } catch (err) {
      await release();
      throw err;
    }
    return {
      repo: e.repo,
      release,
      retry: async <T>(read: () => Promise<T>): Promise<T> => {
        try {
          return await read();
        } catch (err) {
          if (!(err instanceof CorruptionError) || !(await e.repo.refreshIndex())) throw err;
          return read();
        }
      },
    };
  }

  /** forget drops the repository in `dir` once no one reads it (it was removed or replaced). */
  forget(dir: string): void {
    const e = this.entries.get(dir);
    if (e && e.readers === 0) this.drop(dir, e);
  }

  /** drop forgets an idle repository and closes its index's spilled files (the rest is left to the GC). */
  private drop(dir: string, e: Entry): void {
    this.entries.delete(dir);
    e.repo.unloadIndex();
  }

  /** trim drops idle repositories, least recently used first, until their indexes fit the bound. */
  private trim(): void {
    let bytes = 0;
    for (const e of this.entries.values()) bytes += e.repo.indexBytes;
    for (const [dir, e] of this.entries) {
      if (bytes <= this.maxIndexBytes) break;
      if (e.readers > 0) continue;
      bytes -= e.repo.indexBytes;
      this.drop(dir, e);
    }
  }
}
