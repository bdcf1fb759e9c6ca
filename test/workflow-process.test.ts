/**
 * End-to-end workflows on the process runtime, through the API of the
 * in-process harness: a service keeps appending a counter to a file in its
 * volume (its working directory) while snapshots are taken, restored,
 * cloned; the deployment is updated and closed. What the user sees through
 * the API is checked against what is on disk and what the service does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStat } from '../src/runtime/process/proc.js';
import {
  createDeployment,
  expectStatus,
  extractSnapshot,
  getDeployment,
  getSnapshot,
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
import { type Harness, sdlFor, startHarness, waitFor } from './helpers/harness.js';
import { addBulk, readBoots, readSeq, seqCount, seqScript, sequenceLength, sequenceProblem } from './helpers/sequence.js';

let h: Harness;
const extracted: string[] = [];

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
  for (const d of extracted) fs.rmSync(path.dirname(d), { recursive: true, force: true });
});

/** snapshotDir extracts one volume of a ready snapshot (from the repository) for inspection. */
async function snapshotDir(depId: string, snapId: string, volumeKey = 'app.data'): Promise<string> {
  const row = h.store.snapshots.get(snapId);
  expect(row?.engineId, `snapshot ${snapId} has no engine snapshot`).toBeTruthy();
  const dir = await extractSnapshot(h.paths, depId, row!.engineId!, volumeKey);
  extracted.push(dir);
  return dir;
}

/** The complete lines of a file another process is appending to (a read may end mid-line). */
function completeLines(text: string): string {
  return text.slice(0, text.lastIndexOf('\n') + 1);
}

