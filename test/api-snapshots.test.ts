/**
 * The snapshot API end to end (docs/api.md): creating, listing,
 * getting and deleting snapshots, restoring and cloning them, automatic
 * snapshot settings, and the 409s of operations that collide, on a real
 * service (process runtime, temp data dir) driven through app.inject().
 */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import {
  ISO_UTC,
  type SnapshotView,
  createDeployment,
  expectContractSnapshot,
  expectError,
  expectOk,
  listSnapshots,
  occupyJobSlots,
  raw,
  setSlow,
  readVolume,
  slowSdl,
  takeSnapshot,
  volumeDir,
  writeVolume,
} from './helpers/api.js';
import { type Harness, sdlFor, startHarness } from './helpers/harness.js';

let h: Harness;
let clock: ManualClock;

beforeAll(async () => {
  clock = new ManualClock(Date.UTC(2026, 1, 10, 9, 15));
  h = await startHarness({ clock });
});
afterEach(async () => {
  await h.idle();
});
afterAll(async () => {
  await h?.close();
});

const base = (depId: string) => `/api/v1/deployments/${depId}`;

/** durationMs reads an interval the API reports ("30m", "24h", "1d"). */
function durationMs(s: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(s);
  if (!m) throw new Error(`not a duration: ${s}`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

describe('POST /deployments/:id/snapshots', () => {
  it('answers 202 with a creating snapshot that becomes ready', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'a.txt', 'x'.repeat(66));
    const r = await h.api('POST', `${base(dep)}/snapshots`, { label: 'before-migration' });
    const body = expectOk(r, 202);
    expect(Object.keys(body).sort()).toEqual(['snapshot', 'success']);
    const s = body.snapshot as SnapshotView;
    expectContractSnapshot(s);
    expect(s).toMatchObject({ label: 'before-migration', status: 'creating', automatic: false });
    expect(s.id).toMatch(/^snap-[a-z2-7]+$/);

    await h.idle();
    const got = expectOk(await h.api('GET', `${base(dep)}/snapshots/${s.id}`)).snapshot as SnapshotView;
    expectContractSnapshot(got);
    expect(got).toMatchObject({
      id: s.id,
      label: 'before-migration',
      status: 'ready',
      size: '66 B',
      automatic: false,
      createdAt: s.createdAt,
    });
  });

  it('reports createdAt in ISO 8601 UTC, at the time of the request', async () => {
    const dep = await createDeployment(h);
    clock.set(Date.UTC(2026, 1, 10, 9, 15, 0));
    const s = await takeSnapshot(h, dep);
    expect(s.createdAt).toMatch(ISO_UTC);
    expect(Date.parse(s.createdAt)).toBe(Date.UTC(2026, 1, 10, 9, 15, 0));
  });

  it('renders size in decimal units with one decimal above bytes', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'a.bin', Buffer.alloc(1234, 7));
    expect((await takeSnapshot(h, dep)).size).toBe('1.2 KB');
    writeVolume(h, dep, 'b.bin', Buffer.alloc(2_500_000 - 1234, 9));
    const big = await takeSnapshot(h, dep);
    expect(big.size).toBe('2.5 MB');
    expect(big.sizeBytes).toBe(2_500_000);
  });

  it('takes an empty volume as "0 B"', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep);
    expect(s.size).toBe('0 B');
  });

  it('needs no label: null when absent or null', async () => {
    const dep = await createDeployment(h);
    const a = await takeSnapshot(h, dep);
    expect(a.label).toBeNull();
    const b = await takeSnapshot(h, dep, null);
    expect(b.label).toBeNull();
  });

  it('accepts a request with no body at all (the body is optional)', async () => {
    const dep = await createDeployment(h);
    const r = await raw(h, 'POST', `${base(dep)}/snapshots`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ success: true, snapshot: { status: 'creating', label: null } });
  });

  it('accepts an empty JSON body', async () => {
    const dep = await createDeployment(h);
    const r = await raw(h, 'POST', `${base(dep)}/snapshots`, { headers: { 'content-type': 'application/json' }, payload: '' });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ success: true, snapshot: { status: 'creating', label: null } });
  });

  describe('labels', () => {
    let dep: string;
    beforeAll(async () => {
      dep = await createDeployment(h);
    });

    it('accepts 64 characters', async () => {
      const label = 'l'.repeat(64);
      const r = await h.api('POST', `${base(dep)}/snapshots`, { label });
      expect(expectOk(r, 202).snapshot.label).toBe(label);
    });

    it('counts characters, not UTF-16 units: 64 emoji are fine', async () => {
      const label = '\u{1F600}'.repeat(64);
      const r = await h.api('POST', `${base(dep)}/snapshots`, { label });
      expect(expectOk(r, 202).snapshot.label).toBe(label);
    });

    it('rejects 65 characters with INVALID_LABEL', async () => {
      const err = expectError(await h.api('POST', `${base(dep)}/snapshots`, { label: 'l'.repeat(65) }), 400, 'INVALID_LABEL');
      expect(err.message).toMatch(/64/);
    });

    it.each([
      ['a newline', 'before\nmigration'],
      ['a bell', 'before\u0007migration'],
      ['a NUL', 'nul\u0000'],
      ['a tab', 'tab\there'],
      ['DEL', 'del\u007f'],
      ['a carriage return', 'cr\r'],
    ])('rejects %s with INVALID_LABEL', async (_what, label) => {
      expectError(await h.api('POST', `${base(dep)}/snapshots`, { label }), 400, 'INVALID_LABEL');
    });

    it.each([
      ['a number', 42],
      ['a boolean', true],
      ['an object', { text: 'x' }],
      ['a list', ['x']],
    ])('rejects %s with 400', async (_what, label) => {
      const r = await h.api('POST', `${base(dep)}/snapshots`, { label });
      const err = expectError(r, 400, (r.body as { error?: { code?: string } })?.error?.code ?? '');
      expect(['INVALID_LABEL', 'INVALID_REQUEST']).toContain(r.body.error.code);
      expect(err.message).toMatch(/label/);
    });

    it('took no snapshot for any rejected label', async () => {
      await h.idle();
      const labels = (await listSnapshots(h, dep)).map((s) => s.label);
      expect(labels.sort()).toEqual(['\u{1F600}'.repeat(64), 'l'.repeat(64)].sort());
    });
  });

  it('rejects an unknown field with 400', async () => {
    const dep = await createDeployment(h);
    const err = expectError(await h.api('POST', `${base(dep)}/snapshots`, { label: 'x', labels: 'y' }), 400, 'INVALID_REQUEST');
    expect(err.message).toMatch(/labels/);
    expect(await listSnapshots(h, dep)).toEqual([]);
  });

  it('answers 404 DEPLOYMENT_NOT_FOUND for a missing deployment', async () => {
    expectError(await h.api('POST', `${base('dep-aaaaaaaaaaaa')}/snapshots`, {}), 404, 'DEPLOYMENT_NOT_FOUND');
  });
});

