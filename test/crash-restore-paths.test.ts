/**
 * Crash recovery of restores of selected paths, on a real `kova serve`
 * (process runtime) started with KOVA_FAULT=<point>: it SIGKILLs itself at
 * that step, is started again without the fault, and the restore must end
 * `completed` with no request:
 *
 * - replace: each chosen path (here a folder of one volume and a file of
 *   another) is at every moment entirely old or entirely the snapshot's,
 *   ends the snapshot's, and everything else is untouched;
 * - alongside: `into` never holds a half-written restore: absent until the
 *   final rename, then the snapshot's paths; no temporary folder is left.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { describeTree, treeDigest } from '../src/engine/testing.js';
import { snapshotReady, stagingDirs, volumeDir, waitRestore, waitRunning } from './helpers/flows.js';
import { createDeployment } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type KovaServer, killServices, startKova } from './helpers/server-process.js';

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
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-crash-paths-'));
  dataDirs.push(d);
  return d;
}

async function crashed(srv: KovaServer): Promise<void> {
  const exit = await srv.waitExit(60_000);
  expect(exit, `the server should have died at its fault point; output:\n${srv.output().slice(-3000)}`).toEqual({
    code: null,
    signal: 'SIGKILL',
  });
  server = null;
}

function statusOnDisk(dataDir: string, rstId: string): string | undefined {
  const db = new Database(path.join(dataDir, 'kova.db'), { fileMustExist: true });
  try {
    return (db.prepare('SELECT status FROM restores WHERE id = ?').get(rstId) as { status: string } | undefined)?.status;
  } finally {
    db.close();
  }
}

function put(root: string, rel: string, body: string | Buffer): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, body);
}

/** A digest of a path's tree (content and metadata); null when absent. */
function digest(p: string, without?: string): string | null {
  if (!fs.existsSync(p)) return null;
  const d = describeTree(p);
  if (without) {
    const key = Buffer.from(without).toString('hex');
    for (const k of [...d.keys()]) if (k === key || k.startsWith(`${key}/`)) d.delete(k);
  }
  return treeDigest(d);
}

/** setup: a deployment with volumes data and logs in state A, snapshotted, then changed to B. */
async function setup(srv: KovaServer, dataDir: string) {
  const depId = await createDeployment(srv.api, sdlFor('while true; do sleep 0.2; done', { volumes: ['data', 'logs'] }));
  await waitRunning(srv.api, depId);
  const data = volumeDir(dataDir, depId, 'data');
  const logs = volumeDir(dataDir, depId, 'logs');
  put(data, 'db/main.db', Buffer.alloc(300_000, 'a'));
  for (let i = 0; i < 20; i++) put(data, `db/rows/${i}.txt`, `A-${i}\n`);
  put(data, 'config.json', '{"state":"A"}');
  put(logs, 'app.log', 'A log\n');
  const A = { db: digest(path.join(data, 'db')), log: digest(path.join(logs, 'app.log')) };
  const snap = await snapshotReady(srv.api, depId, 'A');
  put(data, 'db/main.db', Buffer.alloc(300_000, 'b'));
  put(data, 'db/rows/new.txt', 'B only');
  fs.rmSync(path.join(data, 'db/rows/3.txt'));
  put(data, 'config.json', '{"state":"B"}');
  put(logs, 'app.log', 'B log\n');
  put(logs, 'other.log', 'B other\n');
  const B = {
    db: digest(path.join(data, 'db')),
    log: digest(path.join(logs, 'app.log')),
    dataRest: digest(data, 'db'),
    logsRest: digest(logs, 'app.log'),
  };
  return { depId, data, logs, snap, A, B };
}

const REPLACE_CASES: ReadonlyArray<{ point: string; status: string; atCrash: [string, string] }> = [
  { point: 'restore:restoring', status: 'restoring', atCrash: ['B', 'B'] },
  { point: 'restore:staged', status: 'swapping', atCrash: ['B', 'B'] },
  { point: 'restore:stopped', status: 'swapping', atCrash: ['B', 'B'] },
  { point: 'restore:swapped-one', status: 'swapping', atCrash: ['A', 'B'] },
  { point: 'restore:swapped', status: 'swapping', atCrash: ['A', 'A'] },
];

