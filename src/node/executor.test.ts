/** executor: each operation id applied once, errors as the API reports them, repeats after a crash. */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError, KovaError } from '../core/errors.js';
import type { Operation, OperationPayload, OperationResult } from '../network/protocol.js';
import { Executor, wireError } from './executor.js';
import { StateSync } from './state-sync.js';
import { TEST_SDL, type TestNode, testNode, userWithDeployment } from './testing.js';

const nodes: TestNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
});

let seq = 0;
function op(userId: string, payload: OperationPayload, id = `op-${++seq}`): Operation {
  return { id, userId, payload, createdAt: Date.now() };
}

function setup(n: TestNode = testNode()): { n: TestNode; ex: Executor; posted: Array<[string, OperationResult]> } {
  nodes.push(n);
  const posted: Array<[string, OperationResult]> = [];
  const sync = new StateSync(n.services.ctx, n.services.deployments, async () => []);
  const ex = new Executor(n.services, sync, async (id, r) => void posted.push([id, r]), pino({ level: 'silent' }));
  return { n, ex, posted };
}

describe('Executor', () => {
  it('applies a repeated operation id once and answers the repeat with the same result', async () => {
    const { n, ex, posted } = setup();
    const deploy = op('usr-new', { kind: 'deploy', deploymentId: 'dep-aaaaaaaaaaaa', name: 'web', sdl: TEST_SDL });
    ex.accept([deploy]);
    ex.accept([deploy]); // the same poll answer again while the first is in hand: ignored
    await ex.idle();
    ex.accept([deploy]); // handed out again after its result was posted
    await ex.idle();

    expect(n.store.deployments.listByUser('usr-new').map((d) => d.id)).toEqual(['dep-aaaaaaaaaaaa']);
    expect(n.store.users.get('usr-new')).toMatchObject({ id: 'usr-new', name: 'usr-new' });
    expect(n.store.jobs.pending().filter((j) => j.kind === 'deploy')).toHaveLength(1);
    expect(posted.map(([id]) => id)).toEqual([deploy.id, deploy.id]);
    const [first, second] = posted.map(([, r]) => r);
    expect(first).toMatchObject({
      ok: true,
      value: { id: 'dep-aaaaaaaaaaaa', name: 'web' },
      state: { deployment: { id: 'dep-aaaaaaaaaaaa' } },
    });
    expect(second!.ok && second!.value).toEqual(first!.ok && first!.value);
  });

  it('gives created snapshots the control plane’s id, once', async () => {
    const { n, ex } = setup();
    const { userId, depId } = userWithDeployment(n);
    const snap = op(userId, { kind: 'snapshot', deploymentId: depId, snapshotId: 'snap-bbbbbbbbbbbb', label: 'x' });
    const a = await ex.apply(snap);
    const b = await ex.apply(snap);
    expect(a).toEqual(b);
    expect(a).toMatchObject({ ok: true, value: { id: 'snap-bbbbbbbbbbbb', status: 'creating', label: 'x' } });
    expect(n.store.snapshots.list(depId).map((s) => s.id)).toEqual(['snap-bbbbbbbbbbbb']);
    expect(n.store.jobs.pending().filter((j) => j.kind === 'snapshot')).toHaveLength(1);
  });

  it('queues a check now under the control plane’s id, once, and refuses a second while it is queued', async () => {
    const { n, ex, posted } = setup();
    const { userId, depId } = userWithDeployment(n);
    const verify = op(userId, { kind: 'verify', deploymentId: depId, verificationId: 'ver-eeeeeeeeeeee', full: true });
    ex.accept([verify]);
    await ex.idle();
    ex.accept([verify]); // handed out again after its result was posted
    await ex.idle();
    expect(await ex.apply(verify)).toEqual(posted[0]![1].ok && { ok: true, value: posted[0]![1].value });

    expect(n.store.verifications.page(depId, 10).map((v) => v.id)).toEqual(['ver-eeeeeeeeeeee']);
    expect(n.store.jobs.pending().filter((j) => j.kind === 'verify')).toHaveLength(1);
    const [first, second] = posted.map(([, r]) => r);
    expect(first).toMatchObject({
      ok: true,
      value: { id: 'ver-eeeeeeeeeeee', deploymentId: depId, trigger: 'manual', part: null, status: 'queued' },
      // The document sent with the result already shows the check.
      state: { deployment: { id: depId }, verification: { lastVerification: { id: 'ver-eeeeeeeeeeee', status: 'queued' } } },
    });
    expect(second!.ok && second!.value).toEqual(first!.ok && first!.value);

    // Another operation id while that check is queued: refused as the all-in-one refuses it.
    const again = await ex.apply(op(userId, { kind: 'verify', deploymentId: depId, verificationId: 'ver-ffffffffffff', full: false }));
    expect(again).toMatchObject({
      ok: false,
      error: { code: 'VERIFICATION_IN_PROGRESS', status: 409, details: { verification: 'ver-eeeeeeeeeeee' } },
    });
    expect(n.store.verifications.page(depId, 10)).toHaveLength(1);
  });

  it('checks the deployment belongs to the operation’s user, as the API does', async () => {
    const { n, ex } = setup();
    const { depId } = userWithDeployment(n, 'usr-alice');
    const out = await ex.apply(op('usr-mallory', { kind: 'snapshot', deploymentId: depId, snapshotId: 'snap-cccccccccccc', label: null }));
    expect(out).toEqual({
      ok: false,
      error: { code: 'DEPLOYMENT_NOT_FOUND', message: `deployment ${depId} not found`, status: 404 },
    });
    expect(n.store.snapshots.list(depId)).toEqual([]);
    // Nor can a deploy take an id another user's deployment has.
    const taken = await ex.apply(op('usr-mallory', { kind: 'deploy', deploymentId: depId, name: 'x', sdl: TEST_SDL }));
    expect(taken).toMatchObject({ ok: false, error: { code: 'ID_IN_USE', status: 409 } });
  });

  it('journals a refusal: the repeat is refused the same way, even once the cause is gone', async () => {
    const { n, ex } = setup();
    const { userId, depId } = userWithDeployment(n);
    n.services.snapshots.create(userId, depId, null); // a snapshot in progress: restart is refused
    const restart = op(userId, { kind: 'restart', deploymentId: depId });
    const first = await ex.apply(restart);
    expect(first).toMatchObject({ ok: false, error: { code: 'OPERATION_IN_PROGRESS', status: 409, details: { operation: 'snapshot' } } });
    for (const j of n.store.jobs.pending()) n.store.jobs.finish(j.id, 'done', null, n.clock.now());
    expect(await ex.apply(restart)).toEqual(first);
    expect(n.store.jobs.pending()).toEqual([]);
  });

  it('maps errors as the API does: KovaError fields, anything else INTERNAL_ERROR without its message', () => {
    expect(wireError(new ConflictError('SNAPSHOT_BUSY', 'busy', { id: 'x' }), 'op-1')).toEqual({
      code: 'SNAPSHOT_BUSY',
      message: 'busy',
      status: 409,
      details: { id: 'x' },
    });
    expect(wireError(new Error('/srv/kova/secret went wrong'), 'op-2')).toEqual({
      code: 'INTERNAL_ERROR',
      message: 'internal error (operation op-2)',
      status: 500,
    });
    expect(wireError(new KovaError('REPO_CORRUPT', 'pack /srv/x is bad', { status: 500 }), 'op-3')).toEqual({
      code: 'REPO_CORRUPT',
      message: 'internal error (operation op-3)',
      status: 500,
    });
    expect(wireError(Object.assign(new Error('disk I/O'), { code: 'SQLITE_FULL' }), 'op-4')).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      status: 503,
    });
  });

  it('after a crash between effect and journal, a repeated restore finds the restore by its id', async () => {
    const { n, ex } = setup();
    const { userId, depId } = userWithDeployment(n);
    const snap = n.services.snapshots.create(userId, depId, null);
    n.store.snapshots.update(snap.id, { status: 'ready', engineId: 'e1', sizeBytes: 0 });
    for (const j of n.store.jobs.pending()) n.store.jobs.finish(j.id, 'done', null, n.clock.now());
    // The effect of the first delivery: its restore exists, its outcome was never journalled.
    n.store.restores.insert({
      id: 'rst-dddddddddddd',
      deploymentId: depId,
      snapshotId: snap.id,
      safetySnapshot: true,
      volumes: null,
      createdAt: n.clock.now(),
    });
    n.store.restores.update('rst-dddddddddddd', { status: 'restoring' });
    const restore = op(userId, {
      kind: 'restore',
      deploymentId: depId,
      restoreId: 'rst-dddddddddddd',
      snapshotId: snap.id,
      safetySnapshot: true,
    });
    const out = await ex.apply(restore);
    expect(out).toMatchObject({ ok: true, value: { id: 'rst-dddddddddddd', status: 'restoring' } });
    expect(n.store.restores.list(depId)).toHaveLength(1);
    expect(ex.journal.get(restore.id)?.result).toEqual(out);
  });

  it('after a restart, answers an operation applied before it from the journal', async () => {
    const first = setup();
    const { userId, depId } = userWithDeployment(first.n);
    const close = op(userId, { kind: 'close', deploymentId: depId });
    const before = await first.ex.apply(close);
    expect(before).toMatchObject({ ok: true, value: { status: 'closed' } });
    const jobs = first.n.store.jobs.pending().length;

    const reopened = await first.n.reopen();
    nodes[nodes.indexOf(first.n)] = reopened;
    const { ex } = setup(reopened);
    nodes.pop();
    expect(await ex.apply(close)).toEqual(before);
    expect(reopened.store.jobs.pending()).toHaveLength(jobs);
  });

  it('runs one deployment’s operations in order, one at a time', async () => {
    const n = testNode();
    nodes.push(n);
    const { userId, depId } = userWithDeployment(n);
    const order: string[] = [];
    let running = 0;
    let most = 0;
    const sync = new StateSync(n.services.ctx, n.services.deployments, async () => []);
    const ex = new Executor(
      n.services,
      sync,
      async (id) => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 20));
        order.push(id);
        running--;
      },
      pino({ level: 'silent' }),
    );
    const ops = ['a', 'b', 'c'].map((x) => op(userId, { kind: 'settings', deploymentId: depId, input: { retention: 3 } }, `op-order-${x}`));
    ex.accept(ops);
    await ex.idle();
    expect(order).toEqual(['op-order-a', 'op-order-b', 'op-order-c']);
    expect(most).toBe(1);
  });
});

