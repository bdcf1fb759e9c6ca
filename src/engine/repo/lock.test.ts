/**
 * Repository locks (lock.ts): which kinds conflict, what the loser is told,
 * which lock files are stale, waiting with a timeout, locks held by another
 * process, and how the repository's operations use them.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type KovaError, RepoLockedError } from '../../core/errors.js';
import { LocalStorage } from '../storage/local-storage.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import type { Storage } from '../storage/storage.js';
import { compareTrees, describeTree, tempDir } from '../testing.js';
import { BOOT_ID, SELF_START, processStartTime } from '../util/process-identity.js';
import { type LockInfo, type LockKind, type RepoLock, acquireLock, conflicts, isStale } from './lock.js';
import { Repository } from './repository.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const WORKER = path.join(ROOT, 'test/fixtures/engine-worker.ts');

async function lockError(p: Promise<unknown>): Promise<KovaError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RepoLockedError);
    return err as KovaError;
  }
  throw new Error('expected REPO_LOCKED');
}

function lockInfo(over: Partial<LockInfo>): LockInfo {
  const now = Date.now();
  return {
    kind: 'write',
    operation: 'snapshot',
    hostname: os.hostname(),
    bootId: BOOT_ID,
    pid: process.pid,
    processStart: SELF_START,
    createdAt: now,
    refreshedAt: now,
    ...over,
  };
}

async function plantLock(storage: Storage, info: LockInfo): Promise<string> {
  const name = `locks/${randomBytes(16).toString('hex')}`;
  await storage.write(name, Buffer.from(JSON.stringify(info)));
  return name;
}

async function lockFiles(storage: Storage): Promise<string[]> {
  return (await storage.list('locks')).filter((n) => !n.endsWith('/.keep'));
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  expect(processStartTime(pid)).toBeNull();
  return pid;
}

describe('conflicts', () => {
  it('follows the table: read/read and read/write share, everything else excludes', () => {
    const kinds: LockKind[] = ['read', 'write', 'exclusive'];
    const expected: Record<string, boolean> = {
      'read+read': false,
      'read+write': false,
      'write+read': false,
      'write+write': true,
      'read+exclusive': true,
      'exclusive+read': true,
      'write+exclusive': true,
      'exclusive+write': true,
      'exclusive+exclusive': true,
    };
    for (const a of kinds) for (const b of kinds) expect(conflicts(a, b), `${a}+${b}`).toBe(expected[`${a}+${b}`]);
  });
});

describe('acquireLock', () => {
  let dir: string;
  let storage: LocalStorage;
  const held: RepoLock[] = [];
  const take = async (kind: LockKind, operation: string, timeoutMs = 0): Promise<RepoLock> => {
    const l = await acquireLock(storage, kind, { operation, timeoutMs });
    held.push(l);
    return l;
  };

  beforeEach(() => {
    dir = tempDir('kova-lock-');
    storage = new LocalStorage(dir);
  });
  afterEach(async () => {
    for (const l of held.splice(0)) await l.release();
    await storage.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two write locks conflict; the second is told who holds the lock', async () => {
    const first = await take('write', 'snapshot');
    expect(first.kind).toBe('write');
    const err = await lockError(take('write', 'delete'));
    expect(err.code).toBe('REPO_LOCKED');
    expect(err.status).toBe(409);
    expect(err.message).toContain('snapshot');
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.message).toContain(os.hostname());
    // The loser leaves no lock file behind.
    expect(await lockFiles(storage)).toEqual([first.name]);
  });

  it('read and write locks coexist, as do several read locks', async () => {
    const w = await take('write', 'snapshot');
    const r1 = await take('read', 'restore');
    const r2 = await take('read', 'verify');
    expect(new Set(await lockFiles(storage))).toEqual(new Set([w.name, r1.name, r2.name]));
  });

  it('exclusive conflicts with read, and read with exclusive', async () => {
    const r = await take('read', 'restore');
    const e1 = await lockError(take('exclusive', 'gc'));
    expect(e1.message).toContain('restore');
    await r.release();
    await take('exclusive', 'gc');
    const e2 = await lockError(take('read', 'restore'));
    expect(e2.message).toContain('gc');
    await lockError(take('write', 'snapshot'));
    await lockError(take('exclusive', 'gc'));
  });

  it('writes and removes lock files without syncing them (they need not survive a crash)', async () => {
    const calls: string[] = [];
    const inner = new MemoryStorage();
    const spy: Storage = Object.assign(Object.create(inner) as Storage, {
      write: (name: string, data: Buffer | readonly Buffer[], opts?: { durable?: boolean }) => {
        calls.push(`write ${opts?.durable === false ? 'volatile' : 'durable'}`);
        return inner.write(name, data);
      },
      remove: (name: string, opts?: { durable?: boolean }) => {
        calls.push(`remove ${opts?.durable === false ? 'volatile' : 'durable'}`);
        return inner.remove(name);
      },
    });
    const r = await acquireLock(spy, 'read', { operation: 'restore' });
    await lockError(acquireLock(spy, 'exclusive', { operation: 'gc' }));
    await r.release();
    expect(calls).toEqual(['write volatile', 'write volatile', 'remove volatile', 'remove volatile']);
  });

  it('release frees the lock, is idempotent, and removes the lock file', async () => {
    const w = await take('write', 'snapshot');
    await w.release();
    await w.release();
    expect(await lockFiles(storage)).toEqual([]);
    const again = await take('write', 'snapshot');
    expect(await lockFiles(storage)).toEqual([again.name]);
  });

  it('a lock of a dead process on this host is stale: removed, and does not block', async () => {
    const stale = await plantLock(storage, lockInfo({ kind: 'exclusive', operation: 'gc', pid: deadPid(), processStart: '12345' }));
    const w = await take('write', 'snapshot');
    expect(await lockFiles(storage)).toEqual([w.name]);
    expect(await storage.list('locks')).not.toContain(stale);
  });

  it('a lock naming a live pid with another start time is stale (pid reused)', async () => {
    const stale = await plantLock(storage, lockInfo({ kind: 'exclusive', pid: process.pid, processStart: `${SELF_START}0` }));
    const e = await take('exclusive', 'gc');
    expect(await lockFiles(storage)).toEqual([e.name]);
    expect(await storage.list('locks')).not.toContain(stale);
  });

  it('a lock from an earlier boot of this host is stale', async () => {
    await plantLock(storage, lockInfo({ kind: 'exclusive', bootId: 'another-boot-id' }));
    expect(BOOT_ID).not.toBe('');
    const e = await take('exclusive', 'gc');
    expect(await lockFiles(storage)).toEqual([e.name]);
  });

  it('a live lock of this process with the right start time is not stale', async () => {
    const live = await plantLock(storage, lockInfo({ kind: 'exclusive', operation: 'repair' }));
    const err = await lockError(take('read', 'restore'));
    expect(err.message).toContain('repair');
    expect(await lockFiles(storage)).toEqual([live]);
  });

  it('another host: fresh locks block, locks not refreshed for long are stale', async () => {
    const fresh = lockInfo({ hostname: 'elsewhere.invalid', pid: 1, processStart: '1', refreshedAt: Date.now() - 60_000 });
    const old = lockInfo({ hostname: 'elsewhere.invalid', pid: 1, processStart: '1', refreshedAt: Date.now() - 11 * 60_000 });
    expect(isStale(fresh, Date.now())).toBe(false);
    expect(isStale(old, Date.now())).toBe(true);
    const blocking = await plantLock(storage, fresh);
    const err = await lockError(take('write', 'snapshot'));
    expect(err.message).toContain('elsewhere.invalid');
    await storage.remove(blocking);
    await plantLock(storage, old);
    const w = await take('write', 'snapshot');
    expect(await lockFiles(storage)).toEqual([w.name]);
  });

  it('unreadable files in locks/ do not block', async () => {
    await storage.write('locks/garbage', Buffer.from('{not json'));
    await storage.write('locks/other', Buffer.from('{"hello":1}'));
    await take('exclusive', 'gc');
  });

  it('waits up to timeoutMs for the holder to release', async () => {
    const w = await take('write', 'snapshot');
    const t0 = Date.now();
    setTimeout(() => void w.release(), 400);
    const second = await take('write', 'delete', 10_000);
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(350);
    expect(waited).toBeLessThan(5_000);
    expect(await lockFiles(storage)).toEqual([second.name]);
  });

  it('gives up after timeoutMs when the holder keeps the lock', async () => {
    await take('exclusive', 'gc');
    const t0 = Date.now();
    const err = await lockError(take('read', 'restore', 600));
    const waited = Date.now() - t0;
    expect(err.message).toContain('gc');
    expect(waited).toBeGreaterThanOrEqual(550);
    expect(waited).toBeLessThan(3_000);
    expect(await lockFiles(storage)).toHaveLength(1);
  });

  it('of many concurrent write lockers at most one wins at once, and with a timeout all get their turn', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => acquireLock(storage, 'write', { operation: `w${i}` })));
    const won = results.filter((r): r is PromiseFulfilledResult<RepoLock> => r.status === 'fulfilled');
    expect(won.length).toBeLessThanOrEqual(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(RepoLockedError);
    expect((await lockFiles(storage)).length).toBe(won.length);
    for (const r of won) await r.value.release();

    let inside = 0;
    let maxInside = 0;
    const turns: string[] = [];
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const l = await acquireLock(storage, 'write', { operation: `t${i}`, timeoutMs: 30_000 });
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 20));
        turns.push(`t${i}`);
        inside--;
        await l.release();
      }),
    );
    expect(maxInside).toBe(1);
    expect(turns.sort()).toEqual(['t0', 't1', 't2', 't3', 't4', 't5']);
    expect(await lockFiles(storage)).toEqual([]);
  });
});

/** A MemoryStorage whose writes can be held back, to interleave them with other calls. */
class GatedStorage extends MemoryStorage {
  gate: Promise<void> | null = null;
  override async write(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    if (this.gate) await this.gate;
    return super.write(name, data);
  }
}

