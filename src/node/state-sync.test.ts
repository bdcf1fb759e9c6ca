/** state-sync: versions bumped by triggers, acknowledged versions kept across a restart, progress throttled. */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeploymentState } from '../network/protocol.js';
import { MIGRATIONS } from '../db/migrations.js';
import { StateSync } from './state-sync.js';
import { type TestNode, testNode, userWithDeployment } from './testing.js';

const nodes: TestNode[] = [];

afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
});

function start(): TestNode {
  const n = testNode();
  nodes.push(n);
  return n;
}

/** A control plane that records the documents and acknowledges every one (unless told not to). */
function fakePlane(): { sent: DeploymentState[][]; ackAll: boolean; sync(n: TestNode): StateSync } {
  const plane = {
    sent: [] as DeploymentState[][],
    ackAll: true,
    sync(n: TestNode): StateSync {
      return new StateSync(n.services.ctx, n.services.deployments, async (docs) => {
        plane.sent.push([...docs]);
        return plane.ackAll ? docs.map((d) => ({ deploymentId: d.deployment.id, version: d.version })) : [];
      });
    },
  };
  return plane;
}

describe('sync versions', () => {
  it('grow on every change to a deployment’s rows, in the same transaction', () => {
    const n = start();
    const sync = fakePlane().sync(n);
    const { userId, depId } = userWithDeployment(n);
    const v = (): number => sync.versions.get(depId)!.version;
    const afterCreate = v();
    expect(afterCreate).toBeGreaterThan(0);

    const snap = n.services.snapshots.create(userId, depId, 'one');
    const afterSnapshot = v();
    expect(afterSnapshot).toBeGreaterThan(afterCreate);
    n.services.settings.put(userId, depId, { enabled: true, interval: '1h' });
    expect(v()).toBeGreaterThan(afterSnapshot);
    const beforeDelete = v();
    n.store.snapshots.delete(snap.id);
    expect(v()).toBeGreaterThan(beforeDelete);

    // A transaction that fails leaves the version as it was.
    const before = v();
    expect(() =>
      n.store.tx(() => {
        n.store.snapshots.update(snap.id, { status: 'failed' });
        n.store.settings.delete(depId);
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    expect(v()).toBe(before);
  });

  it('mark progress-only changes as not urgent', () => {
    const n = start();
    const sync = fakePlane().sync(n);
    const { userId, depId } = userWithDeployment(n);
    const snap = n.services.snapshots.create(userId, depId, null);
    const s0 = sync.versions.get(depId)!;
    n.store.snapshots.update(snap.id, { progressDone: 10, progressTotal: 100 });
    const s1 = sync.versions.get(depId)!;
    expect(s1.version).toBe(s0.version + 1);
    expect(s1.urgentVersion).toBe(s0.urgentVersion);
    n.store.snapshots.update(snap.id, { status: 'ready', progressDone: 100 });
    const s2 = sync.versions.get(depId)!;
    expect(s2.urgentVersion).toBeGreaterThan(s1.version);
  });
});

describe('StateSync', () => {
  it('sends whole documents: rows, settings, snapshots, restores without their journal, the operation', async () => {
    const n = start();
    const plane = fakePlane();
    const sync = plane.sync(n);
    const { userId, depId } = userWithDeployment(n);
    const snap = n.services.snapshots.create(userId, depId, 'before');
    n.store.restores.insert({
      id: 'rst-aaaaaaaaaaaa',
      deploymentId: depId,
      snapshotId: snap.id,
      safetySnapshot: false,
      volumes: null,
      createdAt: n.clock.now(),
    });
    n.store.restores.update('rst-aaaaaaaaaaaa', { journal: { stagingDir: '/secret/staging' } });
    expect(await sync.flush()).toBe(1);
    const doc = plane.sent[0]![0]!;
    expect(doc.deployment).toMatchObject({ id: depId, userId, status: 'active' });
    expect(doc.version).toBe(sync.versions.get(depId)!.version);
    expect(doc.snapshots.map((s) => [s.id, s.status, s.label])).toEqual([[snap.id, 'creating', 'before']]);
    expect(doc.restores).toHaveLength(1);
    expect(doc.restores[0]).not.toHaveProperty('journal');
    expect(JSON.stringify(doc)).not.toContain('/secret/staging');
    expect(doc.operation).toBe('snapshot');
    expect(doc.settings).toMatchObject({ deploymentId: depId, enabled: false });
    expect(doc.snapshotSummary).toEqual({ count: 0, sizeBytes: 0, storedBytes: 0, lastSnapshotAt: null });
    // Acknowledged: nothing more to send until the next change.
    expect(sync.due()).toEqual([]);
    expect(await sync.flush()).toBe(0);
  });

  it('keeps acknowledged versions across a restart and resends only what was not acknowledged', async () => {
    let n = start();
    const plane = fakePlane();
    const a = userWithDeployment(n, 'usr-a');
    const b = userWithDeployment(n, 'usr-b');
    await plane.sync(n).flush();
    expect(
      plane.sent
        .flat()
        .map((d) => d.deployment.id)
        .sort(),
    ).toEqual([a.depId, b.depId].sort());

    // A change the control plane never acknowledges (it was unreachable), then a restart.
    plane.ackAll = false;
    n.services.snapshots.create(b.userId, b.depId, 'offline');
    await plane.sync(n).flush();
    const reopened = await n.reopen();
    nodes[nodes.indexOf(n)] = reopened;
    n = reopened;

    plane.sent.length = 0;
    plane.ackAll = true;
    const sync = plane.sync(n);
    expect(sync.due().map((v) => v.deploymentId)).toEqual([b.depId]);
    await sync.flush();
    expect(plane.sent.flat().map((d) => [d.deployment.id, d.snapshots.map((s) => s.label)])).toEqual([[b.depId, ['offline']]]);
    expect(sync.due()).toEqual([]);
  });

  it('throttles progress-only documents to one per interval; any other change goes at once', async () => {
    const n = start();
    const plane = fakePlane();
    const sync = plane.sync(n);
    const { userId, depId } = userWithDeployment(n);
    const snap = n.services.snapshots.create(userId, depId, null);
    await sync.flush();
    plane.sent.length = 0;

    for (let i = 1; i <= 5; i++) {
      n.clock.advance(100);
      n.store.snapshots.update(snap.id, { progressDone: i * 10, progressTotal: 100 });
      await sync.flush();
    }
    // 500 ms of progress every 100 ms: one document, when the interval had passed.
    expect(plane.sent.flat().map((d) => d.snapshots[0]!.progressDone)).toEqual([50]);

    n.clock.advance(100);
    n.store.snapshots.update(snap.id, { progressDone: 60 });
    await sync.flush();
    expect(plane.sent).toHaveLength(1);
    n.store.snapshots.update(snap.id, { status: 'ready', progressDone: 100 });
    await sync.flush();
    expect(plane.sent.flat().map((d) => d.snapshots[0]!.status)).toEqual(['creating', 'ready']);
  });

  it('resends a document the control plane did not acknowledge, after a pause', async () => {
    const n = start();
    const plane = fakePlane();
    plane.ackAll = false;
    const sync = plane.sync(n);
    userWithDeployment(n);
    await sync.flush();
    await sync.flush();
    expect(plane.sent).toHaveLength(1);
    n.clock.advance(5_000);
    await sync.flush();
    expect(plane.sent).toHaveLength(2);
  });

  it('counts a change of the live part once per change', async () => {
    const n = start();
    const sync = fakePlane().sync(n);
    const { depId } = userWithDeployment(n);
    const v0 = sync.versions.get(depId)!.version;
    await sync.checkLive();
    const v1 = sync.versions.get(depId)!;
    expect(v1.version).toBe(v0 + 1);
    expect(v1.liveHash).toMatch(/^[0-9a-f]{32}$/);
    // The volume sizes are measured in the background: their first figures are a change of their own.
    await new Promise((r) => setTimeout(r, 200));
    await sync.checkLive();
    const v2 = sync.versions.get(depId)!.version;
    expect(v2).toBeLessThanOrEqual(v1.version + 1);
    await sync.checkLive();
    await sync.checkLive();
    expect(sync.versions.get(depId)!.version).toBe(v2);
  });
});

describe('off-node copies in documents', () => {
  it('carry each snapshot’s copy, the deployment’s setting and the target, and a change to either is a new version', async () => {
    const n = testNode(undefined, undefined, { url: 's3://bucket/net', keyFile: '/unused.key' });
    nodes.push(n);
    const plane = fakePlane();
    const sync = new StateSync(n.services.ctx, n.services.deployments, async () => [], {}, 's3://bucket/net');
    const { userId, depId } = userWithDeployment(n);
    const snap = n.services.snapshots.create(userId, depId, 'one');
    n.store.snapshots.update(snap.id, { status: 'ready', engineId: 'e'.repeat(64), readyAt: n.clock.now() });
    n.services.ctx.offsite!.snapshotReady(depId, snap.id);
    let doc = (await sync.document(depId))!;
    expect(doc.offsiteTarget).toBe('s3://bucket/net');
    expect(doc.settings.offsite).toEqual({ enabled: true });
    expect(doc.snapshots.map((s) => s.offsite?.status)).toEqual(['pending']);
    const before = sync.versions.get(depId)!.version;
    n.store.offsite.setStatus([snap.id], 'copied', { copiedAt: n.clock.now(), error: null });
    const afterCopy = sync.versions.get(depId)!.version;
    expect(afterCopy).toBeGreaterThan(before);
    n.services.settings.put(userId, depId, { offsite: { enabled: false } });
    expect(sync.versions.get(depId)!.version).toBeGreaterThan(afterCopy);
    doc = (await sync.document(depId))!;
    expect(doc.snapshots[0]!.offsite).toMatchObject({ status: 'copied', error: null });
    expect(doc.settings.offsite).toEqual({ enabled: false });
    // A node without a target says so: null, as the all-in-one without --offsite.
    const plain = start();
    const other = userWithDeployment(plain);
    const bare = (await plane.sync(plain).document(other.depId))!;
    expect(bare.settings.offsite).toBeNull();
    expect(bare.offsiteTarget).toBeNull();
  });

  it('carry where the checks stand, sent again when a check is queued, ends or is scheduled; its counters alone are progress', async () => {
    const n = start();
    const plane = fakePlane();
    const sync = plane.sync(n);
    const { userId, depId } = userWithDeployment(n);
    const version = () => sync.versions.get(depId)!;
    await sync.flush();
    let doc = plane.sent.at(-1)![0]!;
    expect(doc.verification).toEqual(n.services.verifications.status(userId, depId));
    expect(doc.verification).toMatchObject({ enabled: true, interval: '7d', lastVerification: null, lastFullCheckAt: null });

    // A check queued (rows only: no job runs it here).
    n.store.verifications.insert({
      id: 'ver-aaaaaaaaaaaa',
      deploymentId: depId,
      trigger: 'manual',
      part: null,
      parts: 5,
      createdAt: n.clock.now(),
    });
    expect(sync.due().map((v) => v.deploymentId)).toEqual([depId]);
    await sync.flush();
    doc = plane.sent.at(-1)![0]!;
    expect(doc.verification?.lastVerification).toMatchObject({ id: 'ver-aaaaaaaaaaaa', status: 'queued' });

    // Its counters moving: a new version, progress only.
    const v0 = version();
    n.store.verifications.update('ver-aaaaaaaaaaaa', { stepsDone: 1, bytesRead: 100 });
    expect(version().version).toBe(v0.version + 1);
    expect(version().urgentVersion).toBe(v0.urgentVersion);

    // It ends: urgent, and the document says so.
    n.clock.advance(1_000);
    n.store.verifications.update('ver-aaaaaaaaaaaa', { status: 'ok', startedAt: n.clock.now() - 500, finishedAt: n.clock.now() });
    expect(version().urgentVersion).toBeGreaterThan(v0.version);
    await sync.flush();
    doc = plane.sent.at(-1)![0]!;
    expect(doc.verification?.lastVerification).toMatchObject({ id: 'ver-aaaaaaaaaaaa', status: 'ok', bytesRead: 100 });
    expect(doc.verification?.lastFullCheckAt).toBe(n.clock.now() - 500);
    expect(doc.verification).toEqual(n.services.verifications.status(userId, depId));

    // The schedule moving on is a change too.
    const v1 = version();
    n.store.verifications.setSchedule({ deploymentId: depId, nextRunAt: n.clock.now() + 60_000, nextPart: 2, parts: 5 });
    expect(version().urgentVersion).toBeGreaterThan(v1.version);
    await sync.flush();
    expect(plane.sent.at(-1)![0]!.verification).toMatchObject({ nextRunAt: n.clock.now() + 60_000, nextPart: 2 });

    // A closed deployment has none.
    n.services.deployments.close(userId, depId);
    expect((await sync.document(depId))!.verification).toBeNull();
  });

  it('send every document once more after the upgrade that adds where the checks stand', async () => {
    const n = start();
    const sync = fakePlane().sync(n);
    const { depId } = userWithDeployment(n);
    await sync.flush();
    expect(sync.due()).toEqual([]);
    // The database as before that migration: without its triggers, every version acknowledged.
    const db = n.store.db;
    const migration = MIGRATIONS.find((m) => m.includes('sync_verifications_insert'))!;
    for (const { name } of db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'sync_verification%'")
      .all() as Array<{
      name: string;
    }>)
      db.exec(`DROP TRIGGER ${name}`);
    db.exec(migration);
    expect(sync.due().map((v) => v.deploymentId)).toEqual([depId]);
    expect((await sync.document(depId))!.verification).toMatchObject({ enabled: true });
  });
});