describe('forget (the deployment was recovered on another node)', () => {
  it('stops the services and forgets the rows, leaves volumes and repository on disk, and is harmless twice', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { n, ex, posted } = setup();
    const { userId, depId } = userWithDeployment(n);
    const { paths, runtime } = n.services.ctx;
    const snap = n.services.snapshots.create(userId, depId, 'kept');
    const volume = paths.volume(depId, { service: 'app', volume: 'data' });
    fs.mkdirSync(volume, { recursive: true });
    fs.writeFileSync(path.join(volume, 'file.txt'), 'still here');
    fs.mkdirSync(paths.repo(depId), { recursive: true });
    fs.writeFileSync(path.join(paths.repo(depId), 'marker'), 'repo');
    const { runtimeSpec } = await import('../services/deployment-service.js');
    const d = n.store.deployments.get(depId)!;
    await runtime.create(runtimeSpec(paths, depId, d.manifest));
    await runtime.start(depId);
    expect((await runtime.status(depId)).map((s) => s.state)).toEqual(['running']);

    const forget = op(userId, { kind: 'forget', deploymentId: depId });
    ex.accept([forget]);
    await ex.idle();
    expect(posted.at(-1)).toEqual([forget.id, { ok: true, state: null, value: null }]);
    expect(await runtime.deployments()).not.toContain(depId);
    expect(n.store.deployments.get(depId)).toBeUndefined();
    expect(n.store.snapshots.get(snap.id)).toBeUndefined();
    expect(n.store.jobs.pending().filter((j) => j.deploymentId === depId)).toEqual([]);
    expect(fs.readFileSync(path.join(volume, 'file.txt'), 'utf8')).toBe('still here');
    expect(fs.readFileSync(path.join(paths.repo(depId), 'marker'), 'utf8')).toBe('repo');
    // A repeat with a new id (the node came back twice) finds nothing to forget.
    expect(await ex.apply(op(userId, { kind: 'forget', deploymentId: depId }))).toEqual({ ok: true, value: null });
  });
});

