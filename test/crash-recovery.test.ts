/**
 * Crash recovery of a real `kova serve` (process runtime): the server is
 * started with KOVA_FAULT=<point>, driven over HTTP to that point of a
 * restore or a snapshot, where it SIGKILLs itself; it is then started again
 * on the same data directory, without the fault, and must finish or cleanly
 * end what was interrupted with no manual step:
 *
 * - a restore ends `completed` with every volume entirely the snapshot's
 *   data (never a mix of old and new), the services run (a new process, on
 *   the restored directory) and no staging directory is left; the safety
 *   snapshot taken before the crash restores the old state;
 * - a snapshot ends `ready` or `failed`, never stuck `creating`; earlier
 *   snapshots still restore correctly; services frozen at the crash are
 *   running again.
 *
 * Each case checks the state at the crash too, which proves the fault point
 * is the step it is named after.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Api,
  createDeployment,
  getDeployment,
  restoreCompleted,
  snapshotReady,
  stagingDirs,
  startRestore,
  startSnapshot,
  volumeDir,
  waitRestore,
  waitRunning,
  waitSnapshot,
} from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { readBoots, readSeq, seqCount, seqScript, sequenceProblem } from './helpers/sequence.js';
import {
  type KovaServer,
  type ServiceLeader,
  groupStates,
  killServices,
  leaderStat,
  serviceLeaders,
  startKova,
} from './helpers/server-process.js';

/* ---- per-test server and data directory, always cleaned up ------------------------------ */

let server: KovaServer | null = null;
const dataDirs: string[] = [];

afterEach(async () => {
  await server?.kill();
  server = null;
  for (const d of dataDirs.splice(0)) {
    killServices(d);
    fs.rmSync(d, { recursive: true, force: true });
  }
});

function newDataDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-crash-srv-'));
  dataDirs.push(d);
  return d;
}

async function start(dataDir: string, fault?: string): Promise<KovaServer> {
  server = await startKova({ dataDir, fault });
  return server;
}

/** crashed waits for the server to kill itself at its fault point. */
async function crashed(srv: KovaServer): Promise<void> {
  const exit = await srv.waitExit(60_000);
  expect(exit, `the server should have died at its fault point; output:\n${srv.output().slice(-3000)}`).toEqual({
    code: null,
    signal: 'SIGKILL',
  });
  server = null;
}

/** restoreStatusOnDisk reads a restore's status from the database of a server that is not running. */
function restoreStatusOnDisk(dataDir: string, rstId: string): string | undefined {
  const db = new Database(path.join(dataDir, 'kova.db'), { fileMustExist: true });
  try {
    return (db.prepare('SELECT status FROM restores WHERE id = ?').get(rstId) as { status: string } | undefined)?.status;
  } finally {
    db.close();
  }
}

/* ---- volume contents: two states, A and B, that share nothing by accident ------------------- */

function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = crypto.createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
}

function put(root: string, rel: string, data: string | Buffer): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}

/** writeA fills the two volumes with state A. */
function writeA(data: string, logs: string): void {
  put(data, 'config.json', JSON.stringify({ state: 'A', version: 1 }));
  put(data, 'db/blob.bin', pseudoRandom('A', 300 * 1024));
  for (let i = 0; i < 30; i++) put(data, `db/rows/${i}.txt`, `A-${i}\n`.repeat(20));
  fs.symlinkSync('config.json', path.join(data, 'current'));
  put(logs, 'app.log', Array.from({ length: 500 }, (_, i) => `A ${i} started`).join('\n'));
  put(logs, 'archive/2026-01.log', 'A january\n');
}

/** mutateToB changes both volumes into state B: rewritten, deleted and added files. */
function mutateToB(data: string, logs: string): void {
  put(data, 'config.json', JSON.stringify({ state: 'B', version: 2, migrated: true }));
  const blob = pseudoRandom('A', 300 * 1024);
  pseudoRandom('B', 4096).copy(blob, 100 * 1024); // a change in the middle of a large file
  put(data, 'db/blob.bin', blob);
  for (let i = 0; i < 10; i++) fs.rmSync(path.join(data, `db/rows/${i}.txt`));
  put(data, 'db/rows/15.txt', 'B-15\n');
  put(data, 'db/extra/new.txt', 'only in B\n');
  fs.appendFileSync(path.join(logs, 'app.log'), '\nB migration ran');
  fs.rmSync(path.join(logs, 'archive'), { recursive: true });
  put(logs, 'b-only.log', 'B\n');
}

