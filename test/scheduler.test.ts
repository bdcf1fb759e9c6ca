/**
 * Automatic snapshots (docs/api.md, "Automatic snapshots"), driven by
 * hand: a ManualClock and SettingsService.tick() stand in for the server's
 * timer, so no test sleeps for the schedule; h.idle() waits for the jobs a
 * tick queued.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { Store } from '../src/db/store.js';
import { Repository } from '../src/engine/index.js';
import {
  type SnapshotView,
  createDeployment,
  expectError,
  expectOk,
  listSnapshots,
  setSlow,
  slowSdl,
  takeSnapshot,
  volumeDir,
  writeVolume,
} from './helpers/api.js';
import { type Harness, sdlFor, startHarness } from './helpers/harness.js';

const SECOND = 1000;
/** The most jitter a 1 s interval gets: 5%. */
const JITTER_1S = 50;

let h: Harness;
let clock: ManualClock;

beforeAll(async () => {
  clock = new ManualClock(Date.UTC(2026, 0, 5, 8, 0, 0));
  h = await startHarness({ clock, minSnapshotIntervalMs: SECOND });
});
afterEach(async () => {
  // Close what the test left, so its schedule does not run in the next test's ticks.
  await h.idle();
  const open = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.filter((d: { status: string }) => d.status === 'active');
  for (const d of open) expectOk(await h.api('POST', `/api/v1/deployments/${d.id}/close`));
  await h.idle();
});
afterAll(async () => {
  await h?.close();
});

const settingsUrl = (dep: string) => `/api/v1/deployments/${dep}/snapshot-settings`;

async function putSettings(
  dep: string,
  body: Record<string, unknown>,
): Promise<{ enabled: boolean; interval: string; retention: number; nextRunAt: string | null }> {
  return expectOk(await h.api('PUT', settingsUrl(dep), body)).settings;
}

async function getSettings(dep: string): Promise<{ enabled: boolean; interval: string; retention: number; nextRunAt: string | null }> {
  return expectOk(await h.api('GET', settingsUrl(dep))).settings;
}

async function automatic(dep: string): Promise<SnapshotView[]> {
  return (await listSnapshots(h, dep)).filter((s) => s.automatic);
}

/** runDue advances the clock past the deployment's next run, ticks once, and waits for the jobs. */
async function runDue(dep: string): Promise<number> {
  const next = Date.parse((await getSettings(dep)).nextRunAt!);
  clock.set(Math.max(clock.now(), next));
  const queued = h.services.settings.tick();
  await h.idle();
  return queued;
}

describe('enabling', () => {
  it('sets nextRunAt to now + interval (plus at most 5% jitter)', async () => {
    const dep = await createDeployment(h);
    const now = clock.now();
    const s = await putSettings(dep, { enabled: true, interval: '1s' });
    expect(s.enabled).toBe(true);
    const next = Date.parse(s.nextRunAt!);
    expect(next).toBeGreaterThanOrEqual(now + SECOND);
    expect(next).toBeLessThan(now + SECOND + JITTER_1S);
    expect((await getSettings(dep)).nextRunAt).toBe(s.nextRunAt);
    expect(h.store.settings.get(dep).nextRunAt).toBe(next);
  });

  it('schedules a 24h interval at most a minute late', async () => {
    const dep = await createDeployment(h);
    const now = clock.now();
    const next = Date.parse((await putSettings(dep, { enabled: true })).nextRunAt!);
    expect(next).toBeGreaterThanOrEqual(now + 24 * 3_600_000);
    expect(next).toBeLessThanOrEqual(now + 24 * 3_600_000 + 60_000);
  });

  it('keeps the schedule when other settings change', async () => {
    const dep = await createDeployment(h);
    const first = (await putSettings(dep, { enabled: true, interval: '1s' })).nextRunAt;
    clock.advance(300);
    expect((await putSettings(dep, { retention: 3 })).nextRunAt).toBe(first);
    expect((await putSettings(dep, { enabled: true })).nextRunAt).toBe(first);
  });

  it('brings the next run closer when the interval shrinks', async () => {
    const dep = await createDeployment(h);
    const long = Date.parse((await putSettings(dep, { enabled: true, interval: '1h' })).nextRunAt!);
    const now = clock.now();
    const short = Date.parse((await putSettings(dep, { interval: '1s' })).nextRunAt!);
    expect(short).toBeLessThan(long);
    expect(short).toBeGreaterThanOrEqual(now + SECOND);
    expect(short).toBeLessThan(now + SECOND + JITTER_1S);
  });
});