describe('recover (a deployment moved here from its off-node copy)', () => {
  it('queues the recover job again when a repeated request finds the last one failed, and not otherwise', async () => {
    const { n, ex } = setup(testNode(undefined, undefined, { url: 's3://bucket/net', keyFile: '/unused.key' }));
    const { userId, depId } = userWithDeployment(n);
    const d = n.store.deployments.get(depId)!;
    const snap = n.services.snapshots.create(userId, depId, 'one');
    n.store.snapshots.update(snap.id, { status: 'ready', engineId: 'e'.repeat(64), readyAt: n.clock.now() });
    const request = (): Operation =>
      op(userId, {
        kind: 'recover',
        deploymentId: depId,
        deployment: d,
        settings: n.store.settings.get(depId),
        snapshots: [n.store.snapshots.get(snap.id)!],
        snapshotId: snap.id,
      });
    const recoverJobs = () => n.store.jobs.pending().filter((j) => j.kind === 'recover');
    const jobId = n.store.jobs.enqueue(depId, 'recover', { snapshotId: snap.id, engineId: 'e'.repeat(64) }, n.clock.now());
    // Still queued: a repeat changes nothing.
    expect(await ex.apply(request())).toMatchObject({ ok: true, value: { id: depId } });
    expect(recoverJobs()).toHaveLength(1);
    // Failed: the next request queues it again, with the snapshot asked for.
    n.store.jobs.finish(jobId, 'failed', 'the bucket stopped answering', n.clock.now());
    expect(recoverJobs()).toHaveLength(0);
    expect(await ex.apply(request())).toMatchObject({ ok: true });
    expect(recoverJobs().map((j) => j.payload)).toEqual([{ snapshotId: snap.id, engineId: 'e'.repeat(64) }]);
  });
});