describe('GET /deployments/:id/snapshots', () => {
  it('lists newest first with the six contract fields', async () => {
    const dep = await createDeployment(h);
    const ids: string[] = [];
    for (const label of ['one', 'two', 'three']) {
      writeVolume(h, dep, 'f.txt', label);
      ids.push((await takeSnapshot(h, dep, label)).id);
      clock.advance(1000);
    }
    const r = expectOk(await h.api('GET', `${base(dep)}/snapshots`));
    expect(Object.keys(r).sort()).toEqual(['snapshots', 'success']);
    const list = r.snapshots as SnapshotView[];
    expect(list.map((s) => s.id)).toEqual([...ids].reverse());
    expect(list.map((s) => s.label)).toEqual(['three', 'two', 'one']);
    for (const s of list) {
      expectContractSnapshot(s);
      expect(s.status).toBe('ready');
    }
    const times = list.map((s) => Date.parse(s.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('lists newest first even when snapshots share a timestamp', async () => {
    const dep = await createDeployment(h);
    const a = await takeSnapshot(h, dep, 'a');
    const b = await takeSnapshot(h, dep, 'b');
    expect(a.createdAt).toBe(b.createdAt);
    expect((await listSnapshots(h, dep)).map((s) => s.id)).toEqual([b.id, a.id]);
  });

  it('answers the same JSON body for the same list, and a new one as soon as the list changes', async () => {
    const dep = await createDeployment(h);
    const first = await takeSnapshot(h, dep, 'first');
    const listed = async () => {
      await h.api('GET', `${base(dep)}/snapshots`); // sends the node's changes to the catalogue
      const r = await raw(h, 'GET', `${base(dep)}/snapshots`);
      expect(r.status).toBe(200);
      expect(r.res.headers['content-type']).toBe('application/json; charset=utf-8');
      return r.res.body;
    };
    const a = await listed();
    expect(await listed()).toBe(a);
    expect(JSON.parse(a)).toEqual({ success: true, snapshots: [first] });
    clock.advance(1000);
    const second = await takeSnapshot(h, dep, 'second');
    expect(JSON.parse(await listed()).snapshots.map((s: SnapshotView) => s.id)).toEqual([second.id, first.id]);
    expectOk(await h.api('DELETE', `${base(dep)}/snapshots/${first.id}`));
    await h.idle();
    const after = JSON.parse(await listed()).snapshots as SnapshotView[];
    expect(after.map((s) => s.id)).toEqual([second.id]);
    expectContractSnapshot(after[0]!);
  });

  it('is empty for a deployment with no snapshots', async () => {
    const dep = await createDeployment(h);
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshots`))).toEqual({ success: true, snapshots: [] });
  });
});

describe('GET and DELETE /deployments/:id/snapshots/:snapshotId', () => {
  it('gets one snapshot', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep, 'one');
    const body = expectOk(await h.api('GET', `${base(dep)}/snapshots/${s.id}`));
    expect(Object.keys(body).sort()).toEqual(['snapshot', 'success']);
    expect(body.snapshot).toEqual(s);
  });

  it('answers 404 SNAPSHOT_NOT_FOUND for a missing snapshot', async () => {
    const dep = await createDeployment(h);
    const err = expectError(await h.api('GET', `${base(dep)}/snapshots/snap-aaaaaaaaaaaa`), 404, 'SNAPSHOT_NOT_FOUND');
    expect(err.message).toContain('snap-aaaaaaaaaaaa');
    expectError(await h.api('DELETE', `${base(dep)}/snapshots/snap-aaaaaaaaaaaa`), 404, 'SNAPSHOT_NOT_FOUND');
  });

  it('deletes: {success: true}, then the snapshot is gone', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'a.txt', 'keep me');
    const keep = await takeSnapshot(h, dep, 'keep');
    const gone = await takeSnapshot(h, dep, 'gone');
    const r = await h.api('DELETE', `${base(dep)}/snapshots/${gone.id}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ success: true });
    await h.idle();
    expectError(await h.api('GET', `${base(dep)}/snapshots/${gone.id}`), 404, 'SNAPSHOT_NOT_FOUND');
    expect((await listSnapshots(h, dep)).map((s) => s.id)).toEqual([keep.id]);
    expectError(await h.api('DELETE', `${base(dep)}/snapshots/${gone.id}`), 404, 'SNAPSHOT_NOT_FOUND');
    // The other snapshot still restores.
    writeVolume(h, dep, 'a.txt', 'changed');
    expectOk(await h.api('POST', `${base(dep)}/snapshots/${keep.id}/restore`, { safetySnapshot: false }), 202);
    await h.idle();
    expect(readVolume(h, dep, 'a.txt')).toBe('keep me');
  });

  it('refuses to delete a snapshot still being created (409 SNAPSHOT_BUSY)', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    setSlow(h, dep, true);
    const s = expectOk(await h.api('POST', `${base(dep)}/snapshots`, {}), 202).snapshot as SnapshotView;
    expectError(await h.api('DELETE', `${base(dep)}/snapshots/${s.id}`), 409, 'SNAPSHOT_BUSY');
    await h.idle();
    expect((await listSnapshots(h, dep)).map((x) => [x.id, x.status])).toEqual([[s.id, 'ready']]);
  });
});

describe('restores', () => {
  it('restores a snapshot: 202 pending, then completed with downtimeMs, and the data is back', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'v1');
    const s = await takeSnapshot(h, dep, 'v1');
    writeVolume(h, dep, 'db.txt', 'v2');
    writeVolume(h, dep, 'new.txt', 'written after the snapshot');

    const r = await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safetySnapshot: false });
    const body = expectOk(r, 202);
    expect(Object.keys(body).sort()).toEqual(['restore', 'success']);
    expect(body.restore).toMatchObject({ id: expect.stringMatching(/^rst-/), snapshotId: s.id, status: 'pending', safetySnapshot: false });
    const rid = body.restore.id as string;

    await h.idle();
    const done = expectOk(await h.api('GET', `${base(dep)}/restores/${rid}`));
    expect(Object.keys(done).sort()).toEqual(['restore', 'success']);
    expect(done.restore).toMatchObject({ id: rid, snapshotId: s.id, status: 'completed', error: null, safetySnapshotId: null });
    expect(done.restore.downtimeMs).toEqual(expect.any(Number));
    expect(done.restore.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(done.restore.createdAt).toMatch(ISO_UTC);
    expect(done.restore.finishedAt).toMatch(ISO_UTC);

    expect(readVolume(h, dep, 'db.txt')).toBe('v1');
    expect(readVolume(h, dep, 'new.txt')).toBeNull();
    // No safety snapshot was taken.
    expect((await listSnapshots(h, dep)).map((x) => x.id)).toEqual([s.id]);
    // The services run again.
    const d = expectOk(await h.api('GET', base(dep))).deployment;
    expect(d.services.map((x: { state: string }) => x.state)).toEqual(['running']);
  });

  it('takes a safety snapshot "before-restore-<snapshotId>" by default', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'old');
    const s = await takeSnapshot(h, dep, 'old');
    writeVolume(h, dep, 'db.txt', 'current state');

    const r = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, {}), 202).restore;
    expect(r).toMatchObject({ status: 'pending', safetySnapshot: true });
    await h.idle();
    const done = expectOk(await h.api('GET', `${base(dep)}/restores/${r.id}`)).restore;
    expect(done.status).toBe('completed');
    expect(readVolume(h, dep, 'db.txt')).toBe('old');

    const list = await listSnapshots(h, dep);
    expect(list).toHaveLength(2);
    const safety = list.find((x) => x.id !== s.id)!;
    expectContractSnapshot(safety);
    expect(safety).toMatchObject({ label: `before-restore-${s.id}`, automatic: false, status: 'ready', id: done.safetySnapshotId });
    expect(safety.sizeBytes).toBe('current state'.length);

    // The safety snapshot undoes the restore.
    expectOk(await h.api('POST', `${base(dep)}/snapshots/${safety.id}/restore`, { safetySnapshot: false }), 202);
    await h.idle();
    expect(readVolume(h, dep, 'db.txt')).toBe('current state');
  });

  it('takes a safety snapshot when asked explicitly', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep);
    const r = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safetySnapshot: true }), 202).restore;
    await h.idle();
    const done = expectOk(await h.api('GET', `${base(dep)}/restores/${r.id}`)).restore;
    expect(done.status).toBe('completed');
    expect(done.safetySnapshotId).toMatch(/^snap-/);
    expect((await listSnapshots(h, dep)).map((x) => x.label)).toContain(`before-restore-${s.id}`);
  });

  it('accepts a restore request with no body (safety snapshot on)', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep);
    const r = await raw(h, 'POST', `${base(dep)}/snapshots/${s.id}/restore`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ success: true, restore: { snapshotId: s.id, status: 'pending', safetySnapshot: true } });
  });

  it('lists restores', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep);
    const r = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safetySnapshot: false }), 202).restore;
    await h.idle();
    const body = expectOk(await h.api('GET', `${base(dep)}/restores`));
    expect(body.restores.map((x: { id: string; status: string }) => [x.id, x.status])).toEqual([[r.id, 'completed']]);
  });

  it('rejects bad restore requests', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep);
    expectError(await h.api('POST', `${base(dep)}/snapshots/snap-aaaaaaaaaaaa/restore`, {}), 404, 'SNAPSHOT_NOT_FOUND');
    expect(
      expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safety: false }), 400, 'INVALID_REQUEST').message,
    ).toMatch(/safety/);
    expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safetySnapshot: 'no' }), 400, 'INVALID_REQUEST');
    expectError(await h.api('GET', `${base(dep)}/restores/rst-aaaaaaaaaaaa`), 404, 'RESTORE_NOT_FOUND');
    expect(expectOk(await h.api('GET', `${base(dep)}/restores`)).restores).toEqual([]);
  });

  it('refuses to restore a snapshot that is not ready (409 SNAPSHOT_NOT_READY)', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    setSlow(h, dep, true);
    const s = expectOk(await h.api('POST', `${base(dep)}/snapshots`, {}), 202).snapshot as SnapshotView;
    expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, {}), 409, 'SNAPSHOT_NOT_READY');
  });

  it('reports a failed restore with an error that names no host path', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'v1');
    const s = await takeSnapshot(h, dep);
    writeVolume(h, dep, 'db.txt', 'v2');
    fs.rmSync(h.paths.repo(dep), { recursive: true, force: true });
    const r = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safetySnapshot: false }), 202).restore;
    await h.idle();
    const got = await h.api('GET', `${base(dep)}/restores/${r.id}`);
    const done = expectOk(got).restore;
    expect(done.status).toBe('failed');
    expect(done.error).toEqual(expect.any(String));
    expect(done.error.length).toBeGreaterThan(0);
    expect(got.res.body).not.toContain(h.dataDir);
    expect(done.error).not.toMatch(/\n\s+at /);
    // The live volume was not touched, and the services run.
    expect(readVolume(h, dep, 'db.txt')).toBe('v2');
    const d = expectOk(await h.api('GET', base(dep))).deployment;
    expect(d.services[0].state).toBe('running');
  });
});