describe('tick', () => {
  it('queues nothing before the snapshot is due', async () => {
    const dep = await createDeployment(h);
    const next = Date.parse((await putSettings(dep, { enabled: true, interval: '1s' })).nextRunAt!);
    expect(h.services.settings.tick()).toBe(0);
    clock.set(next - 1);
    expect(h.services.settings.tick()).toBe(0);
    await h.idle();
    expect(await listSnapshots(h, dep)).toEqual([]);
    expect(Date.parse((await getSettings(dep)).nextRunAt!)).toBe(next);
  });

  it('queues one automatic snapshot when due, which becomes ready', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'scheduled');
    const next = Date.parse((await putSettings(dep, { enabled: true, interval: '1s' })).nextRunAt!);
    clock.set(next);
    expect(h.services.settings.tick()).toBe(1);
    const queued = await listSnapshots(h, dep);
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ automatic: true, trigger: 'automatic', label: null });
    expect(['creating', 'ready']).toContain(queued[0]!.status);
    // The schedule moved on one interval at once: a second tick at the same time queues nothing.
    expect(h.services.settings.tick()).toBe(0);
    const moved = Date.parse((await getSettings(dep)).nextRunAt!);
    expect(moved).toBeGreaterThanOrEqual(next + SECOND);
    expect(moved).toBeLessThan(next + SECOND + JITTER_1S);

    await h.idle();
    const [s] = await automatic(dep);
    expect(s).toMatchObject({ status: 'ready', automatic: true, size: '9 B' });
    expect(Date.parse(s!.createdAt)).toBe(next);
  });

  it('takes one snapshot per interval as time goes on', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s', retention: 10 });
    for (let i = 1; i <= 3; i++) {
      expect(await runDue(dep)).toBe(1);
      expect(await automatic(dep)).toHaveLength(i);
    }
    expect((await automatic(dep)).every((s) => s.status === 'ready')).toBe(true);
  });

  it('does not burst after a long pause: one catch-up snapshot, then the normal interval', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s' });
    // Overdue by an hour: 3600 intervals.
    clock.advance(3_600_000);
    const now = clock.now();
    expect(h.services.settings.tick()).toBe(1);
    expect(h.services.settings.tick()).toBe(0);
    expect(h.services.settings.tick()).toBe(0);
    const next = Date.parse((await getSettings(dep)).nextRunAt!);
    expect(next).toBeGreaterThanOrEqual(now + SECOND);
    expect(next).toBeLessThan(now + SECOND + JITTER_1S);
    await h.idle();
    expect(await automatic(dep)).toHaveLength(1);

    clock.set(next - 1);
    expect(h.services.settings.tick()).toBe(0);
    clock.set(next);
    expect(h.services.settings.tick()).toBe(1);
    await h.idle();
    expect(await automatic(dep)).toHaveLength(2);
  });

  it('does not queue a second automatic snapshot while one still waits or runs', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    await putSettings(dep, { enabled: true, interval: '1s' });
    setSlow(h, dep, true);
    clock.advance(2 * SECOND);
    expect(h.services.settings.tick()).toBe(1);
    clock.advance(2 * SECOND);
    expect(h.services.settings.tick()).toBe(0);
    await h.idle();
    expect(await automatic(dep)).toHaveLength(1);
    // The schedule kept moving meanwhile.
    expect(Date.parse((await getSettings(dep)).nextRunAt!)).toBeGreaterThan(clock.now());
  });

  it('ignores a closed deployment', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s' });
    expectOk(await h.api('POST', `/api/v1/deployments/${dep}/close`));
    await h.idle();
    clock.advance(10 * SECOND);
    expect(h.services.settings.tick()).toBe(0);
    await h.idle();
    expect(h.store.snapshots.list(dep)).toEqual([]);
  });
});

