/**
 * testing: the catalogue's contract as one suite, run against SQLite (unit,
 * catalogue.test.ts) and a real PostgreSQL (test/catalogue-postgres.test.ts).
 * `fresh()` gives the URL of a new, empty database; tests open one or two
 * catalogues on it (two catalogues on one database = two replicas).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiKey } from '../../db/api-keys.js';
import type { DeploymentState, Operation } from '../../network/protocol.js';
import { type Catalogue, nodeStatus } from '../catalogue.js';
import { type CatalogueOptions, openCatalogue } from './index.js';

export interface CatalogueTarget {
  /** The URL of a new, empty database. */
  fresh(): Promise<string>;
}

/** doc is a node's document for deployment `id` of `userId` at `version`, with `snapshots` snapshots. */
export function doc(
  id: string,
  userId: string,
  version: number,
  opts: { status?: 'active' | 'closed'; snapshots?: number } = {},
): DeploymentState {
  const snapshots = Array.from({ length: opts.snapshots ?? 0 }, (_, i) => ({
    id: `snap-${String(i).padStart(12, 'a')}`,
    deploymentId: id,
    label: `nightly ${i}`,
    status: 'ready',
    trigger: 'automatic',
    createdAt: 1_000 + i,
    readyAt: 1_001 + i,
    engineId: 'e'.repeat(64),
    sizeBytes: 1 << 30,
    storedBytes: 1 << 20,
    files: 12_345,
    consistency: 'frozen',
    freezeMs: 120,
    error: null,
    warning: null,
    progressDone: null,
    progressTotal: null,
  }));
  return {
    deployment: {
      id,
      userId,
      name: `web-${id}`,
      sdl: 'version: "2.0"',
      manifest: { services: [] },
      status: opts.status ?? 'active',
      clonedFrom: null,
      createdAt: 1,
      updatedAt: version,
      closedAt: null,
    },
    version,
    settings: { deploymentId: id, enabled: false, intervalMs: 3600_000, retention: 7, nextRunAt: null, updatedAt: 1 },
    snapshots,
    restores: [],
    operation: null,
    services: [],
    volumeBytes: { 'web.data': 42 },
    snapshotSummary: { count: snapshots.length },
  } as unknown as DeploymentState;
}

const op = (id: string, userId: string, deploymentId: string, createdAt: number): Operation => ({
  id,
  userId,
  payload: { kind: 'restart', deploymentId },
  createdAt,
});