/** treeOf describes a directory: every entry with its type and content hash (or link target). */
function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) out[r] = `link:${fs.readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[r] = 'dir';
        walk(p, r);
      } else if (st.isFile()) out[r] = `file:${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
      else out[r] = 'other';
    }
  };
  walk(root, '');
  return out;
}

type Tree = Record<string, string>;

/** classify says whether a volume is entirely state A, entirely B, or something else. */
function classify(dir: string, a: Tree, b: Tree): 'A' | 'B' | string {
  const t = treeOf(dir);
  const same = (x: Tree): boolean => JSON.stringify(t) === JSON.stringify(x);
  if (same(a)) return 'A';
  if (same(b)) return 'B';
  const keys = [...new Set([...Object.keys(t), ...Object.keys(a)])].filter((k) => t[k] !== a[k]);
  return `neither A nor B (differs from A at: ${keys.slice(0, 8).join(', ')})`;
}

/* ---- services --------------------------------------------------------------------------- */

function leaderOf(dataDir: string, depId: string): ServiceLeader | null {
  return serviceLeaders(dataDir, depId).find((l) => l.service === 'app') ?? null;
}

/** A service's leader that is alive and not stopped by a signal. */
function runningLeader(dataDir: string, depId: string): ServiceLeader | null {
  const l = leaderOf(dataDir, depId);
  if (!l) return null;
  const st = leaderStat(l);
  return st && st.state !== 'T' && st.state !== 't' ? l : null;
}

/**
 * allStopped: every process of a group is stopped by a signal ('T'); a shell
 * may instead sit in vfork ('D') while the child it forked is stopped.
 */
function allStopped(states: readonly string[]): boolean {
  return states.length > 0 && states.some((s) => s === 'T' || s === 't') && states.every((s) => s === 'T' || s === 't' || s === 'D');
}

function cwdOf(pid: number): string {
  return fs.readlinkSync(`/proc/${pid}/cwd`);
}

async function noSnapshotCreating(api: Api, depId: string): Promise<void> {
  const r = await api('GET', `/api/v1/deployments/${depId}/snapshots`);
  expect(r.status).toBe(200);
  const stuck = (r.body.snapshots as Array<{ id: string; status: string }>).filter(
    (s) => s.status === 'creating' || s.status === 'deleting',
  );
  expect(stuck, JSON.stringify(r.body.snapshots)).toEqual([]);
}

/* ---- restores ------------------------------------------------------------------------------ */

const SLEEPER = 'while true; do sleep 0.2; done';

interface RestoreCase {
  readonly point: string;
  /** What each volume (data, logs) holds when the server dies. */
  readonly volumesAtCrash: readonly [string, string];
  /** Whether the service still runs when the server dies. */
  readonly runningAtCrash: boolean;
  /** The restore's status in the journal when the server dies. */
  readonly statusAtCrash: string;
  /** What the staging directory holds for each volume (data, logs) when the server dies; null: nothing staged yet. */
  readonly stagedAtCrash: readonly [string, string] | null;
}

const RESTORE_CASES: readonly RestoreCase[] = [
  { point: 'restore:restoring', volumesAtCrash: ['B', 'B'], runningAtCrash: true, statusAtCrash: 'restoring', stagedAtCrash: null },
  { point: 'restore:staged', volumesAtCrash: ['B', 'B'], runningAtCrash: true, statusAtCrash: 'swapping', stagedAtCrash: ['A', 'A'] },
  { point: 'restore:stopped', volumesAtCrash: ['B', 'B'], runningAtCrash: false, statusAtCrash: 'swapping', stagedAtCrash: ['A', 'A'] },
  // The staging directory holds what was swapped out: the old data of the volumes already exchanged.
  { point: 'restore:swapped-one', volumesAtCrash: ['A', 'B'], runningAtCrash: false, statusAtCrash: 'swapping', stagedAtCrash: ['B', 'A'] },
  { point: 'restore:swapped', volumesAtCrash: ['A', 'A'], runningAtCrash: false, statusAtCrash: 'swapping', stagedAtCrash: ['B', 'B'] },
];