describe('POST /deployments/:id/snapshots/:snapshotId/clone', () => {
  it('creates a new deployment (201) whose volumes hold the snapshot data', async () => {
    const dep = await createDeployment(h, sdlFor('exec sleep 100000', { volumes: ['data', 'logs'] }));
    writeVolume(h, dep, 'db.txt', 'at snapshot time');
    writeVolume(h, dep, 'app.log', 'log line', 'logs');
    const s = await takeSnapshot(h, dep, 'to-clone');
    writeVolume(h, dep, 'db.txt', 'changed later');

    const r = await h.api('POST', `${base(dep)}/snapshots/${s.id}/clone`, {});
    const body = expectOk(r, 201);
    const clone = body.deployment;
    expect(clone.id).toMatch(/^dep-/);
    expect(clone.id).not.toBe(dep);
    expect(clone).toMatchObject({ status: 'active', clonedFrom: s.id, name: expect.any(String) });
    const src = expectOk(await h.api('GET', base(dep))).deployment;
    expect(clone.sdl).toBe(src.sdl);

    await h.idle();
    expect(readVolume(h, clone.id, 'db.txt')).toBe('at snapshot time');
    expect(readVolume(h, clone.id, 'app.log', 'logs')).toBe('log line');
    // The source is untouched.
    expect(readVolume(h, dep, 'db.txt')).toBe('changed later');
    const got = expectOk(await h.api('GET', base(clone.id))).deployment;
    expect(got.services[0].state).toBe('running');
    expect(expectOk(await h.api('GET', '/api/v1/deployments')).deployments.map((d: { id: string }) => d.id)).toContain(clone.id);
    // The clone is independent: its own snapshots, none copied.
    expect(await listSnapshots(h, clone.id)).toEqual([]);
  });

  it('takes a name', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep);
    const named = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/clone`, { name: 'staging copy' }), 201).deployment;
    expect(named.name).toBe('staging copy');
    expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/clone`, { name: 'x'.repeat(65) }), 400, 'INVALID_NAME');
  });

  it('accepts a clone request with no body', async () => {
    const dep = await createDeployment(h);
    const s = await takeSnapshot(h, dep);
    const r = await raw(h, 'POST', `${base(dep)}/snapshots/${s.id}/clone`);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ success: true, deployment: { status: 'active', clonedFrom: s.id } });
  });

  it('rejects a missing snapshot, an unknown field and a snapshot not ready', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    expectError(await h.api('POST', `${base(dep)}/snapshots/snap-aaaaaaaaaaaa/clone`, {}), 404, 'SNAPSHOT_NOT_FOUND');
    setSlow(h, dep, true);
    const s = expectOk(await h.api('POST', `${base(dep)}/snapshots`, {}), 202).snapshot as SnapshotView;
    expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/clone`, {}), 409, 'SNAPSHOT_NOT_READY');
    await h.idle();
    expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/clone`, { nmae: 'x' }), 400, 'INVALID_REQUEST');
  });
});