function alive(pid: number): boolean {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

async function grows(file: string, atLeast: number): Promise<void> {
  await waitFor(() => seqCount(file) >= atLeast, 20_000, `${file} to reach ${atLeast} lines (at ${seqCount(file)})`);
}

describe('process runtime: snapshot and restore of a volume being written', () => {
  it('a snapshot taken mid-write is a clean prefix of the sequence; restoring it restarts the service on that data', async () => {
    const depId = await createDeployment(h.api, sdlFor(seqScript()));
    const dep = await waitRunning(h.api, depId);
    const vol = volumeDir(h.dataDir, depId);
    const seq = path.join(vol, 'seq');
    await grows(seq, 50);

    const startedBefore = dep.services[0].startedAt as string;
    const firstBoot = readBoots(vol);
    expect(firstBoot).toHaveLength(1);
    expect(firstBoot[0]!.from).toBe(0);

    const linesAtRequest = seqCount(seq);
    const snap = await snapshotReady(h.api, depId, 'mid-write');
    const linesAtReady = seqCount(seq);
    expect(snap.label).toBe('mid-write');
    expect(snap.consistency).toBe('frozen');
    expect(typeof snap.freezeMs).toBe('number');
    expect(snap.freezeMs).toBeGreaterThanOrEqual(0);
    expect(snap.freezeMs).toBeLessThan(2000);
    expect(snap.sizeBytes).toBeGreaterThan(0);

    // The snapshot holds exactly 1..N, taken between the request and `ready`.
    const inSnap = await snapshotDir(depId, snap.id);
    const snapText = readSeq(path.join(inSnap, 'seq'));
    expect(sequenceProblem(snapText)).toBeNull();
    const n = sequenceLength(snapText);
    expect(n).toBeGreaterThanOrEqual(linesAtRequest);
    expect(n).toBeLessThanOrEqual(linesAtReady);
    expect(readBoots(inSnap)).toEqual(firstBoot);

    // The service keeps writing: the live file moves well past the snapshot.
    await grows(seq, n + 100);
    const linesBeforeRestore = seqCount(seq);

    const rst = await restoreCompleted(h.api, depId, snap.id);
    expect(rst.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(rst.downtimeMs).toBeLessThan(3000); // stop, swap, start: no copying while the service is down
    expect(rst.safetySnapshotId).toMatch(/^snap-/);
    expect(rst.error).toBeNull();

    // A new process, started on the restored data: it found N, not what was live before.
    const after = await waitRunning(h.api, depId);
    expect(after.services[0].startedAt).not.toBe(startedBefore);
    const boots = await waitFor(
      () => {
        const b = readBoots(vol);
        return b.length >= 2 ? b : null;
      },
      10_000,
      'the restarted service to record its start',
    );
    expect(boots).toHaveLength(2);
    expect(boots[0]).toEqual(firstBoot[0]);
    expect(boots[1]!.pid).not.toBe(firstBoot[0]!.pid);
    expect(alive(firstBoot[0]!.pid)).toBe(false);
    expect(boots[1]!.from).toBe(n);
    expect(boots[1]!.from).toBeLessThan(linesBeforeRestore);

    // It goes on from there, with no gap: the live file is 1..M again.
    await grows(seq, n + 50);
    expect(sequenceProblem(completeLines(readSeq(seq)))).toBeNull();

    // The safety snapshot holds what was live just before the restore.
    const safety = await getSnapshot(h.api, depId, rst.safetySnapshotId);
    expect(safety.status).toBe('ready');
    expect(safety.label).toBe(`before-restore-${snap.id}`);
    expect(safety.automatic).toBe(false);
    const safetyText = readSeq(path.join(await snapshotDir(depId, safety.id), 'seq'));
    expect(sequenceProblem(safetyText)).toBeNull();
    expect(sequenceLength(safetyText)).toBeGreaterThanOrEqual(linesBeforeRestore);

    // Old data and staging are cleaned up.
    await waitFor(() => stagingDirs(h.dataDir, depId).length === 0, 10_000, 'staging directories to be removed');
  });

  it('captures all volumes of a deployment at the same moment', async () => {
    const script = seqScript({ mirror: '"$KOVA_VOLUME_LOGS/seq"' });
    const depId = await createDeployment(h.api, sdlFor(script, { volumes: ['data', 'logs'] }));
    await waitRunning(h.api, depId);
    const data = volumeDir(h.dataDir, depId, 'data');
    const logs = volumeDir(h.dataDir, depId, 'logs');
    addBulk(data); // data is captured before logs: this makes the gap between the two long
    await grows(path.join(logs, 'seq'), 30);

    for (let round = 0; round < 3; round++) {
      const snap = await snapshotReady(h.api, depId);
      expect(snap.consistency).toBe('frozen');
      expect(snap.freezeMs).toBeLessThan(2000);
      const a = readSeq(path.join(await snapshotDir(depId, snap.id, 'app.data'), 'seq'));
      const b = readSeq(path.join(await snapshotDir(depId, snap.id, 'app.logs'), 'seq'));
      expect(sequenceProblem(a)).toBeNull();
      expect(sequenceProblem(b)).toBeNull();
      // The writer appends to data, then to logs: frozen together, logs is at most one behind.
      const diff = sequenceLength(a) - sequenceLength(b);
      expect(diff, `data has ${sequenceLength(a)} lines, logs ${sequenceLength(b)}`).toBeGreaterThanOrEqual(0);
      expect(diff, `data has ${sequenceLength(a)} lines, logs ${sequenceLength(b)}`).toBeLessThanOrEqual(1);
      await grows(path.join(data, 'seq'), sequenceLength(a) + 20);
    }
  });
});

describe('process runtime: snapshot hooks', () => {
  it('runs the pre hook before the freeze (its marker is in the snapshot) and the post hook after', async () => {
    const sdl = sdlFor(seqScript({ sleep: 0.02 }), {
      pre: ['sh', '-c', 'echo "checkpoint $(cat seq | wc -l)" > pre-marker'],
      post: ['sh', '-c', 'echo done > post-marker'],
    });
    const depId = await createDeployment(h.api, sdl);
    await waitRunning(h.api, depId);
    const vol = volumeDir(h.dataDir, depId);
    await grows(path.join(vol, 'seq'), 10);
    expect(fs.existsSync(path.join(vol, 'pre-marker'))).toBe(false);

    const snap = await snapshotReady(h.api, depId);
    expect(snap.consistency).toBe('frozen');
    expect(snap.warning).toBeNull();
    const inSnap = await snapshotDir(depId, snap.id);
    expect(fs.readFileSync(path.join(inSnap, 'pre-marker'), 'utf8')).toMatch(/^checkpoint \d+\n$/);
    expect(fs.existsSync(path.join(inSnap, 'post-marker'))).toBe(false);
    expect(fs.readFileSync(path.join(vol, 'post-marker'), 'utf8')).toBe('done\n');
    expect(sequenceProblem(readSeq(path.join(inSnap, 'seq')))).toBeNull();
  });

  it('a failing pre hook fails the snapshot with its output, and leaves earlier snapshots intact', async () => {
    const pre = ['sh', '-c', 'if [ -f fail-hook ]; then echo "checkpoint refused: replica lagging" >&2; exit 3; fi; echo ok'];
    const depId = await createDeployment(h.api, sdlFor(seqScript({ sleep: 0.02 }), { pre }));
    await waitRunning(h.api, depId);
    const vol = volumeDir(h.dataDir, depId);
    const seq = path.join(vol, 'seq');
    await grows(seq, 10);

    const good = await snapshotReady(h.api, depId, 'good');
    const goodN = sequenceLength(readSeq(path.join(await snapshotDir(depId, good.id), 'seq')));
    fs.writeFileSync(path.join(vol, 'fail-hook'), 'x');

    const badId = await startSnapshot(h.api, depId, 'bad');
    const bad = await waitSnapshot(h.api, depId, badId);
    expect(bad.status).toBe('failed');
    expect(bad.error).toContain('checkpoint refused: replica lagging');
    expect(bad.error).toMatch(/exited with 3/);
    expect(bad.error).not.toContain(h.dataDir);

    // The earlier snapshot is untouched and the service was never left frozen.
    expect((await getSnapshot(h.api, depId, good.id)).status).toBe('ready');
    const list = await h.api('GET', `/api/v1/deployments/${depId}/snapshots`);
    expectStatus(list, 200, 'list snapshots');
    expect(list.body.snapshots.map((s: { id: string; status: string }) => `${s.id}:${s.status}`).sort()).toEqual(
      [`${good.id}:ready`, `${badId}:failed`].sort(),
    );
    const st = await h.runtime.status(depId);
    expect(st.map((s) => s.state)).toEqual(['running']);
    await grows(seq, seqCount(seq) + 5);

    // With the default safety snapshot, the hook fails it and the restore changes nothing.
    const refusedId = await startRestore(h.api, depId, good.id);
    const refused = await waitRestore(h.api, depId, refusedId);
    expect(refused.status).toBe('failed');
    expect(refused.error).toContain('checkpoint refused: replica lagging');
    expect(fs.existsSync(path.join(vol, 'fail-hook'))).toBe(true);
    expect(readBoots(vol)).toHaveLength(1);

    // Without it, the earlier snapshot restores: the marker written after it is gone.
    await restoreCompleted(h.api, depId, good.id, { safetySnapshot: false });
    expect(fs.existsSync(path.join(vol, 'fail-hook'))).toBe(false);
    const boots = await waitFor(
      () => {
        const b = readBoots(vol);
        return b.length === 2 ? b : null;
      },
      10_000,
      'the restarted service to record its start',
    );
    expect(boots[1]!.from).toBe(goodN);
    await waitFor(() => stagingDirs(h.dataDir, depId).length === 0, 10_000, 'staging directories to be removed');
  });
});

describe('process runtime: clone, update, close', () => {
  it('clone creates a deployment that starts from the snapshot and runs independently', async () => {
    const sdl = sdlFor(seqScript());
    const srcId = await createDeployment(h.api, sdl, 'origin');
    await waitRunning(h.api, srcId);
    const srcVol = volumeDir(h.dataDir, srcId);
    await grows(path.join(srcVol, 'seq'), 40);
    const snap = await snapshotReady(h.api, srcId, 'to-clone');
    const snapText = readSeq(path.join(await snapshotDir(srcId, snap.id), 'seq'));
    const n = sequenceLength(snapText);

    const res = await h.api('POST', `/api/v1/deployments/${srcId}/snapshots/${snap.id}/clone`, { name: 'copy' });
    expectStatus(res, 201, 'clone');
    const cloneId = res.body.deployment.id as string;
    expect(cloneId).not.toBe(srcId);
    expect(res.body.deployment.clonedFrom).toBe(snap.id);
    expect(res.body.deployment.name).toBe('copy');
    expect(res.body.deployment.status).toBe('active');

    const clone = await waitRunning(h.api, cloneId);
    expect(clone.sdl).toBe(sdl);
    const cloneVol = volumeDir(h.dataDir, cloneId);
    const cloneSeq = path.join(cloneVol, 'seq');
    const boots = await waitFor(
      () => {
        const b = readBoots(cloneVol);
        return b.length === 2 ? b : null;
      },
      10_000,
      'the clone to record its start',
    );
    // The clone's service came up on the snapshot's data...
    expect(boots[1]!.from).toBe(n);
    await grows(cloneSeq, n + 30);
    const cloneText = completeLines(readSeq(cloneSeq));
    expect(sequenceProblem(cloneText)).toBeNull();
    expect(cloneText.startsWith(snapText)).toBe(true);

    // ...and runs on its own: another process, another directory, both keep writing.
    const srcBoots = readBoots(srcVol);
    expect(srcBoots).toHaveLength(1);
    expect(boots[1]!.pid).not.toBe(srcBoots[0]!.pid);
    expect(alive(srcBoots[0]!.pid)).toBe(true);
    fs.writeFileSync(path.join(cloneVol, 'only-in-clone'), 'x');
    const srcNow = seqCount(path.join(srcVol, 'seq'));
    await grows(path.join(srcVol, 'seq'), srcNow + 20);
    expect(fs.existsSync(path.join(srcVol, 'only-in-clone'))).toBe(false);
    expect(readBoots(srcVol)).toEqual(srcBoots);

    // The clone has its own (empty) snapshot list; the original's is unchanged.
    const cloneSnaps = await h.api('GET', `/api/v1/deployments/${cloneId}/snapshots`);
    expectStatus(cloneSnaps, 200, 'list clone snapshots');
    expect(cloneSnaps.body.snapshots).toEqual([]);
    const srcSnaps = await h.api('GET', `/api/v1/deployments/${srcId}/snapshots`);
    expect(srcSnaps.body.snapshots.map((s: { id: string }) => s.id)).toEqual([snap.id]);

    // Closing the original leaves the clone running on its data.
    expectStatus(await h.api('POST', `/api/v1/deployments/${srcId}/close`), 200, 'close origin');
    await h.idle();
    const c = await waitRunning(h.api, cloneId);
    expect(c.status).toBe('active');
    const before = seqCount(cloneSeq);
    await grows(cloneSeq, before + 20);
  });

  it('update takes a before-update snapshot, then restarts the service with the new SDL on the same data', async () => {
    const depId = await createDeployment(h.api, sdlFor(seqScript()));
    const d0 = await waitRunning(h.api, depId);
    const vol = volumeDir(h.dataDir, depId);
    const seq = path.join(vol, 'seq');
    await grows(seq, 40);
    const atRequest = seqCount(seq);

    const newSdl = sdlFor(seqScript({ prelude: 'echo v2 > version' }));
    const res = await h.api('PUT', `/api/v1/deployments/${depId}`, { sdl: newSdl });
    expectStatus(res, 202, 'update');
    await h.idle();

    const d1 = await waitRunning(h.api, depId);
    expect(d1.sdl).toBe(newSdl);
    expect(d1.services[0].startedAt).not.toBe(d0.services[0].startedAt);
    await waitFor(() => fs.existsSync(path.join(vol, 'version')), 10_000, 'the new version to start');
    expect(fs.readFileSync(path.join(vol, 'version'), 'utf8')).toBe('v2\n');

    const list = await h.api('GET', `/api/v1/deployments/${depId}/snapshots`);
    expectStatus(list, 200, 'list snapshots');
    const before = list.body.snapshots.filter((s: { trigger: string }) => s.trigger === 'before-update');
    expect(before).toHaveLength(1);
    expect(before[0].status).toBe('ready');
    expect(before[0].label).toBe('before-update');
    expect(before[0].automatic).toBe(false);
    const inSnap = await snapshotDir(depId, before[0].id);
    expect(fs.existsSync(path.join(inSnap, 'version'))).toBe(false);
    const snapText = readSeq(path.join(inSnap, 'seq'));
    expect(sequenceProblem(snapText)).toBeNull();
    expect(sequenceLength(snapText)).toBeGreaterThanOrEqual(atRequest);

    // The restarted service kept the data: it continued from where the old one stopped.
    const boots = await waitFor(
      () => {
        const b = readBoots(vol);
        return b.length >= 2 ? b : null;
      },
      10_000,
      'the updated service to record its start',
    );
    expect(boots).toHaveLength(2);
    expect(boots[1]!.from).toBeGreaterThanOrEqual(sequenceLength(snapText));
    await grows(seq, boots[1]!.from + 20);
    expect(sequenceProblem(completeLines(readSeq(seq)))).toBeNull();
  });

  it('close stops the service, deletes volumes and repository, and leaves the record readable', async () => {
    const depId = await createDeployment(h.api, sdlFor(seqScript()));
    await waitRunning(h.api, depId);
    const vol = volumeDir(h.dataDir, depId);
    await grows(path.join(vol, 'seq'), 10);
    const snap = await snapshotReady(h.api, depId);
    const pid = readBoots(vol)[0]!.pid;
    const volumes = path.join(h.dataDir, 'volumes', depId);
    const repo = path.join(h.dataDir, 'repos', depId);
    expect(fs.existsSync(volumes)).toBe(true);
    expect(fs.existsSync(repo)).toBe(true);
    expect(alive(pid)).toBe(true);

    const res = await h.api('POST', `/api/v1/deployments/${depId}/close`);
    expectStatus(res, 200, 'close');
    expect(res.body.deployment.status).toBe('closed');
    await h.idle();

    expect(fs.existsSync(volumes)).toBe(false);
    expect(fs.existsSync(repo)).toBe(false);
    expect(alive(pid)).toBe(false);

    const d = await getDeployment(h.api, depId);
    expect(d.status).toBe('closed');
    expect(d.closedAt).toEqual(expect.any(String));
    for (const [method, url] of [
      ['GET', `/api/v1/deployments/${depId}/snapshots`],
      ['POST', `/api/v1/deployments/${depId}/snapshots`],
      ['GET', `/api/v1/deployments/${depId}/snapshots/${snap.id}`],
      ['POST', `/api/v1/deployments/${depId}/snapshots/${snap.id}/restore`],
    ] as const) {
      const r = await h.api(method, url, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${url}: ${JSON.stringify(r.body)}`).toBe(409);
      expect(r.body.error.code).toBe('DEPLOYMENT_NOT_ACTIVE');
    }
  });
});