describe('kill -9 during a restore, then start again', () => {
  for (const c of RESTORE_CASES) {
    it(`at ${c.point}: the restore completes, both volumes are entirely the snapshot, the service runs`, async () => {
      const dataDir = newDataDir();
      let srv = await start(dataDir, c.point);
      const depId = await createDeployment(srv.api, sdlFor(SLEEPER, { volumes: ['data', 'logs'] }));
      await waitRunning(srv.api, depId);
      const data = volumeDir(dataDir, depId, 'data');
      const logs = volumeDir(dataDir, depId, 'logs');

      writeA(data, logs);
      const A = { data: treeOf(data), logs: treeOf(logs) };
      const snapA = await snapshotReady(srv.api, depId, 'state-A');
      mutateToB(data, logs);
      const B = { data: treeOf(data), logs: treeOf(logs) };
      expect(A.data).not.toEqual(B.data);
      expect(A.logs).not.toEqual(B.logs);
      const before = leaderOf(dataDir, depId)!;
      expect(leaderStat(before)).not.toBeNull();

      const rstId = await startRestore(srv.api, depId, snapA.id);
      await crashed(srv);

      // Where the crash left things.
      expect(restoreStatusOnDisk(dataDir, rstId)).toBe(c.statusAtCrash);
      expect([classify(data, A.data, B.data), classify(logs, A.logs, B.logs)]).toEqual(c.volumesAtCrash);
      const staging = stagingDirs(dataDir, depId);
      if (c.stagedAtCrash === null) {
        expect(staging).toEqual([]);
      } else {
        expect(staging).toEqual([`.restore-${rstId}`]);
        const root = path.join(dataDir, 'volumes', depId, staging[0]!);
        expect([classify(path.join(root, 'app.data'), A.data, B.data), classify(path.join(root, 'app.logs'), A.logs, B.logs)]).toEqual(
          c.stagedAtCrash,
        );
      }
      expect(leaderStat(before) !== null, 'service alive at the crash').toBe(c.runningAtCrash);
      if (!c.runningAtCrash) expect(leaderOf(dataDir, depId) && leaderStat(leaderOf(dataDir, depId)!)).toBeFalsy();

      // Start again, without the fault: recovery needs no request.
      srv = await start(dataDir);
      const rst = await waitRestore(srv.api, depId, rstId);
      expect(rst.status, `restore after the crash: ${JSON.stringify(rst)}`).toBe('completed');
      expect(rst.error).toBeNull();
      expect(classify(data, A.data, B.data)).toBe('A');
      expect(classify(logs, A.logs, B.logs)).toBe('A');

      // The service runs again: a new process, alive, not stopped, working in the restored volume.
      const dep = await waitRunning(srv.api, depId);
      expect(dep.services.map((s: { state: string }) => s.state)).toEqual(['running']);
      const after = await waitFor(() => runningLeader(dataDir, depId), 10_000, 'the service process');
      expect(after.pid).not.toBe(before.pid);
      expect(leaderStat(before)).toBeNull();
      expect(cwdOf(after.pid)).toBe(data);

      // Nothing left behind, nothing stuck.
      await waitFor(
        () => stagingDirs(dataDir, depId).length === 0,
        15_000,
        `staging directories to go (${stagingDirs(dataDir, depId).join(', ')})`,
      );
      await noSnapshotCreating(srv.api, depId);
      expect((await getDeployment(srv.api, depId)).operation).toBeNull();

      // The safety snapshot taken before the crash holds B and restores it, entirely.
      expect(rst.safetySnapshotId).toMatch(/^snap-/);
      await restoreCompleted(srv.api, depId, rst.safetySnapshotId, { safetySnapshot: false });
      expect(classify(data, A.data, B.data)).toBe('B');
      expect(classify(logs, A.logs, B.logs)).toBe('B');
      await waitFor(() => runningLeader(dataDir, depId), 10_000, 'the service process after the second restore');
      await srv.stop();
      server = null;
    });
  }

  it('at snapshot:frozen of the safety snapshot (services frozen): the restore completes with both volumes entirely the snapshot', async () => {
    const dataDir = newDataDir();
    // The snapshot of A is taken by a server without the fault.
    let srv = await start(dataDir);
    const depId = await createDeployment(srv.api, sdlFor(SLEEPER, { volumes: ['data', 'logs'] }));
    await waitRunning(srv.api, depId);
    const data = volumeDir(dataDir, depId, 'data');
    const logs = volumeDir(dataDir, depId, 'logs');
    writeA(data, logs);
    const A = { data: treeOf(data), logs: treeOf(logs) };
    const snapA = await snapshotReady(srv.api, depId, 'state-A');
    await srv.stop();
    mutateToB(data, logs);
    const B = { data: treeOf(data), logs: treeOf(logs) };

    srv = await start(dataDir, 'snapshot:frozen');
    const before = leaderOf(dataDir, depId)!;
    const rstId = await startRestore(srv.api, depId, snapA.id);
    await crashed(srv);
    expect(restoreStatusOnDisk(dataDir, rstId)).toBe('pending');
    expect(allStopped(groupStates(before)), `states ${groupStates(before).join(',')}`).toBe(true);
    expect([classify(data, A.data, B.data), classify(logs, A.logs, B.logs)]).toEqual(['B', 'B']);

    srv = await start(dataDir);
    const rst = await waitRestore(srv.api, depId, rstId);
    expect(rst.status, JSON.stringify(rst)).toBe('completed');
    expect(classify(data, A.data, B.data)).toBe('A');
    expect(classify(logs, A.logs, B.logs)).toBe('A');
    const safety = await waitSnapshot(srv.api, depId, rst.safetySnapshotId);
    expect(safety.status).toBe('ready');
    const after = await waitFor(() => runningLeader(dataDir, depId), 10_000, 'the service process');
    expect(after.pid).not.toBe(before.pid);
    await waitFor(() => stagingDirs(dataDir, depId).length === 0, 15_000, 'staging directories to go');
    await noSnapshotCreating(srv.api, depId);
    await srv.stop();
    server = null;
  });
});