describe('lock refresh', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a refresh still in flight when the lock is released does not bring the lock file back', async () => {
    vi.useFakeTimers();
    const storage = new GatedStorage();
    const lock = await acquireLock(storage, 'write', { operation: 'snapshot' });
    expect(await lockFiles(storage)).toEqual([lock.name]);
    let open!: () => void;
    storage.gate = new Promise<void>((r) => (open = r));
    // The holder refreshes its file every minute; this refresh's write is slow.
    await vi.advanceTimersByTimeAsync(60_000);
    await lock.release();
    expect(await lockFiles(storage)).toEqual([]);
    storage.gate = null;
    open();
    await vi.advanceTimersByTimeAsync(10);
    // Released means gone: a lock file of a live process would block every
    // other writer until this process exits.
    expect(await lockFiles(storage)).toEqual([]);
    await expect(acquireLock(storage, 'exclusive', { operation: 'gc' })).resolves.toBeDefined();
  });
});

/* ---- another process holding the lock -------------------------------------------- */

interface Holder {
  child: ChildProcessWithoutNullStreams;
  pid: number;
  lines: string[];
  exited: Promise<void>;
}

async function holdLockInChild(repoDir: string, kind: LockKind, operation: string): Promise<Holder> {
  const task = JSON.stringify({ op: 'hold-lock', repo: repoDir, kind, operation });
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, task], { cwd: ROOT, stdio: 'pipe' });
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const rl = readline.createInterface({ input: child.stdout });
  const pid = await new Promise<number>((resolve, reject) => {
    rl.on('line', (line) => {
      lines.push(line);
      const m = /^locked (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`lock holder exited (${code}): ${stderr}`)));
  });
  return { child, pid, lines, exited };
}