describe('a server restart', () => {
  it('neither resets the schedule nor bursts: one catch-up snapshot, then the interval', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-sched-'));
    const c = new ManualClock(Date.UTC(2026, 0, 6, 0, 0, 0));
    try {
      const first = await startHarness({ clock: c, dataDir });
      let dep: string;
      let next: number;
      try {
        dep = await createDeployment(first);
        writeVolume(first, dep, 'db.txt', 'before the restart');
        next = Date.parse(expectOk(await first.api('PUT', settingsUrl(dep), { enabled: true, interval: '1s' })).settings.nextRunAt);
      } finally {
        await first.close();
      }

      // Down for a day: 86400 intervals missed.
      c.advance(86_400_000);
      const second = await startHarness({ clock: c, dataDir });
      try {
        await second.services.deployments.reconcile();
        const s = expectOk(await second.api('GET', settingsUrl(dep))).settings;
        expect(s).toMatchObject({ enabled: true, interval: '1s' });
        expect(Date.parse(s.nextRunAt)).toBe(next);

        expect(second.services.settings.tick()).toBe(1);
        expect(second.services.settings.tick()).toBe(0);
        await second.idle();
        const snaps = expectOk(await second.api('GET', `/api/v1/deployments/${dep}/snapshots`)).snapshots as SnapshotView[];
        expect(snaps.map((x) => [x.automatic, x.status])).toEqual([[true, 'ready']]);
        const after = Date.parse(expectOk(await second.api('GET', settingsUrl(dep))).settings.nextRunAt);
        expect(after).toBeGreaterThanOrEqual(c.now() + SECOND);
        expect(after).toBeLessThan(c.now() + SECOND + JITTER_1S);
      } finally {
        await second.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('retention', () => {
  it('keeps the 3 newest automatic snapshots of 5, and never deletes manual ones', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s', retention: 3 });
    const manualOld = await takeSnapshot(h, dep, 'manual-old');
    const autos: string[] = [];
    let manualMid: SnapshotView | undefined;
    for (let i = 1; i <= 5; i++) {
      writeVolume(h, dep, 'n.txt', String(i));
      expect(await runDue(dep)).toBe(1);
      const newest = (await automatic(dep))[0]!;
      expect(newest.status).toBe('ready');
      autos.push(newest.id);
      expect((await automatic(dep)).length).toBe(Math.min(i, 3));
      if (i === 2) {
        clock.advance(10);
        manualMid = await takeSnapshot(h, dep, 'manual-mid');
      }
    }
    const left = await automatic(dep);
    expect(left.map((s) => s.id)).toEqual(autos.slice(2).reverse());
    expect(left.every((s) => s.status === 'ready')).toBe(true);
    const manual = (await listSnapshots(h, dep)).filter((s) => !s.automatic);
    expect(manual.map((s) => s.id).sort()).toEqual([manualOld.id, manualMid!.id].sort());
    // Pruned snapshots are gone from the repository too; the kept ones restore.
    expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots/${autos[2]}/restore`, { safetySnapshot: false }), 202);
    await h.idle();
    expect(fs.readFileSync(path.join(volumeDir(h, dep), 'n.txt'), 'utf8')).toBe('3');
  });

  it('never prunes safety (before-restore) or before-update snapshots', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s', retention: 1 });
    const base = await takeSnapshot(h, dep, 'base');
    expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots/${base.id}/restore`, {}), 202);
    await h.idle();
    expect((await h.api('PUT', `/api/v1/deployments/${dep}`, { sdl: sdlFor('exec sleep 99999') })).status).toBe(202);
    await h.idle();
    for (let i = 0; i < 3; i++) expect(await runDue(dep)).toBe(1);
    const all = await listSnapshots(h, dep);
    expect(all.filter((s) => s.automatic)).toHaveLength(1);
    expect(
      all
        .filter((s) => !s.automatic)
        .map((s) => s.trigger)
        .sort(),
    ).toEqual(['before-restore', 'before-update', 'manual']);
  });

  it('opens the repository once for an automatic snapshot that prunes, gauge included', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s', retention: 1 });
    expect(await runDue(dep)).toBe(1);
    const opens = vi.spyOn(Repository, 'open');
    try {
      writeVolume(h, dep, 'n.txt', 'next');
      expect(await runDue(dep)).toBe(1);
      expect(await automatic(dep)).toHaveLength(1);
      expect(opens).toHaveBeenCalledTimes(1);
    } finally {
      opens.mockRestore();
    }
  });

  it('applies a lowered retention at the next automatic snapshot', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s', retention: 5 });
    for (let i = 0; i < 4; i++) expect(await runDue(dep)).toBe(1);
    const before = (await automatic(dep)).map((s) => s.id);
    expect(before).toHaveLength(4);
    await putSettings(dep, { retention: 2 });
    expect(await runDue(dep)).toBe(1);
    const after = (await automatic(dep)).map((s) => s.id);
    expect(after).toHaveLength(2);
    expect(after[1]).toBe(before[0]);
  });
});