export function catalogueSuite(name: string, target: CatalogueTarget): void {
  describe(`catalogue on ${name}`, () => {
    const open: Catalogue[] = [];
    const openOn = async (url: string, opts: CatalogueOptions = {}): Promise<Catalogue> => {
      const c = await openCatalogue(url, opts);
      open.push(c);
      return c;
    };
    const fresh = async (opts: CatalogueOptions = {}): Promise<{ url: string; c: Catalogue }> => {
      const url = await target.fresh();
      return { url, c: await openOn(url, opts) };
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });

    /** A user, a node and a deployment placed on it. */
    const placed = async (c: Catalogue) => {
      const user = await c.ensureUser('alice', 'user', 10);
      const node = await c.addNode('n1', 'hash-n1', 11);
      await c.place('dep-aaaaaaaaaaaa', user.id, node.id, 12);
      return { user, node, dep: 'dep-aaaaaaaaaaaa' };
    };

    it('migrates on open, again without effect, and from two replicas starting at once', async () => {
      const { url, c } = await fresh();
      await c.ensureUser('alice', 'admin', 1);
      const again = await openOn(url);
      expect((await again.userByName('alice'))?.role).toBe('admin');

      const url2 = await target.fresh();
      const [a, b] = await Promise.all([openOn(url2), openOn(url2)]);
      await a.ensureUser('bob', 'user', 1);
      expect(await b.countUsers()).toBe(1);
    });

    it('keeps users with their role and their keys', async () => {
      const { c } = await fresh();
      const admin = await c.ensureUser('root', 'admin', 5);
      expect(admin).toMatchObject({ name: 'root', role: 'admin', createdAt: 5 });
      expect(admin.id).toMatch(/^usr-/);
      // An existing user's role is left as it is.
      expect(await c.ensureUser('root', 'user', 6)).toEqual(admin);
      expect(await c.user(admin.id)).toEqual(admin);
      expect(await c.userByName('nobody')).toBeUndefined();
      expect(await c.countUsers()).toBe(1);

      const key = (prefix: string, createdAt: number): Omit<ApiKey, 'lastUsedAt' | 'revokedAt'> => ({
        prefix,
        userId: admin.id,
        secretHash: `scrypt$hash-${prefix}`,
        label: prefix === 'aaaaaaaaaaaa' ? 'ci' : null,
        createdAt,
      });
      await c.insertKey(key('aaaaaaaaaaaa', 100));
      await c.insertKey(key('bbbbbbbbbbbb', 200));
      expect((await c.keys(admin.id)).map((k) => k.prefix)).toEqual(['bbbbbbbbbbbb', 'aaaaaaaaaaaa']);
      expect(await c.key('aaaaaaaaaaaa')).toEqual({ ...key('aaaaaaaaaaaa', 100), lastUsedAt: null, revokedAt: null });
      await c.touchKey('aaaaaaaaaaaa', 150);
      expect((await c.key('aaaaaaaaaaaa'))?.lastUsedAt).toBe(150);
      expect(await c.revokeKey('aaaaaaaaaaaa', 300)).toBe(true);
      expect(await c.revokeKey('aaaaaaaaaaaa', 400)).toBe(false);
      expect((await c.key('aaaaaaaaaaaa'))?.revokedAt).toBe(300);
      expect(await c.key('zzzzzzzzzzzz')).toBeUndefined();
    });

    it('adds, finds, drains and removes nodes', async () => {
      const { c } = await fresh();
      const n = await c.addNode('berlin-1', 'hash-1', 1_000);
      expect(n).toMatchObject({
        name: 'berlin-1',
        draining: false,
        createdAt: 1_000,
        lastHeartbeatAt: null,
        capacity: null,
        deployments: 0,
      });
      expect(n.id).toMatch(/^node-[a-z2-7]{12}$/);
      await expect(c.addNode('berlin-1', 'hash-2', 1_001)).rejects.toMatchObject({ code: 'NODE_EXISTS', status: 409 });
      for (const bad of ['', 'Berlin', 'a b', '-x', 'node-aaaaaaaaaaaa', 'x'.repeat(64), 'ber\u001b[2Jlin']) {
        await expect(c.addNode(bad, `hash-${bad}`, 1_001)).rejects.toMatchObject({ code: 'INVALID_NODE_NAME', status: 400 });
      }
      expect(await c.nodes()).toHaveLength(1);
      expect((await c.nodeByTokenHash('hash-1'))?.id).toBe(n.id);
      expect(await c.nodeByTokenHash('hash-2')).toBeUndefined();
      expect((await c.node('berlin-1'))?.id).toBe(n.id);
      expect((await c.node(n.id))?.name).toBe('berlin-1');

      await c.hello(n.id, { version: '0.1.0', runtime: 'docker', bootId: 'boot-1' }, 2_000);
      const capacity = {
        diskFreeBytes: 5e9,
        diskTotalBytes: 1e10,
        volumeUsedBytes: 1e9,
        volumeReservedBytes: 2e9,
        deployments: 0,
        runningServices: 0,
        health: 'ok' as const,
      };
      await c.heartbeat(n.id, capacity, 3_000);
      const seen = (await c.node(n.id))!;
      expect(seen).toMatchObject({ version: '0.1.0', runtime: 'docker', bootId: 'boot-1', lastHeartbeatAt: 3_000, capacity });
      expect(nodeStatus(seen, 4_000, 30_000)).toBe('online');
      expect(nodeStatus(seen, 40_000, 30_000)).toBe('offline');
      await c.setDraining(n.id, true);
      expect(nodeStatus((await c.node(n.id))!, 4_000, 30_000)).toBe('draining');
      await c.addNode('athens-1', 'hash-3', 1_002);
      expect((await c.nodes()).map((x) => x.name)).toEqual(['athens-1', 'berlin-1']);

      await c.removeNode(n.id);
      expect(await c.node(n.id)).toBeUndefined();
      expect(await c.nodeByTokenHash('hash-1')).toBeUndefined();
      await expect(c.removeNode(n.id)).rejects.toMatchObject({ code: 'NODE_NOT_FOUND', status: 404 });
      await expect(c.heartbeat(n.id, capacity, 5_000)).rejects.toMatchObject({ code: 'NODE_NOT_FOUND' });
    });

    it('refuses to remove a node while deployments are placed on it, and removes it once they are closed', async () => {
      const { c } = await fresh();
      const { user, node, dep } = await placed(c);
      expect((await c.node(node.id))?.deployments).toBe(1);
      await expect(c.removeNode(node.id)).rejects.toMatchObject({ code: 'NODE_IN_USE', status: 409 });
      await c.applyState(node.id, [doc(dep, user.id, 1)]);
      await expect(c.removeNode(node.id)).rejects.toMatchObject({ code: 'NODE_IN_USE' });
      await c.applyState(node.id, [doc(dep, user.id, 2, { status: 'closed' })]);
      expect((await c.node(node.id))?.deployments).toBe(0);
      await c.removeNode(node.id);
      expect(await c.nodes()).toEqual([]);
    });

    it('stores newer documents only, and only from the node the deployment is placed on', async () => {
      const { c } = await fresh();
      const { user, node, dep } = await placed(c);
      const other = await c.addNode('n2', 'hash-n2', 13);
      expect(await c.deployment(dep)).toEqual({ id: dep, userId: user.id, nodeId: node.id, movedFrom: null, state: null });
      expect(await c.deploymentsOf(user.id)).toEqual([]);

      expect(await c.applyState(node.id, [doc(dep, user.id, 5)])).toEqual([{ deploymentId: dep, version: 5 }]);
      // Older: ignored, the held version is acknowledged.
      expect(await c.applyState(node.id, [doc(dep, user.id, 3)])).toEqual([{ deploymentId: dep, version: 5 }]);
      // Another node's document about it: ignored and not acknowledged.
      expect(await c.applyState(other.id, [doc(dep, user.id, 9, { status: 'closed' })])).toEqual([]);
      // A document about a deployment nobody placed: ignored.
      expect(await c.applyState(node.id, [doc('dep-unknownxxxxx', user.id, 1)])).toEqual([]);
      expect(await c.deployment('dep-unknownxxxxx')).toBeUndefined();
      const held = await c.deployment(dep);
      expect(held?.state?.version).toBe(5);
      expect(held?.state?.deployment.status).toBe('active');

      // Confirmed deployments only, newest first; unplace forgets only unconfirmed ones.
      const reservedBefore = (await c.node(node.id))!.reservedBytes;
      await c.place('dep-bbbbbbbbbbbb', user.id, node.id, 20, 3_000_000_000);
      await c.place('dep-cccccccccccc', user.id, node.id, 30, 2_000_000_000);
      // What the placed deployments were promised counts at once, confirmed or not (placement reads it).
      expect((await c.node(node.id))!.reservedBytes - reservedBefore).toBe(5_000_000_000);
      await c.applyState(node.id, [doc('dep-bbbbbbbbbbbb', user.id, 1)]);
      expect((await c.deploymentsOf(user.id)).map((d) => d.id)).toEqual(['dep-bbbbbbbbbbbb', dep]);
      await c.unplace('dep-cccccccccccc');
      await c.unplace(dep);
      expect((await c.node(node.id))!.reservedBytes - reservedBefore).toBe(3_000_000_000);
      expect(await c.deployment('dep-cccccccccccc')).toBeUndefined();
      expect((await c.deployment(dep))?.state?.version).toBe(5);
      // Placing the same again is harmless; an id placed elsewhere is refused.
      await c.place(dep, user.id, node.id, 40);
      await expect(c.place(dep, user.id, other.id, 41)).rejects.toMatchObject({ code: 'DEPLOYMENT_EXISTS', status: 409 });
    });

    it('hands operations out until they are finished, records one result, and cancels only undelivered ones', async () => {
      const { c } = await fresh();
      const { user, node, dep } = await placed(c);
      const other = await c.addNode('n2', 'hash-n2', 13);
      await c.enqueue(op('op-1', user.id, dep, 100), node.id);
      await c.enqueue(op('op-2', user.id, dep, 101), node.id);
      expect((await c.operation('op-1'))?.status).toBe('queued');
      expect(await c.pending(other.id, 0)).toEqual([]);

      const first = await c.pending(node.id, 0);
      expect(first.map((o) => o.id)).toEqual(['op-1', 'op-2']);
      expect(first[0]).toEqual(op('op-1', user.id, dep, 100));
      expect(await c.operation('op-1')).toMatchObject({ status: 'delivered', nodeId: node.id, result: null });
      // Again (a reconnect): the same operations until they are finished.
      expect((await c.pending(node.id, 0)).map((o) => o.id)).toEqual(['op-1', 'op-2']);
      expect(await c.cancel('op-1', 150)).toBe(false);

      const result = { ok: true as const, state: doc(dep, user.id, 7) };
      expect(await c.finish('op-1', other.id, result, 200)).toBe(false);
      expect(await c.finish('op-1', node.id, result, 200)).toBe(true);
      expect(await c.finish('op-1', node.id, { ok: false, error: { code: 'X', message: 'x', status: 500 } }, 201)).toBe(false);
      expect(await c.operation('op-1')).toMatchObject({ status: 'done', result, finishedAt: 200 });
      // The result's document is in the catalogue as soon as the result is.
      expect((await c.deployment(dep))?.state?.version).toBe(7);
      expect(await c.waitResult('op-1', 0)).toEqual(result);
      expect((await c.pending(node.id, 0)).map((o) => o.id)).toEqual(['op-2']);

      await c.enqueue(op('op-3', user.id, dep, 300), node.id);
      expect(await c.cancel('op-3', 301)).toBe(true);
      expect(await c.cancel('op-3', 302)).toBe(false);
      expect(await c.operation('op-3')).toMatchObject({ status: 'cancelled', finishedAt: 301 });
      expect(await c.waitResult('op-3', 10_000)).toBeNull();
      expect((await c.pending(node.id, 0)).map((o) => o.id)).toEqual(['op-2']);
      expect(await c.finish('op-3', node.id, result, 303)).toBe(false);
      expect(await c.operation('op-nope')).toBeUndefined();
    });

    it('moves a deployment to another node with its operations in one step, once, and back', async () => {
      const { url, c } = await fresh();
      const replica = await openOn(url);
      const { user, node: from, dep } = await placed(c);
      const to = await c.addNode('n2', 'hash-n2', 13);
      const third = await c.addNode('n3', 'hash-n3', 14);
      await c.applyState(from.id, [doc(dep, user.id, 40, { snapshots: 2 })]);
      // A replica that read the document before the move.
      expect((await replica.deployment(dep))?.state?.version).toBe(40);
      await c.hello(to.id, { version: '0.1.0', runtime: 'process', bootId: 'b', offsiteTarget: 's3://b/p at http://s3:9000' }, 50);
      expect((await c.node(to.id))?.offsiteTarget).toBe('s3://b/p at http://s3:9000');
      expect((await c.node(from.id))?.offsiteTarget).toBeNull();

      const recover = op('op-recover', user.id, dep, 100);
      const forget = { ...op('op-forget', user.id, dep, 100), payload: { kind: 'forget', deploymentId: dep } as const };
      expect(
        await c.move(
          dep,
          from.id,
          to.id,
          7,
          [
            { op: recover, nodeId: to.id },
            { op: forget, nodeId: from.id },
          ],
          100,
        ),
      ).toBe(true);
      // A second move from the old node (another replica, at the same time) finds it gone and records nothing.
      const late = op('op-late', user.id, dep, 101);
      expect(await replica.move(dep, from.id, third.id, 7, [{ op: late, nodeId: third.id }], 101)).toBe(false);
      expect(await c.operation('op-late')).toBeUndefined();
      // Read as moved on every replica, with the old document still readable.
      for (const r of [c, replica]) {
        const d = await r.deployment(dep);
        expect(d).toMatchObject({ nodeId: to.id, movedFrom: from.id, state: { version: 0 } });
        expect(d?.state?.snapshots).toHaveLength(2);
      }
      expect((await c.node(from.id))?.deployments).toBe(0);
      expect((await c.node(to.id))?.reservedBytes).toBe(7);
      expect((await c.pending(to.id, 0)).map((o) => o.id)).toEqual(['op-recover']);
      expect((await c.pending(from.id, 0)).map((o) => o.id)).toEqual(['op-forget']);
      // The old node's documents are refused; the new node's first one (a low version of its own) is taken.
      expect(await c.applyState(from.id, [doc(dep, user.id, 41)])).toEqual([]);
      expect(await c.applyState(to.id, [doc(dep, user.id, 3)])).toEqual([{ deploymentId: dep, version: 3 }]);
      expect((await replica.deployment(dep))?.state?.version).toBe(3);

      // Back (the new node refused): on the old node again, its undelivered operations withdrawn.
      const dep2 = 'dep-bbbbbbbbbbbb';
      await c.place(dep2, user.id, from.id, 200);
      await c.applyState(from.id, [doc(dep2, user.id, 9)]);
      const r2 = op('op-r2', user.id, dep2, 201);
      const f2 = op('op-f2', user.id, dep2, 201);
      expect(
        await c.move(
          dep2,
          from.id,
          to.id,
          0,
          [
            { op: r2, nodeId: to.id },
            { op: f2, nodeId: from.id },
          ],
          201,
        ),
      ).toBe(true);
      await c.moveBack(dep2, from.id, to.id, ['op-f2'], 202);
      expect(await c.deployment(dep2)).toMatchObject({ nodeId: from.id, movedFrom: null });
      expect((await c.operation('op-f2'))?.status).toBe('cancelled');
      expect(await c.applyState(from.id, [doc(dep2, user.id, 10)])).toEqual([{ deploymentId: dep2, version: 10 }]);
    });

    it("ignores documents in a result about another node's deployments", async () => {
      const { c } = await fresh();
      const { user, node, dep } = await placed(c);
      const other = await c.addNode('n2', 'hash-n2', 13);
      await c.place('dep-bbbbbbbbbbbb', user.id, other.id, 14);
      await c.enqueue(op('op-1', user.id, dep, 100), node.id);
      await c.pending(node.id, 0);
      const result = { ok: true as const, state: doc(dep, user.id, 3), extraStates: [doc('dep-bbbbbbbbbbbb', user.id, 9)] };
      expect(await c.finish('op-1', node.id, result, 200)).toBe(true);
      expect((await c.deployment(dep))?.state?.version).toBe(3);
      expect((await c.deployment('dep-bbbbbbbbbbbb'))?.state).toBeNull();
    });

    it('prunes operations a day after they finished', async () => {
      const { c } = await fresh();
      const { user, node, dep } = await placed(c);
      const day = 24 * 3600_000;
      await c.enqueue(op('op-1', user.id, dep, 1_000), node.id);
      await c.enqueue(op('op-2', user.id, dep, 1_001), node.id);
      await c.pending(node.id, 0);
      await c.finish('op-1', node.id, { ok: true, state: null }, 2_000);
      await c.enqueue(op('op-3', user.id, dep, 2_000 + day), node.id);
      expect(await c.operation('op-1')).toBeDefined();
      await c.enqueue(op('op-4', user.id, dep, 2_001 + day + 60_000), node.id);
      expect(await c.operation('op-1')).toBeUndefined();
      // Unfinished ones stay, however old.
      expect((await c.operation('op-2'))?.status).toBe('delivered');
    });

    it('wakes a long poll and a result waiter on another replica without polling', async () => {
      // A poll interval longer than the test: only a wake can end these waits in time.
      const { url, c: a } = await fresh({ pollMs: 60_000 });
      const b = await openOn(url, { pollMs: 60_000 });
      const { user, node, dep } = await placed(a);

      const t0 = Date.now();
      const polled = b.pending(node.id, 20_000);
      await new Promise((r) => setTimeout(r, 100));
      await a.enqueue(op('op-1', user.id, dep, 100), node.id);
      expect((await polled).map((o) => o.id)).toEqual(['op-1']);

      const waited = a.waitResult('op-1', 20_000);
      await new Promise((r) => setTimeout(r, 100));
      await b.finish('op-1', node.id, { ok: true, state: null }, 200);
      expect(await waited).toEqual({ ok: true, state: null });
      expect(Date.now() - t0).toBeLessThan(10_000);
    });

    it('ends a long poll at its deadline or when aborted', async () => {
      const { c } = await fresh({ pollMs: 20 });
      const { node } = await placed(c);
      const t0 = Date.now();
      expect(await c.pending(node.id, 150)).toEqual([]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      const ac = new AbortController();
      const t1 = Date.now();
      const polled = c.pending(node.id, 20_000, ac.signal);
      setTimeout(() => ac.abort(), 50);
      expect(await polled).toEqual([]);
      expect(Date.now() - t1).toBeLessThan(5_000);
      expect(await c.waitResult('op-never', 100)).toBeNull();
    });

    it('counts hits per window across replicas', async () => {
      const { url, c: a } = await fresh();
      const b = await openOn(url);
      expect(await a.hit('login:1.2.3.4', 60_000, 120_000)).toEqual({ count: 1, ttlMs: 60_000 });
      expect(await b.hit('login:1.2.3.4', 60_000, 150_000)).toEqual({ count: 2, ttlMs: 30_000 });
      expect(await a.hit('login:5.6.7.8', 60_000, 150_000)).toEqual({ count: 1, ttlMs: 30_000 });
      const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).hit('burst', 60_000, 150_000)));
      expect(counts.map((r) => r.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      // The next window starts again at one.
      expect(await b.hit('login:1.2.3.4', 60_000, 180_000)).toEqual({ count: 1, ttlMs: 60_000 });
    });

    it('reads the newest document after another replica stored it, and hands out documents nobody can change', async () => {
      const { url, c: a } = await fresh();
      const b = await openOn(url);
      const { user, node, dep } = await placed(a);
      await a.place('dep-bbbbbbbbbbbb', user.id, node.id, 20);
      await a.applyState(node.id, [doc(dep, user.id, 1), doc('dep-bbbbbbbbbbbb', user.id, 1)]);
      expect((await a.deployment(dep))?.state?.version).toBe(1);
      expect((await b.deployment(dep))?.state?.version).toBe(1);
      await b.applyState(node.id, [doc(dep, user.id, 2, { status: 'closed' })]);
      const seen = await a.deployment(dep);
      expect(seen?.state?.version).toBe(2);
      expect(seen?.state?.deployment.status).toBe('closed');
      expect((await a.deploymentsOf(user.id)).map((d) => [d.id, d.state?.version])).toEqual([
        ['dep-bbbbbbbbbbbb', 1],
        [dep, 2],
      ]);
      expect(() => {
        (seen!.state!.deployment as { name: string }).name = 'changed';
      }).toThrow(TypeError);
      expect((await a.deployment(dep))?.state?.deployment.name).toBe(`web-${dep}`);
    });

    it('reads a deployment with 1,000 snapshots whole', async () => {
      const { c } = await fresh();
      const { user, node, dep } = await placed(c);
      await c.applyState(node.id, [doc(dep, user.id, 1, { snapshots: 1_000 })]);
      const d = await c.deployment(dep);
      expect(d?.state?.snapshots).toHaveLength(1_000);
      expect(d?.state?.snapshots[999]?.label).toBe('nightly 999');
    });
  });
}