describe('locks across processes', () => {
  let repoDir: string;
  const children: Holder[] = [];
  beforeEach(async () => {
    repoDir = path.join(tempDir('kova-xlock-'), 'repo');
    await (await Repository.init(repoDir, { packSize: 64 * 1024 })).close();
  });
  afterEach(async () => {
    for (const h of children.splice(0)) {
      if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
      await h.exited;
    }
    fs.rmSync(path.dirname(repoDir), { recursive: true, force: true });
  });

  it("another process's write lock blocks a snapshot and names that process", async () => {
    const h = await holdLockInChild(repoDir, 'write', 'snapshot');
    children.push(h);
    const repo = await Repository.open(repoDir);
    const src = tempDir('kova-xlock-src-');
    fs.writeFileSync(path.join(src, 'f'), 'data');
    const err = await lockError(repo.snapshot(src));
    expect(err.message).toContain(`pid ${h.pid}`);
    expect(err.message).not.toContain(`pid ${process.pid}`);
    // A read lock (verify) is fine meanwhile.
    const rep = await repo.verify();
    expect(rep.findings).toEqual([]);
    expect(await repo.listSnapshots()).toEqual([]);
    fs.rmSync(src, { recursive: true, force: true });
    await repo.close();
  });

  it('the lock of a killed process is stale and no longer blocks', async () => {
    const h = await holdLockInChild(repoDir, 'exclusive', 'gc');
    children.push(h);
    const repo = await Repository.open(repoDir);
    await lockError(repo.lock('read', 'restore'));
    h.child.kill('SIGKILL');
    await h.exited;
    // Its lock file is still there, naming a pid that is gone.
    const storage = new LocalStorage(repoDir);
    expect(await lockFiles(storage)).toHaveLength(1);
    const l = await repo.lock('exclusive', 'gc');
    expect(await lockFiles(storage)).toEqual([l.name]);
    await l.release();
    await repo.close();
  });

  it('lockTimeoutMs waits until the other process releases', async () => {
    const h = await holdLockInChild(repoDir, 'write', 'snapshot');
    children.push(h);
    const repo = await Repository.open(repoDir, { lockTimeoutMs: 20_000 });
    const t0 = Date.now();
    setTimeout(() => h.child.stdin.write('release\n'), 500);
    const l = await repo.lock('write', 'delete');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    await h.exited;
    expect(h.lines).toContain('released');
    await l.release();
    await repo.close();
  });
});