describe('failed automatic snapshots', () => {
  const FAIL_MARKER = '.fail-snapshots';
  const failingSdl = sdlFor('exec sleep 100000', {
    pre: ['sh', '-c', `if [ -e ${FAIL_MARKER} ]; then echo "checkpoint refused"; exit 1; fi`],
  });

  it('is reported failed with a clear error', async () => {
    const dep = await createDeployment(h, sdlFor('exec sleep 100000', { pre: ['sh', '-c', 'exit 1'] }));
    await putSettings(dep, { enabled: true, interval: '1s', retention: 1 });
    expect(await runDue(dep)).toBe(1);
    const [s] = await automatic(dep);
    expect(s).toMatchObject({ status: 'failed', automatic: true });
    expect(s!.error).toMatch(/hook/);
    expect(s!.error).not.toContain(h.dataDir);
    // The schedule goes on.
    expect(await runDue(dep)).toBe(1);
    expect((await automatic(dep)).map((x) => x.status)).toEqual(['failed', 'failed']);
  });

  it('do not count toward retention and never cause a good one to be pruned', async () => {
    const dep = await createDeployment(h, failingSdl);
    await putSettings(dep, { enabled: true, interval: '1s', retention: 2 });
    expect(await runDue(dep)).toBe(1);
    expect(await runDue(dep)).toBe(1);
    const good = (await automatic(dep)).map((s) => s.id);
    expect((await automatic(dep)).map((s) => s.status)).toEqual(['ready', 'ready']);

    writeVolume(h, dep, FAIL_MARKER, '');
    for (let i = 0; i < 3; i++) expect(await runDue(dep)).toBe(1);
    let list = await automatic(dep);
    expect(list.map((s) => s.status)).toEqual(['failed', 'failed', 'failed', 'ready', 'ready']);
    expect(list.filter((s) => s.status === 'ready').map((s) => s.id)).toEqual(good);
    expect(list[0]!.error).toContain('checkpoint refused');

    // Good again: the retention counts only the ready ones, so the oldest good one goes.
    fs.rmSync(path.join(volumeDir(h, dep), FAIL_MARKER));
    expect(await runDue(dep)).toBe(1);
    list = await automatic(dep);
    const ready = list.filter((s) => s.status === 'ready').map((s) => s.id);
    expect(ready).toHaveLength(2);
    expect(ready[1]).toBe(good[0]);
    expect(ready).not.toContain(good[1]);
  });
});