describe('409 OPERATION_IN_PROGRESS', () => {
  it('refuses a snapshot while another snapshot runs', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    setSlow(h, dep, true);
    const first = expectOk(await h.api('POST', `${base(dep)}/snapshots`, { label: 'first' }), 202).snapshot as SnapshotView;
    const err = expectError(await h.api('POST', `${base(dep)}/snapshots`, { label: 'second' }), 409, 'OPERATION_IN_PROGRESS');
    expect(err.message).toMatch(/snapshot/);
    await h.idle();
    expect((await listSnapshots(h, dep)).map((s) => [s.id, s.status])).toEqual([[first.id, 'ready']]);
    // Once it has finished, the next one is accepted.
    setSlow(h, dep, false);
    expectOk(await h.api('POST', `${base(dep)}/snapshots`, { label: 'second' }), 202);
  });

  it('refuses a restore while a snapshot runs', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    const s = await takeSnapshot(h, dep);
    setSlow(h, dep, true);
    expectOk(await h.api('POST', `${base(dep)}/snapshots`, {}), 202);
    expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, {}), 409, 'OPERATION_IN_PROGRESS');
    await h.idle();
    expect(expectOk(await h.api('GET', `${base(dep)}/restores`)).restores).toEqual([]);
  });

  it('refuses a snapshot, and a second restore, while a restore runs', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    const s = await takeSnapshot(h, dep);
    setSlow(h, dep, true);
    const r = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, {}), 202).restore;
    expectError(await h.api('POST', `${base(dep)}/snapshots`, {}), 409, 'OPERATION_IN_PROGRESS');
    expectError(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, {}), 409, 'OPERATION_IN_PROGRESS');
    await h.idle();
    expect(expectOk(await h.api('GET', `${base(dep)}/restores/${r.id}`)).restore.status).toBe('completed');
    expect(expectOk(await h.api('GET', `${base(dep)}/restores`)).restores).toHaveLength(1);
  });

  it('refuses a snapshot while the deployment is being created', async () => {
    const slots = await occupyJobSlots(h);
    let depId: string;
    try {
      const r = expectOk(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor('exec sleep 100000') }), 201);
      depId = r.deployment.id;
      const err = expectError(await h.api('POST', `${base(depId)}/snapshots`, {}), 409, 'OPERATION_IN_PROGRESS');
      expect(err.message).toMatch(/deploy/);
    } finally {
      slots.release();
    }
    await h.idle();
    expectOk(await h.api('POST', `${base(depId)}/snapshots`, {}), 202);
  });

  it('refuses to delete a snapshot while it is being restored (409 SNAPSHOT_BUSY)', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    writeVolume(h, dep, 'db.txt', 'v1');
    const s = await takeSnapshot(h, dep);
    setSlow(h, dep, true);
    const r = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, {}), 202).restore;
    expectError(await h.api('DELETE', `${base(dep)}/snapshots/${s.id}`), 409, 'SNAPSHOT_BUSY');
    await h.idle();
    expect(expectOk(await h.api('GET', `${base(dep)}/restores/${r.id}`)).restore.status).toBe('completed');
    expect(readVolume(h, dep, 'db.txt')).toBe('v1');
  });

  it('refuses to delete a snapshot while a clone of it is pending (409 SNAPSHOT_BUSY)', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'cloned');
    const s = await takeSnapshot(h, dep);
    // Two held snapshots fill the job queue's two slots, so the clone job stays queued.
    const slots = await occupyJobSlots(h);
    let clone: { id: string };
    try {
      clone = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/clone`, {}), 201).deployment;
      expectError(await h.api('DELETE', `${base(dep)}/snapshots/${s.id}`), 409, 'SNAPSHOT_BUSY');
    } finally {
      slots.release();
    }
    await h.idle();
    expect(readVolume(h, clone.id, 'db.txt')).toBe('cloned');
  });
});

describe('snapshot settings', () => {
  it('has the documented defaults', async () => {
    const dep = await createDeployment(h);
    const body = expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`));
    expect(Object.keys(body).sort()).toEqual(['settings', 'success']);
    expect(body.settings).toMatchObject({ enabled: false, interval: '24h', retention: 7, nextRunAt: null });
  });

  it('echoes the interval as written: "24h" stays "24h"', async () => {
    const dep = await createDeployment(h);
    const s = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { interval: '6h' })).settings;
    expect(s.interval).toBe('6h');
    const back = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { interval: '24h' })).settings;
    expect(back.interval).toBe('24h');
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.interval).toBe('24h');
  });

  it('changes enabled, interval and retention, and reports the next run', async () => {
    const dep = await createDeployment(h);
    const now = clock.now();
    const on = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true })).settings;
    expect(on).toMatchObject({ enabled: true, retention: 7 });
    expect(durationMs(on.interval)).toBe(24 * 3_600_000);
    expect(on.nextRunAt).toMatch(ISO_UTC);
    const next = Date.parse(on.nextRunAt);
    expect(next).toBeGreaterThanOrEqual(now + 24 * 3_600_000);
    expect(next).toBeLessThanOrEqual(now + 24 * 3_600_000 + 60_000);

    for (const interval of ['30m', '6h', '7d', '90s', '2h']) {
      const s = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { interval })).settings;
      expect(s.interval).toBe(interval);
    }
    expect(expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { retention: 1 })).settings.retention).toBe(1);
    expect(expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { retention: 100 })).settings.retention).toBe(100);
    const all = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true, interval: '6h', retention: 3 })).settings;
    expect(all).toMatchObject({ enabled: true, interval: '6h', retention: 3 });
    // A shorter interval brings the next run closer: at most one new interval away.
    expect(Date.parse(all.nextRunAt)).toBeLessThanOrEqual(clock.now() + 6 * 3_600_000 + 60_000);
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings).toEqual(all);

    const off = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: false })).settings;
    expect(off).toMatchObject({ enabled: false, interval: '6h', retention: 3, nextRunAt: null });
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.nextRunAt).toBeNull();
  });

  it('leaves the settings as they are for an empty body', async () => {
    const dep = await createDeployment(h);
    const before = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { retention: 5 })).settings;
    expect(expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, {})).settings).toEqual(before);
  });

  it.each(['5', '1w', '1.5h', '', ' 1h', '1h ', '0s', '-1h', '1H', 'h', '24 h', '1h30m'])(
    'rejects the malformed interval %j',
    async (interval) => {
      const dep = await createDeployment(h);
      const err = expectError(await h.api('PUT', `${base(dep)}/snapshot-settings`, { interval }), 400, 'INVALID_INTERVAL');
      expect(err.message).toMatch(/interval/);
      expect(durationMs(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.interval)).toBe(24 * 3_600_000);
    },
  );

  it.each([0, 101, -1])('rejects retention %j with INVALID_RETENTION', async (retention) => {
    const dep = await createDeployment(h);
    const err = expectError(await h.api('PUT', `${base(dep)}/snapshot-settings`, { retention }), 400, 'INVALID_RETENTION');
    expect(err.message).toMatch(/1.*100/);
  });

  it.each([1.5, '3', '7', null, true, [7], { n: 7 }, 1e300])('rejects retention %j with INVALID_RETENTION', async (retention) => {
    const dep = await createDeployment(h);
    const r = await h.api('PUT', `${base(dep)}/snapshot-settings`, { retention, enabled: true });
    const err = expectError(r, 400, 'INVALID_RETENTION');
    expect(err.message).toMatch(/1.*100/);
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.enabled).toBe(false);
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.retention).toBe(7);
  });

  it('rejects a non-boolean enabled, and unknown fields', async () => {
    const dep = await createDeployment(h);
    expectError(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: 'yes' }), 400, 'INVALID_REQUEST');
    expectError(await h.api('PUT', `${base(dep)}/snapshot-settings`, { interval: 3600 }), 400, 'INVALID_REQUEST');
    const err = expectError(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true, keep: 3 }), 400, 'INVALID_REQUEST');
    expect(err.message).toMatch(/keep/);
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.enabled).toBe(false);
  });

  it('answers 404 for a missing deployment', async () => {
    expectError(await h.api('GET', `${base('dep-aaaaaaaaaaaa')}/snapshot-settings`), 404, 'DEPLOYMENT_NOT_FOUND');
    expectError(await h.api('PUT', `${base('dep-aaaaaaaaaaaa')}/snapshot-settings`, { enabled: true }), 404, 'DEPLOYMENT_NOT_FOUND');
  });

  describe('with the default minimum interval of 1h', () => {
    let h2: Harness;
    beforeAll(async () => {
      h2 = await startHarness({ minSnapshotIntervalMs: 3_600_000 });
    });
    afterAll(async () => {
      await h2?.close();
    });

    it('rejects an interval below the minimum with a message stating it', async () => {
      const dep = await createDeployment(h2);
      for (const interval of ['30m', '59m', '3599s', '1s']) {
        const err = expectError(await h2.api('PUT', `${base(dep)}/snapshot-settings`, { interval }), 400, 'INVALID_INTERVAL');
        expect(err.message).toMatch(/at least 1h/);
      }
      for (const interval of ['1h', '60m', '3600s']) {
        const s = expectOk(await h2.api('PUT', `${base(dep)}/snapshot-settings`, { interval })).settings;
        expect(durationMs(s.interval)).toBe(3_600_000);
      }
      expect(expectOk(await h2.api('GET', '/api/v1/me')).server.minSnapshotInterval).toBe('1h');
    });
  });
});

