/**
 * wait: --wait, polling a snapshot, a restore or a deployment's operation
 * until it has finished, with a progress bar on a terminal. Polls start
 * quick and settle at one a second (the API rate-limits each key).
 */
import { KovaError } from '../../core/errors.js';
import type { Progress } from '../../engine/index.js';
import { type Io, ProgressBar, note, printJson, println } from '../output.js';
import { type ApiProgress, ApiError, type Deployment, type KovaClient, type Restore, type Snapshot } from './api-client.js';
import type { CommonOpts } from './common.js';

const DELAYS_MS = [150, 250, 400, 600, 800];
const STEADY_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** OperationFailedError: a waited-for snapshot, restore or deployment operation ended badly. */
export class OperationFailedError extends KovaError {
  constructor(code: string, message: string) {
    super(code, `${message.replace(/\s+/g, ' ').trim()} (${code})`, { status: 500 });
    this.name = 'OperationFailedError';
  }
}

/** poll calls `get` until `done` holds, reporting each value; rate limiting only slows it down. */
export async function poll<T>(get: () => Promise<T>, done: (v: T) => boolean, onUpdate?: (v: T) => void): Promise<T> {
  for (let i = 0; ; i++) {
    let v: T;
    try {
      v = await get();
    } catch (err) {
      if (err instanceof ApiError && err.status === 429) {
        await sleep(Math.max(1, err.retryAfter ?? 1) * 1000);
        continue;
      }
      throw err;
    }
    onUpdate?.(v);
    if (done(v)) return v;
    await sleep(DELAYS_MS[i] ?? STEADY_MS);
  }
}

/** The API reports bytes only; the bar's file counts stay at zero. */
const toProgress = (p: ApiProgress): Progress => ({ filesDone: 0, bytesDone: p.bytesDone, filesTotal: null, bytesTotal: p.bytesTotal });

/** waitForSnapshot waits until a snapshot is no longer being created and returns it. */
export async function waitForSnapshot(io: Io, c: KovaClient, deploymentId: string, snapshotId: string): Promise<Snapshot> {
  const bar = new ProgressBar(io, `snapshot ${snapshotId}`);
  try {
    return await poll(
      () => c.getSnapshot(deploymentId, snapshotId),
      (s) => s.status !== 'creating',
      (s) => {
        if (s.progress) bar.update(toProgress(s.progress));
      },
    );
  } finally {
    bar.done();
  }
}

/** snapshotFailure is the error for a snapshot that did not become ready, or null. */
export function snapshotFailure(s: Snapshot): OperationFailedError | null {
  if (s.status === 'ready') return null;
  if (s.status === 'deleting') return new OperationFailedError('SNAPSHOT_DELETED', `snapshot ${s.id} is being deleted`);
  return new OperationFailedError('SNAPSHOT_FAILED', `snapshot ${s.id} failed: ${s.error ?? 'no reason given'}`);
}

/** waitForRestore waits until a restore has completed or failed and returns it. */
export async function waitForRestore(io: Io, c: KovaClient, deploymentId: string, restoreId: string): Promise<Restore> {
  const bar = new ProgressBar(io, `restore ${restoreId}`);
  try {
    return await poll(
      () => c.getRestore(deploymentId, restoreId),
      (r) => r.status === 'completed' || r.status === 'failed',
      (r) => {
        if (r.progress) bar.update(toProgress(r.progress));
      },
    );
  } finally {
    bar.done();
  }
}

export function restoreFailure(r: Restore): OperationFailedError | null {
  return r.status === 'failed'
    ? new OperationFailedError('RESTORE_FAILED', `restore ${r.id} failed: ${r.error ?? 'no reason given'}`)
    : null;
}

const allRunning = (d: Deployment): boolean => (d.services ?? []).every((s) => s.state === 'running');

/** How long services may still look down once the operation has ended (a response can read them just before the end). */
const SETTLE_MS = 3000;

/**
 * waitForDeployment waits until no operation is in progress on a deployment
 * (and its services run, or have stayed down for a moment) and returns it.
 */
export async function waitForDeployment(c: KovaClient, deploymentId: string): Promise<Deployment> {
  const d = await poll(
    () => c.getDeployment(deploymentId),
    (x) => !x.operation || x.status !== 'active',
  );
  if (d.status !== 'active' || allRunning(d)) return d;
  const until = Date.now() + SETTLE_MS;
  return poll(
    () => c.getDeployment(deploymentId),
    (x) => x.status !== 'active' || !!x.operation || allRunning(x) || Date.now() >= until,
  );
}

/** deploymentFailure is the error for an active deployment whose services are not all running, or null. */
export function deploymentFailure(d: Deployment, what: string): OperationFailedError | null {
  if (d.status !== 'active') return new OperationFailedError('DEPLOYMENT_NOT_ACTIVE', `${what}: deployment ${d.id} is ${d.status}`);
  const down = (d.services ?? []).filter((s) => s.state !== 'running');
  if (down.length === 0) return null;
  return new OperationFailedError(
    'SERVICES_NOT_RUNNING',
    `${what}: services of ${d.id} are not running (${down.map((s) => `${s.name} ${s.state}`).join(', ')})`,
  );
}

/**
 * finishOperation reports an operation on a deployment: its id (or, with --json, the
 * deployment), after waiting for the operation to finish with --wait.
 */
export async function finishOperation(
  io: Io,
  c: KovaClient,
  d: Deployment,
  o: CommonOpts & { wait?: boolean },
  text: { done: string; pending: string },
): Promise<void> {
  const final = o.wait ? await waitForDeployment(c, d.id) : d;
  const failure = o.wait ? deploymentFailure(final, text.done) : null;
  if (o.json) printJson(io, final);
  else {
    println(io, final.id);
    if (!failure) note(io, o.wait ? `${text.done}; its services are running` : text.pending);
  }
  if (failure) throw failure;
}