describe('kill -9 during a restore of selected paths in place, then start again', () => {
  for (const c of REPLACE_CASES) {
    it(`at ${c.point}: each path old or new at the crash, then the snapshot's; the rest untouched`, async () => {
      const dataDir = newDataDir();
      let srv = (server = await startKova({ dataDir, fault: c.point }));
      const s = await setup(srv, dataDir);
      const which = () => [
        { [s.A.db!]: 'A', [s.B.db!]: 'B' }[digest(path.join(s.data, 'db'))!] ?? 'mixed',
        { [s.A.log!]: 'A', [s.B.log!]: 'B' }[digest(path.join(s.logs, 'app.log'))!] ?? 'mixed',
      ];
      const r = await srv.api('POST', `/api/v1/deployments/${s.depId}/snapshots/${s.snap.id}/restore`, {
        paths: ['app/data/db', 'app/logs/app.log'],
      });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const rstId = r.body.restore.id as string;
      await crashed(srv);

      expect(statusOnDisk(dataDir, rstId)).toBe(c.status);
      expect(which()).toEqual(c.atCrash);
      expect([digest(s.data, 'db'), digest(s.logs, 'app.log')]).toEqual([s.B.dataRest, s.B.logsRest]);

      srv = server = await startKova({ dataDir });
      const done = await waitRestore(srv.api, s.depId, rstId);
      expect(done.status, JSON.stringify(done)).toBe('completed');
      expect(which()).toEqual(['A', 'A']);
      expect([digest(s.data, 'db'), digest(s.logs, 'app.log')]).toEqual([s.B.dataRest, s.B.logsRest]);
      await waitRunning(srv.api, s.depId);
      await waitFor(() => stagingDirs(dataDir, s.depId).length === 0, 15_000, 'the staging directory to go');
      await srv.stop();
      server = null;
    });
  }
});

const ALONGSIDE_CASES: ReadonlyArray<{ point: string; status: string; intoAtCrash: 'absent' | 'A'; tempAtCrash: boolean }> = [
  { point: 'restore:restoring', status: 'restoring', intoAtCrash: 'absent', tempAtCrash: false },
  { point: 'restore:staged', status: 'swapping', intoAtCrash: 'absent', tempAtCrash: true },
  { point: 'restore:placed', status: 'swapping', intoAtCrash: 'A', tempAtCrash: false },
];

describe('kill -9 during a restore of selected paths alongside, then start again', () => {
  for (const c of ALONGSIDE_CASES) {
    it(`at ${c.point}: into is absent or complete, never partial; then complete, nothing left over`, async () => {
      const dataDir = newDataDir();
      let srv = (server = await startKova({ dataDir, fault: c.point }));
      const s = await setup(srv, dataDir);
      const into = path.join(s.data, 'restored');
      const temps = () => fs.readdirSync(s.data).filter((n) => n.startsWith('.kova-restore-'));
      const r = await srv.api('POST', `/api/v1/deployments/${s.depId}/snapshots/${s.snap.id}/restore`, {
        paths: ['app/data/db'],
        mode: 'alongside',
        into: 'restored',
      });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const rstId = r.body.restore.id as string;
      await crashed(srv);

      expect(statusOnDisk(dataDir, rstId)).toBe(c.status);
      expect(c.intoAtCrash === 'absent' ? fs.existsSync(into) : digest(path.join(into, 'db')) === s.A.db).toBe(c.intoAtCrash !== 'absent');
      expect(temps().length).toBe(c.tempAtCrash ? 1 : 0);
      expect(digest(path.join(s.data, 'db'))).toBe(s.B.db);

      srv = server = await startKova({ dataDir });
      const done = await waitRestore(srv.api, s.depId, rstId);
      expect(done.status, JSON.stringify(done)).toBe('completed');
      expect(fs.readdirSync(into)).toEqual(['db']);
      expect(digest(path.join(into, 'db'))).toBe(s.A.db);
      expect(digest(path.join(s.data, 'db'))).toBe(s.B.db);
      expect(temps()).toEqual([]);
      await srv.stop();
      server = null;
    });
  }
});
