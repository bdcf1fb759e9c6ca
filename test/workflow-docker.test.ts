/**
 * The main workflow on a real Docker engine: a container appends a counter
 * to /data/seq (a bind-mounted volume) while a snapshot is taken with the
 * container paused; restoring it stops the container, swaps the volume
 * directory and starts it again, and the container sees the restored data.
 *
 * Needs dockerd and busybox-static. With CI=true a missing daemon fails the
 * suite; elsewhere the suite is skipped with a message.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker/docker-runtime.js';
import {
  createDeployment,
  extractSnapshot,
  getSnapshot,
  restoreCompleted,
  snapshotReady,
  stagingDirs,
  volumeDir,
  waitRunning,
} from './helpers/flows.js';
import { type Harness, sdlFor, startHarness, waitFor } from './helpers/harness.js';
import { ensureBusyboxImage } from './helpers/images.js';
import { ScopedRuntime } from './helpers/scoped-runtime.js';
import { addBulk, parseBoots, readBoots, readSeq, seqCount, seqScript, sequenceLength, sequenceProblem } from './helpers/sequence.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const SOCKET = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST : undefined;
const DOCKER_UP = await DockerRuntime.available({ socketPath: SOCKET, timeoutMs: 3000 });
if (!DOCKER_UP && !IN_CI) {
  console.warn(`skipping the Docker workflow tests: no Docker daemon answers on ${SOCKET ?? '/var/run/docker.sock'} (start dockerd)`);
}

const md5 = (s: string): string => crypto.createHash('md5').update(s).digest('hex');

describe.skipIf(!DOCKER_UP && !IN_CI)('Docker runtime: snapshot and restore of a container writing to its volume', () => {
  let h: Harness;
  let image: string;
  const extracted: string[] = [];

  beforeAll(async () => {
    if (!DOCKER_UP) throw new Error(`CI: Docker is required but no daemon answers on ${SOCKET ?? '/var/run/docker.sock'}`);
    image = await ensureBusyboxImage({ socketPath: SOCKET });
    h = await startHarness({
      runtime: () => new ScopedRuntime(new DockerRuntime({ socketPath: SOCKET, networkMode: 'none', stopTimeoutSec: 2 })),
    });
  });

  afterAll(async () => {
    await h?.close();
    for (const d of extracted) fs.rmSync(path.dirname(d), { recursive: true, force: true });
  });

  async function execOut(depId: string, cmd: string): Promise<string> {
    const r = await h.runtime.exec(depId, 'app', ['sh', '-c', cmd], { timeoutMs: 20_000 });
    expect(r.exitCode, `exec ${cmd}: ${r.output}`).toBe(0);
    return r.output;
  }

  it('snapshots while writing (paused), restores to that exact point, and restarts the container on it', async () => {
    const sdl = sdlFor(seqScript({ file: '/data/seq' }), { image, pre: ['sh', '-c', 'wc -l < /data/seq > /data/pre-marker'] });
    const depId = await createDeployment(h.api, sdl);
    await waitRunning(h.api, depId, 60_000);
    const vol = volumeDir(h.dataDir, depId);
    const seq = path.join(vol, 'seq');
    await waitFor(() => seqCount(seq) >= 50, 30_000, 'the container to write 50 lines');

    const [st0] = await h.runtime.status(depId);
    expect(st0?.state).toBe('running');
    const startedBefore = st0!.startedAt;
    expect(startedBefore).toEqual(expect.any(String));
    const firstBoot = readBoots(vol);
    expect(firstBoot).toHaveLength(1);

    const atRequest = seqCount(seq);
    const snap = await snapshotReady(h.api, depId, 'docker-mid-write');
    const atReady = seqCount(seq);
    expect(snap.consistency).toBe('frozen');
    expect(typeof snap.freezeMs).toBe('number');
    expect(snap.freezeMs).toBeLessThan(5000);
    expect(snap.warning).toBeNull();
    expect((await h.runtime.status(depId))[0]?.state).toBe('running'); // thawed after the capture

    const row = h.store.snapshots.get(snap.id)!;
    const inSnap = await extractSnapshot(h.paths, depId, row.engineId!);
    extracted.push(inSnap);
    const snapText = readSeq(path.join(inSnap, 'seq'));
    expect(sequenceProblem(snapText)).toBeNull();
    const n = sequenceLength(snapText);
    expect(n).toBeGreaterThanOrEqual(atRequest);
    expect(n).toBeLessThanOrEqual(atReady);
    // The pre hook ran inside the container, before the freeze: its output is in the snapshot.
    expect(Number(fs.readFileSync(path.join(inSnap, 'pre-marker'), 'utf8').trim())).toBeGreaterThanOrEqual(atRequest);

    await waitFor(() => seqCount(seq) >= n + 100, 30_000, 'the container to write past the snapshot');
    const beforeRestore = seqCount(seq);

    const rst = await restoreCompleted(h.api, depId, snap.id);
    expect(rst.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(rst.downtimeMs).toBeLessThan(5000);

    // The container was restarted...
    await waitRunning(h.api, depId, 30_000);
    const [st1] = await h.runtime.status(depId);
    expect(st1?.state).toBe('running');
    expect(st1?.startedAt).not.toBe(startedBefore);
    expect(Date.parse(st1!.startedAt!)).toBeGreaterThan(Date.parse(startedBefore!));

    // ...on the restored data, as the container itself sees it.
    const boots = await waitFor(
      async () => {
        const b = parseBoots(await execOut(depId, 'cat /data/boots'));
        return b.length >= 2 ? b : null;
      },
      20_000,
      'the restarted container to record its start',
    );
    expect(boots).toHaveLength(2);
    expect(boots[1]!.from).toBe(n);
    expect(boots[1]!.from).toBeLessThan(beforeRestore);
    const prefix = await execOut(depId, `head -n ${n} /data/seq | md5sum`);
    expect(prefix.trim().split(/\s+/)[0]).toBe(md5(snapText));
    await waitFor(() => seqCount(seq) >= n + 30, 30_000, 'the restarted container to write on');
    const live = readSeq(seq);
    expect(sequenceProblem(live.slice(0, live.lastIndexOf('\n') + 1))).toBeNull();

    const safety = await getSnapshot(h.api, depId, rst.safetySnapshotId);
    expect(safety.status).toBe('ready');
    expect(safety.consistency).toBe('frozen');
    await waitFor(() => stagingDirs(h.dataDir, depId).length === 0, 10_000, 'staging directories to be removed');
  });

  it('captures two mounted volumes at the same moment; close removes the container and the data', async () => {
    const sdl = sdlFor(seqScript({ file: '/data/seq', mirror: '/logs/seq' }), { image, volumes: ['data', 'logs'] });
    const depId = await createDeployment(h.api, sdl);
    await waitRunning(h.api, depId, 60_000);
    const logs = path.join(volumeDir(h.dataDir, depId, 'logs'), 'seq');
    addBulk(volumeDir(h.dataDir, depId, 'data')); // data is captured before logs: this makes the gap between the two long
    await waitFor(() => seqCount(logs) >= 30, 30_000, 'the container to write 30 lines');

    for (let round = 0; round < 2; round++) {
      const snap = await snapshotReady(h.api, depId);
      expect(snap.consistency).toBe('frozen');
      const engineId = h.store.snapshots.get(snap.id)!.engineId!;
      const a = await extractSnapshot(h.paths, depId, engineId, 'app.data');
      const b = await extractSnapshot(h.paths, depId, engineId, 'app.logs');
      extracted.push(a, b);
      const ta = readSeq(path.join(a, 'seq'));
      const tb = readSeq(path.join(b, 'seq'));
      expect(sequenceProblem(ta)).toBeNull();
      expect(sequenceProblem(tb)).toBeNull();
      const diff = sequenceLength(ta) - sequenceLength(tb);
      expect(diff, `data has ${sequenceLength(ta)} lines, logs ${sequenceLength(tb)}`).toBeGreaterThanOrEqual(0);
      expect(diff, `data has ${sequenceLength(ta)} lines, logs ${sequenceLength(tb)}`).toBeLessThanOrEqual(1);
      await waitFor(() => seqCount(logs) >= sequenceLength(tb) + 20, 30_000, 'the container to write on');
    }

    const res = await h.api('POST', `/api/v1/deployments/${depId}/close`);
    expect(res.status).toBe(200);
    await h.idle();
    expect(await h.runtime.status(depId)).toEqual([expect.objectContaining({ name: 'app', state: 'missing' })]);
    expect(fs.existsSync(path.join(h.dataDir, 'volumes', depId))).toBe(false);
    expect(fs.existsSync(path.join(h.dataDir, 'repos', depId))).toBe(false);
  });
});