describe('a closed deployment', () => {
  it('answers 409 DEPLOYMENT_NOT_ACTIVE on every snapshot endpoint, and its data is gone', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'data');
    const s = await takeSnapshot(h, dep);
    const r = expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safetySnapshot: false }), 202).restore;
    await h.idle();
    const closed = expectOk(await h.api('POST', `${base(dep)}/close`)).deployment;
    expect(closed.status).toBe('closed');
    await h.idle();

    const calls: Array<[string, string, unknown?]> = [
      ['GET', `${base(dep)}/snapshots`],
      ['POST', `${base(dep)}/snapshots`, { label: 'x' }],
      ['GET', `${base(dep)}/snapshots/${s.id}`],
      ['DELETE', `${base(dep)}/snapshots/${s.id}`],
      ['POST', `${base(dep)}/snapshots/${s.id}/restore`, {}],
      ['POST', `${base(dep)}/snapshots/${s.id}/clone`, {}],
      ['GET', `${base(dep)}/restores`],
      ['GET', `${base(dep)}/restores/${r.id}`],
      ['GET', `${base(dep)}/snapshot-settings`],
      ['PUT', `${base(dep)}/snapshot-settings`, { enabled: true }],
    ];
    for (const [method, url, body] of calls) {
      const res = await h.api(method, url, body);
      expect({ call: `${method} ${url}`, status: res.status }).toEqual({ call: `${method} ${url}`, status: 409 });
      expectError(res, 409, 'DEPLOYMENT_NOT_ACTIVE');
    }
    // Still readable.
    expect(expectOk(await h.api('GET', base(dep))).deployment.status).toBe('closed');
    expect(fs.existsSync(volumeDir(h, dep))).toBe(false);
    expect(fs.existsSync(h.paths.repo(dep))).toBe(false);
  });
});