/* ---- snapshots ----------------------------------------------------------------------------- */

/** The service appends a counter to `seq` in its volume and continues from the file's last line. */
const WRITER = seqScript({ sleep: 0.01 });

/** restoreAndCheck restores a snapshot and checks the service came back on a clean prefix of the sequence. */
async function restoreAndCheck(
  srv: KovaServer,
  dataDir: string,
  depId: string,
  snapId: string,
  bounds: { min: number; max: number },
): Promise<void> {
  const vol = volumeDir(dataDir, depId);
  const prev = runningLeader(dataDir, depId)?.pid;
  await restoreCompleted(srv.api, depId, snapId, { safetySnapshot: false });
  // The boots file is the snapshot's, plus one line of the restarted service.
  const boots = await waitFor(
    () => {
      const l = runningLeader(dataDir, depId);
      if (!l || l.pid === prev) return null;
      const b = readBoots(vol);
      return b[b.length - 1]?.pid === l.pid ? b : null;
    },
    15_000,
    'the restarted service to record its start',
  );
  const from = boots[boots.length - 1]!.from;
  expect(from).toBeGreaterThanOrEqual(bounds.min);
  expect(from).toBeLessThanOrEqual(bounds.max);
  const seq = path.join(vol, 'seq');
  await waitFor(() => seqCount(seq) >= from + 20, 15_000, 'the restored service to write on');
  const text = readSeq(seq);
  expect(sequenceProblem(text.slice(0, text.lastIndexOf('\n') + 1))).toBeNull();
}