/* ---- the repository's operations and their locks ---------------------------------- */

describe('repository operations under locks', () => {
  let base: string;
  let repoDir: string;
  let srcDir: string;
  let repo: Repository;
  let snapId: string;
  let desc: ReturnType<typeof describeTree>;

  beforeAll(async () => {
    base = tempDir('kova-oplock-');
    repoDir = path.join(base, 'repo');
    srcDir = path.join(base, 'src');
    fs.mkdirSync(path.join(srcDir, 'sub'), { recursive: true });
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(srcDir, i % 2 ? 'sub' : '', `f${i}`), randomBytes(3000 + i * 1000));
    repo = await Repository.init(repoDir, { packSize: 16 * 1024 });
    desc = describeTree(srcDir);
    snapId = (await repo.snapshot(srcDir)).id;
  });
  afterAll(async () => {
    await repo.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  it('a restore (read lock) runs while a snapshot session (write lock) is open', async () => {
    const session = await repo.beginSnapshot();
    try {
      const target = path.join(base, 'restore-during-session');
      const res = await repo.restore(snapId, target);
      expect(res.files).toBe(20);
      expect(compareTrees(desc, describeTree(target))).toEqual([]);
      const other = await Repository.open(repoDir);
      const target2 = path.join(base, 'restore-during-session-2');
      await other.restore(snapId, target2);
      expect(compareTrees(desc, describeTree(target2))).toEqual([]);
      await other.close();
    } finally {
      await session.abort();
    }
  });

  it('gc, delete and another snapshot fail with REPO_LOCKED while a session is open', async () => {
    const session = await repo.beginSnapshot();
    const other = await Repository.open(repoDir);
    try {
      const g = await lockError(other.gc());
      expect(g.code).toBe('REPO_LOCKED');
      expect(g.message).toContain('snapshot');
      expect((await lockError(repo.gc())).code).toBe('REPO_LOCKED');
      expect((await lockError(other.deleteSnapshot(snapId))).code).toBe('REPO_LOCKED');
      expect((await lockError(other.snapshot(srcDir))).code).toBe('REPO_LOCKED');
      expect((await lockError(other.beginSnapshot())).code).toBe('REPO_LOCKED');
      // Nothing was deleted.
      expect((await other.listSnapshots()).map((s) => s.id)).toEqual([snapId]);
    } finally {
      await session.abort();
      await other.close();
    }
    // Once the session is closed, gc runs.
    const rep = await repo.gc();
    expect(rep.snapshots).toBe(1);
  });

  it('a session that commits releases its lock', async () => {
    const session = await repo.beginSnapshot('two-pass');
    const draft = await session.capture(srcDir);
    const rec = await session.commit(draft, { label: 'committed' });
    expect(rec.label).toBe('committed');
    const g = await repo.gc();
    expect(g.snapshots).toBe(2);
    await repo.deleteSnapshot(rec.id);
    expect(await lockFiles(repo.storage)).toEqual([]);
  });

  it('gc fails with REPO_LOCKED while a restore holds a read lock', async () => {
    const l = await repo.lock('read', 'restore');
    try {
      const err = await lockError(repo.gc());
      expect(err.message).toContain('restore');
    } finally {
      await l.release();
    }
  });

  it('lockTimeoutMs on open makes gc wait for the session to end', async () => {
    const session = await repo.beginSnapshot();
    const waiting = await Repository.open(repoDir, { lockTimeoutMs: 20_000 });
    const t0 = Date.now();
    setTimeout(() => void session.abort(), 300);
    const rep = await waiting.gc();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(rep.snapshots).toBe(1);
    await waiting.close();
  });
});