describe('collisions with running operations', () => {
  it('an automatic snapshot due during a manual one waits and then runs (no 409 for the scheduler)', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    await putSettings(dep, { enabled: true, interval: '1s' });
    setSlow(h, dep, true);
    const manual = expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots`, { label: 'manual' }), 202).snapshot as SnapshotView;
    clock.advance(2 * SECOND);
    expect(h.services.settings.tick()).toBe(1);
    const during = await listSnapshots(h, dep);
    expect(during.map((s) => [s.automatic, s.status])).toEqual([
      [true, 'creating'],
      [false, 'creating'],
    ]);
    // A user's request still meets the queued operation.
    expectError(await h.api('POST', `/api/v1/deployments/${dep}/snapshots`, {}), 409, 'OPERATION_IN_PROGRESS');
    await h.idle();
    const after = await listSnapshots(h, dep);
    expect(after.map((s) => [s.automatic, s.status])).toEqual([
      [true, 'ready'],
      [false, 'ready'],
    ]);
    expect(after[1]!.id).toBe(manual.id);
  });

  it('an automatic snapshot due during a restore waits for the restore', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    writeVolume(h, dep, 'db.txt', 'v1');
    const s = await takeSnapshot(h, dep, 'v1');
    writeVolume(h, dep, 'db.txt', 'v2');
    await putSettings(dep, { enabled: true, interval: '1s' });
    setSlow(h, dep, true);
    const r = expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots/${s.id}/restore`, {}), 202).restore;
    clock.advance(2 * SECOND);
    expect(h.services.settings.tick()).toBe(1);
    await h.idle();
    expect(expectOk(await h.api('GET', `/api/v1/deployments/${dep}/restores/${r.id}`)).restore.status).toBe('completed');
    const [auto] = await automatic(dep);
    expect(auto!.status).toBe('ready');
    // Taken after the restore: it holds the restored data.
    expect(auto!.sizeBytes).toBe('v1'.length);
  });
});

describe('disabling', () => {
  it('clears nextRunAt and stops the schedule; enabling again starts from now', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s' });
    const off = await putSettings(dep, { enabled: false });
    expect(off).toMatchObject({ enabled: false, nextRunAt: null });
    expect((await getSettings(dep)).nextRunAt).toBeNull();
    expect(h.store.settings.get(dep).nextRunAt).toBeNull();
    clock.advance(3_600_000);
    expect(h.services.settings.tick()).toBe(0);
    await h.idle();
    expect(await listSnapshots(h, dep)).toEqual([]);

    const now = clock.now();
    const on = Date.parse((await putSettings(dep, { enabled: true })).nextRunAt!);
    expect(on).toBeGreaterThanOrEqual(now + SECOND);
    expect(on).toBeLessThan(now + SECOND + JITTER_1S);
  });
});