interface SnapshotCase {
  readonly point: string;
  readonly frozenAtCrash: boolean;
  readonly hooks?: { pre: string[] };
}

const SNAPSHOT_CASES: readonly SnapshotCase[] = [
  { point: 'snapshot:pass1', frozenAtCrash: false },
  { point: 'snapshot:frozen', frozenAtCrash: true },
  // An application-consistent deployment: the pre hook runs again when the snapshot is resumed.
  { point: 'snapshot:frozen', frozenAtCrash: true, hooks: { pre: ['sh', '-c', 'sync; echo checkpoint'] } },
];

describe('kill -9 during a snapshot, then start again', () => {
  for (const c of SNAPSHOT_CASES) {
    it(`at ${c.point}${c.hooks ? ' (with a pre hook)' : ''}: the snapshot ends ready or failed, the service is not left frozen, earlier snapshots restore`, async () => {
      const dataDir = newDataDir();
      let srv = await start(dataDir);
      const depId = await createDeployment(srv.api, sdlFor(WRITER, c.hooks ?? {}));
      await waitRunning(srv.api, depId);
      const vol = volumeDir(dataDir, depId);
      const seq = path.join(vol, 'seq');
      await waitFor(() => seqCount(seq) >= 30, 15_000, 'the service to write');

      const min1 = seqCount(seq);
      const s1 = await snapshotReady(srv.api, depId, 'earlier');
      const max1 = seqCount(seq);
      await srv.stop();
      server = null;

      // The services outlived the server; one with the fault armed takes the next snapshot.
      const leader = runningLeader(dataDir, depId);
      expect(leader, 'the service runs while no server does').not.toBeNull();
      srv = await start(dataDir, c.point);
      const min2 = seqCount(seq);
      const s2Id = await startSnapshot(srv.api, depId, 'interrupted');
      await crashed(srv);

      const statesAtCrash = groupStates(leader!);
      expect(statesAtCrash.length).toBeGreaterThan(0);
      if (c.frozenAtCrash) {
        expect(allStopped(statesAtCrash), `states ${statesAtCrash.join(',')}`).toBe(true);
        const still = seqCount(seq);
        await sleep(300);
        expect(seqCount(seq), 'the sequence grew while the service was frozen').toBe(still);
      } else {
        expect(statesAtCrash).not.toContain('T');
      }

      srv = await start(dataDir);
      const s2 = await waitSnapshot(srv.api, depId, s2Id, 60_000);
      expect(['ready', 'failed']).toContain(s2.status);
      await noSnapshotCreating(srv.api, depId);

      // The service is running, not frozen, and writing.
      const states = (): string => groupStates(leaderOf(dataDir, depId)!).join(',');
      await waitFor(() => runningLeader(dataDir, depId), 15_000, 'the service to be running (not stopped)').catch((err: Error) => {
        throw new Error(`${err.message}: process states [${states()}], interrupted snapshot ${s2.status} (${s2.error ?? 'no error'})`, {
          cause: err,
        });
      });
      expect(groupStates(leaderOf(dataDir, depId)!)).not.toContain('T');
      const now = seqCount(seq);
      await waitFor(() => seqCount(seq) >= now + 20, 15_000, `the sequence to keep growing (stuck at ${seqCount(seq)})`);
      const dep = await getDeployment(srv.api, depId);
      expect(dep.services.map((s: { state: string }) => s.state)).toEqual(['running']);

      // The earlier snapshot is intact and restores to its moment.
      expect((await waitSnapshot(srv.api, depId, s1.id)).status).toBe('ready');
      await restoreAndCheck(srv, dataDir, depId, s1.id, { min: min1, max: max1 });

      // The resumed snapshot, when ready, is consistent too.
      if (s2.status === 'ready') {
        await restoreAndCheck(srv, dataDir, depId, s2Id, { min: min2, max: Number.MAX_SAFE_INTEGER });
      } else {
        expect(s2.error).toEqual(expect.any(String));
      }

      // And the deployment takes new snapshots.
      await snapshotReady(srv.api, depId, 'after-recovery');
      await srv.stop();
      server = null;
    });
  }
});
