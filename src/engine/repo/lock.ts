/**
 * lock: repository locks, one small file per holder under locks/.
 *
 * Three kinds:
 *   read       restore, verify          conflicts with exclusive
 *   write      snapshot, delete         conflicts with write and exclusive
 *   exclusive  gc, repair               conflicts with everything
 *
 * Taking a lock: write our lock file, then list the others. If a live,
 * conflicting lock exists we give way: remove our file and retry after a
 * random delay until the timeout. Whichever of two racing processes lists
 * second sees the other's file, so they never both proceed; the random delay
 * keeps them from giving way to each other forever.
 * A lock is stale, and removed by whoever finds it, when its process is gone
 * (same host: pid not alive, or alive but started at another time, or the
 * host rebooted) or when it has not been refreshed for STALE_AFTER_MS
 * (another host). Holders refresh their file every REFRESH_MS.
 *
 * Lock files are written and removed without syncs (VOLATILE): a lock only
 * matters while its holder runs, and a crash of the machine ends every
 * holder (after a reboot every lock of this host is stale anyway). Other
 * processes see a lock file as soon as it is written; only its survival of
 * a crash is given up, which saves two disk flushes per lock and one per
 * release. A lock file left empty or torn by a crash is ignored.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { RepoLockedError, isErrno } from '../../core/errors.js';
import type { Storage, WriteOptions } from '../storage/storage.js';
import { BOOT_ID, SELF_START, isAlive } from '../util/process-identity.js';

export type LockKind = 'read' | 'write' | 'exclusive';

export interface LockInfo {
  readonly kind: LockKind;
  readonly operation: string;
  readonly hostname: string;
  readonly bootId: string;
  readonly pid: number;
  /** Process start time in clock ticks since boot (/proc/PID/stat field 22). */
  readonly processStart: string;
  readonly createdAt: number;
  readonly refreshedAt: number;
}

const REFRESH_MS = 60_000;
/** Lock files need not survive a crash (see the top of this file). */
const VOLATILE: WriteOptions = { durable: false };
const STALE_AFTER_MS = 10 * 60_000;

export function conflicts(a: LockKind, b: LockKind): boolean {
  if (a === 'exclusive' || b === 'exclusive') return true;
  return a === 'write' && b === 'write';
}

const HOSTNAME = os.hostname();

/** isStale tells whether the holder of `info` can no longer be running. */
export function isStale(info: LockInfo, now: number): boolean {
  if (info.hostname === HOSTNAME) {
    if (info.bootId && BOOT_ID && info.bootId !== BOOT_ID) return true;
    return !isAlive(info.pid, info.processStart);
  }
  return now - info.refreshedAt > STALE_AFTER_MS;
}

function describe(info: LockInfo): string {
  return `${info.operation} (pid ${info.pid} on ${info.hostname}, since ${new Date(info.createdAt).toISOString()})`;
}

export interface LockOptions {
  /** What the holder does, shown to whoever finds the lock. */
  readonly operation: string;
  /** How long to keep retrying a conflicting lock; 0 fails at once. Default 0. */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** A held lock. release() is idempotent. */
export class RepoLock {
  private timer: NodeJS.Timeout | null;
  private released = false;

  constructor(
    private readonly storage: Storage,
    readonly name: string,
    private info: LockInfo,
    private readonly now: () => number,
  ) {
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  get kind(): LockKind {
    return this.info.kind;
  }

  private refreshing: Promise<void> | null = null;

  private refresh(): Promise<void> {
    if (this.released || this.refreshing) return this.refreshing ?? Promise.resolve();
    this.info = { ...this.info, refreshedAt: this.now() };
    this.refreshing = this.storage
      .write(this.name, Buffer.from(JSON.stringify(this.info)), VOLATILE)
      .catch(() => undefined)
      // Released while writing: the write brought the file back, remove it again.
      .then(() => (this.released ? this.storage.remove(this.name, VOLATILE).catch(() => undefined) : undefined))
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.storage.remove(this.name, VOLATILE);
  }
}

async function readLock(storage: Storage, name: string): Promise<LockInfo | null> {
  try {
    const info = JSON.parse((await storage.read(name)).toString('utf8')) as LockInfo;
    return typeof info.kind === 'string' && typeof info.pid === 'number' ? info : null;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    return null;
  }
}

/** acquireLock takes a lock of `kind`, or throws RepoLockedError. */
export async function acquireLock(storage: Storage, kind: LockKind, opts: LockOptions): Promise<RepoLock> {
  const now = opts.now ?? Date.now;
  const deadline = now() + (opts.timeoutMs ?? 0);
  const name = `locks/${randomBytes(16).toString('hex')}`;
  const created = now();
  const info: LockInfo = {
    kind,
    operation: opts.operation,
    hostname: HOSTNAME,
    bootId: BOOT_ID,
    pid: process.pid,
    processStart: SELF_START,
    createdAt: created,
    refreshedAt: created,
  };
  for (let attempt = 0; ; attempt++) {
    await storage.write(name, Buffer.from(JSON.stringify(info)), VOLATILE);
    let blocker: LockInfo | null = null;
    for (const other of await storage.list('locks')) {
      if (other === name) continue;
      const o = await readLock(storage, other);
      if (o === null) continue;
      if (isStale(o, now())) {
        await storage.remove(other, VOLATILE);
        continue;
      }
      if (conflicts(kind, o.kind)) {
        blocker = o;
        break;
      }
    }
    if (blocker === null) return new RepoLock(storage, name, info, now);
    await storage.remove(name, VOLATILE);
    if (now() >= deadline) throw new RepoLockedError(describe(blocker));
    const wait = Math.min(2000, 50 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random());
    await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(1, deadline - now()))));
  }
}