describe('batched gc', () => {
  const HOUR = 3_600_000;

  /** packBytes reads the bytes of a deployment's repository packs. */
  async function packBytes(hh: Harness, dep: string): Promise<number> {
    const repo = await Repository.open(hh.paths.repo(dep));
    try {
      return (await repo.stats()).packBytes;
    } finally {
      await repo.close();
    }
  }

  /** snapshotsOfUniqueData takes `n` snapshots, each holding 256 KiB no other one holds; returns their ids, oldest first. */
  async function snapshotsOfUniqueData(hh: Harness, dep: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      writeVolume(hh, dep, 'blob.bin', randomBytes(256 * 1024));
      ids.push((await takeSnapshot(hh, dep, `s${i}`)).id);
    }
    return ids;
  }

  async function deleteSnapshot(hh: Harness, dep: string, id: string): Promise<void> {
    expectOk(await hh.api('DELETE', `/api/v1/deployments/${dep}/snapshots/${id}`));
    await hh.idle();
  }

  it('deleting 5 snapshots runs gc zero times until the interval passes, then exactly once, and reclaims the space', async () => {
    const dep = await createDeployment(h);
    const ids = await snapshotsOfUniqueData(h, dep, 6);
    const before = await packBytes(h, dep);
    const gc = vi.spyOn(Repository.prototype, 'gc');
    const info = vi.spyOn(h.services.ctx.log, 'info');
    try {
      const firstDelete = clock.now();
      for (const id of ids.slice(0, 5)) {
        await deleteSnapshot(h, dep, id);
        clock.advance(60_000);
        h.services.settings.tick();
        await h.idle();
      }
      expect((await listSnapshots(h, dep)).map((s) => s.id)).toEqual([ids[5]]);
      expect(gc).not.toHaveBeenCalled();
      expect(h.store.gcDue.get(dep)).toMatchObject({ since: firstDelete, dueAt: firstDelete + HOUR });
      expect(await packBytes(h, dep)).toBe(before);

      clock.set(firstDelete + HOUR - 1);
      h.services.settings.tick();
      await h.idle();
      expect(gc).not.toHaveBeenCalled();

      clock.set(firstDelete + HOUR);
      h.services.settings.tick();
      h.services.settings.tick();
      await h.idle();
      expect(gc).toHaveBeenCalledTimes(1);
      const after = await packBytes(h, dep);
      expect(after).toBeLessThan(before - 5 * 200 * 1024);
      expect(h.store.gcDue.get(dep)).toBeUndefined();

      // Nothing more is due: later ticks collect nothing.
      clock.advance(2 * HOUR);
      h.services.settings.tick();
      await h.idle();
      expect(gc).toHaveBeenCalledTimes(1);

      // Its cost is reported, and the size gauge follows.
      const metrics = await h.services.ctx.metrics.render();
      expect(metrics).toMatch(/^kova_gc_duration_seconds_count 1$/m);
      const reclaimed = Number(/^kova_gc_reclaimed_bytes_total (\d+)$/m.exec(metrics)?.[1]);
      expect(reclaimed).toBe(before - after);
      expect(metrics).toContain(`kova_repository_bytes{deployment="${dep}"} ${after}`);
      expect(info).toHaveBeenCalledWith(
        expect.objectContaining({
          deployment: dep,
          durationMs: expect.any(Number),
          reclaimedBytes: before - after,
          packsRepacked: expect.any(Number),
          repositoryBytes: after,
          snapshots: 1,
        }),
        'garbage collected',
      );
    } finally {
      gc.mockRestore();
      info.mockRestore();
    }
    // The snapshot kept restores after the gc.
    expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots/${ids[5]}/restore`, { safetySnapshot: false }), 202);
    await h.idle();
    expect(expectOk(await h.api('GET', `/api/v1/deployments/${dep}/restores`)).restores[0].status).toBe('completed');
  });

  it('runs after a restart between the delete and the due time', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-gc-'));
    const c = new ManualClock(Date.UTC(2026, 0, 7, 0, 0, 0));
    try {
      const first = await startHarness({ clock: c, dataDir });
      let dep: string;
      let before: number;
      try {
        dep = await createDeployment(first);
        const ids = await snapshotsOfUniqueData(first, dep, 2);
        before = await packBytes(first, dep);
        await deleteSnapshot(first, dep, ids[0]!);
        // Down before the gc was due: the space is not reclaimed yet, the due mark is in the database.
        expect(await packBytes(first, dep)).toBe(before);
        expect(first.store.gcDue.get(dep)?.dueAt).toBe(c.now() + HOUR);
      } finally {
        await first.close();
      }

      c.advance(HOUR);
      const second = await startHarness({ clock: c, dataDir });
      const gc = vi.spyOn(Repository.prototype, 'gc');
      try {
        await second.services.deployments.reconcile();
        second.services.settings.tick();
        await second.idle();
        expect(gc).toHaveBeenCalledTimes(1);
        expect(await packBytes(second, dep)).toBeLessThan(before - 200 * 1024);
        expect(second.store.gcDue.get(dep)).toBeUndefined();
      } finally {
        gc.mockRestore();
        await second.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("a gc job interrupted by a restart runs again, and the deployment's services still come up", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-gc-'));
    const c = new ManualClock(Date.UTC(2026, 0, 8, 0, 0, 0));
    try {
      const first = await startHarness({ clock: c, dataDir });
      let dep: string;
      let before: number;
      try {
        dep = await createDeployment(first);
        const ids = await snapshotsOfUniqueData(first, dep, 2);
        before = await packBytes(first, dep);
        await deleteSnapshot(first, dep, ids[0]!);
      } finally {
        await first.close();
      }
      // What a crash leaves when it comes after the tick queued the gc and before the gc ran.
      c.advance(HOUR);
      const db = Store.open(first.paths.database);
      try {
        db.jobs.enqueue(dep, 'gc', {}, c.now());
      } finally {
        db.close();
      }

      // The spy first: the server resumes the job as soon as it starts. The gc
      // waits until the start-up has brought services up, as a long one would.
      let release!: () => void;
      const started = new Promise<void>((r) => (release = r));
      const realGc = Repository.prototype.gc;
      const gc = vi.spyOn(Repository.prototype, 'gc').mockImplementation(async function (this: Repository, opts) {
        await started;
        return realGc.call(this, opts);
      });
      const second = await startHarness({ clock: c, dataDir });
      try {
        await second.services.deployments.reconcile();
        release();
        await second.idle();
        expect(gc).toHaveBeenCalledTimes(1);
        expect(await packBytes(second, dep)).toBeLessThan(before - 200 * 1024);
        expect((await second.runtime.status(dep)).map((x) => x.state)).toEqual(['running']);
      } finally {
        gc.mockRestore();
        await second.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a database error while queuing gcs does not hold up the snapshot schedule', async () => {
    const dep = await createDeployment(h);
    await putSettings(dep, { enabled: true, interval: '1s' });
    const dueBy = vi.spyOn(h.store.gcDue, 'dueBy').mockImplementation(() => {
      throw new Error('SQLITE_IOERR: disk I/O error');
    });
    const logged = vi.spyOn(h.services.ctx.log, 'error');
    try {
      expect(await runDue(dep)).toBe(1);
      expect(dueBy).toHaveBeenCalled();
      expect(logged).toHaveBeenCalledWith(expect.anything(), expect.stringMatching(/could not queue the gcs due/));
      expect((await automatic(dep)).map((s) => s.status)).toEqual(['ready']);
    } finally {
      dueBy.mockRestore();
      logged.mockRestore();
    }
  });

  it('logs a failed gc and retries it one interval later, without blocking snapshots', async () => {
    const dep = await createDeployment(h);
    const ids = await snapshotsOfUniqueData(h, dep, 2);
    const before = await packBytes(h, dep);
    await deleteSnapshot(h, dep, ids[0]!);
    const gc = vi.spyOn(Repository.prototype, 'gc').mockRejectedValueOnce(new Error('the disk hiccupped'));
    const logged = vi.spyOn(h.services.ctx.log, 'error');
    try {
      clock.advance(HOUR);
      const failedAt = clock.now();
      h.services.settings.tick();
      await h.idle();
      expect(gc).toHaveBeenCalledTimes(1);
      expect(logged).toHaveBeenCalledWith(expect.objectContaining({ deployment: dep }), expect.stringMatching(/gc failed/));
      expect(h.store.gcDue.get(dep)?.dueAt).toBe(failedAt + HOUR);
      expect(await packBytes(h, dep)).toBe(before);

      // Snapshots go on meanwhile.
      writeVolume(h, dep, 'blob.bin', 'after the failure');
      await takeSnapshot(h, dep, 'meanwhile');

      clock.set(failedAt + HOUR - 1);
      h.services.settings.tick();
      await h.idle();
      expect(gc).toHaveBeenCalledTimes(1);

      clock.set(failedAt + HOUR);
      h.services.settings.tick();
      await h.idle();
      expect(gc).toHaveBeenCalledTimes(2);
      expect(await packBytes(h, dep)).toBeLessThan(before);
      expect(h.store.gcDue.get(dep)).toBeUndefined();
    } finally {
      gc.mockRestore();
      logged.mockRestore();
    }
  });
});
