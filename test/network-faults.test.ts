/**
 * Network mode under faults: a control-plane replica killed while it waits
 * on a restore, a node killed in the middle of a snapshot, a node cut off
 * from the control plane while its automatic snapshots run, and PostgreSQL
 * restarted under load. Real processes, a real PostgreSQL; the "network"
 * between each node and the replicas is a loopback proxy the test can cut.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, createDeployment, expectStatus, getSnapshot, snapshotReady, volumeDir, waitRunning } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type KovaNode, type Network, startNetwork } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';

const run = postgresAvailable();
let net: Network;
let key: string;
let alice: [Api, Api];

const SDL = sdlFor('while true; do sleep 1; done');

const nodeNamed = (name: string): KovaNode => net.nodes.find((n) => n.name === name)!;

/** A deployment of alice's, running, and the node it landed on. */
async function deployment(name: string): Promise<{ id: string; node: KovaNode }> {
  const id = await createDeployment(alice[1], SDL, name);
  const d = await waitRunning(alice[1], id);
  return { id, node: nodeNamed(d.node.name) };
}

/** The ids of a deployment's ready automatic snapshots in the node's own journal. */
function localAutomatic(node: KovaNode, depId: string): string[] {
  const db = new Database(path.join(node.dataDir, 'kova.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT id FROM snapshots WHERE deployment_id = ? AND trigger = 'automatic' AND status = 'ready' ORDER BY id")
      .all(depId) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  } finally {
    db.close();
  }
}

async function catalogueAutomatic(api: Api, depId: string): Promise<string[]> {
  const r = await api('GET', `/api/v1/deployments/${depId}/snapshots`);
  expectStatus(r, 200, 'list snapshots');
  return (r.body.snapshots as Array<{ id: string; automatic: boolean; status: string }>)
    .filter((s) => s.automatic && s.status === 'ready')
    .map((s) => s.id)
    .sort();
}

describe.skipIf(!run)('network mode under faults', () => {
  beforeAll(async () => {
    net = await startNetwork({ replicas: 2, nodes: 3, nodeTimeout: '3s' });
    key = await net.userKey('alice');
    alice = [net.api(key, 0), net.api(key, 1)];
  }, 180_000);

  afterAll(async () => {
    await net?.close();
  }, 120_000);

  it('a replica killed while it waits on a restore: the other replica sees it through, once', async () => {
    const { id, node } = await deployment('restore-kill');
    const file = path.join(volumeDir(node.dataDir, id), 'note.txt');
    fs.writeFileSync(file, 'snapshot\n');
    const snap = await snapshotReady(alice[1], id, 'good');
    fs.writeFileSync(file, 'changed\n');

    // The node holds still, so replica 0 records the restore and waits on it; then replica 0 dies.
    node.child.kill('SIGSTOP');
    const pending = alice[0]('POST', `/api/v1/deployments/${id}/snapshots/${snap.id}/restore`, {}).catch((err: Error) => err);
    await sleep(700);
    await net.replicas[0]!.kill();
    node.child.kill('SIGCONT');
    const answer = await pending;
    expect(answer instanceof Error || (answer as { status: number }).status >= 500, 'replica 0 died before answering').toBe(true);

    const done = await waitFor(
      async () => {
        const r = await alice[1]('GET', `/api/v1/deployments/${id}/restores`);
        const mine = (r.body.restores as Array<{ snapshotId: string; status: string }>).filter((x) => x.snapshotId === snap.id);
        return mine.length > 0 && mine.every((x) => x.status === 'completed' || x.status === 'failed') ? mine : null;
      },
      60_000,
      'the restore to finish',
    );
    expect(done, 'restored exactly once').toHaveLength(1);
    expect(done[0]!.status).toBe('completed');
    expect(fs.readFileSync(file, 'utf8')).toBe('snapshot\n');
    await net.startReplica(0);
  });

  it('a node killed in the middle of a snapshot: after its restart the snapshot ends ready or failed', async () => {
    const { id, node } = await deployment('snap-kill');
    fs.writeFileSync(path.join(volumeDir(node.dataDir, id), 'blob.bin'), Buffer.alloc(8 << 20, 7));
    const i = net.nodes.indexOf(node);
    await node.stop();
    const armed = await net.startNode(i, { fault: 'snapshot:pass1' });
    await net.waitNodes({ [node.name]: 'online' });

    const r = await alice[0]('POST', `/api/v1/deployments/${id}/snapshots`, { label: 'interrupted' });
    expectStatus(r, 202, 'snapshot');
    const snapId = r.body.snapshot.id as string;
    const exit = await armed.exited;
    expect(exit.signal, 'the node died at the crash point').toBe('SIGKILL');
    expect((await getSnapshot(alice[1], id, snapId)).status).toBe('creating');

    await net.startNode(i);
    const final = await waitFor(
      async () => {
        const s = await getSnapshot(alice[1], id, snapId);
        return s.status === 'ready' || s.status === 'failed' ? s : null;
      },
      60_000,
      'the interrupted snapshot to end',
    );
    expect(['ready', 'failed']).toContain(final.status);
  });

  it('a node cut off keeps snapshotting; the control plane shows it offline, deletes nothing, and converges', async () => {
    const { id, node } = await deployment('cut-off');
    expectStatus(
      await alice[0]('PUT', `/api/v1/deployments/${id}/snapshot-settings`, { enabled: true, interval: '1s', retention: 3 }),
      200,
      'automatic snapshots',
    );
    await waitFor(async () => (await catalogueAutomatic(alice[0], id)).length >= 2, 60_000, 'two automatic snapshots');

    node.cut();
    await net.waitNodes({ [node.name]: 'offline' }, 30_000);
    const during = await catalogueAutomatic(alice[1], id);
    const dep = await alice[1]('GET', `/api/v1/deployments/${id}`);
    expectStatus(dep, 200, 'an offline node’s deployment is still listed');
    expect(dep.body.deployment.status).toBe('active');
    expect(dep.body.deployment.node.status).toBe('offline');
    expect(during.length).toBeGreaterThanOrEqual(2);
    const refused = await alice[0]('POST', `/api/v1/deployments/${id}/snapshots`, {});
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('NODE_UNAVAILABLE');

    // The node, on its own, keeps taking and pruning automatic snapshots.
    const before = new Set(localAutomatic(node, id));
    await waitFor(() => localAutomatic(node, id).some((s) => !before.has(s)), 30_000, 'a snapshot taken while cut off');
    expect(await catalogueAutomatic(alice[0], id), 'the catalogue deleted nothing meanwhile').toEqual(during);

    node.heal();
    await net.waitNodes({ [node.name]: 'online' }, 30_000);
    expectStatus(await alice[0]('PUT', `/api/v1/deployments/${id}/snapshot-settings`, { enabled: false }), 200, 'stop automatic');
    await waitFor(
      async () => {
        const local = localAutomatic(node, id);
        const cat = await catalogueAutomatic(alice[1], id);
        return JSON.stringify(local) === JSON.stringify(cat);
      },
      30_000,
      'the catalogue to converge with the node',
    );
  });

  it('PostgreSQL restarting under load: requests fail cleanly with 503, then succeed again', async () => {
    const statuses: number[] = [];
    const odd: string[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const r = await alice[i % 2]!('GET', '/api/v1/deployments').catch((err: Error) => ({ status: -1, body: err.message }));
        statuses.push(r.status);
        if (r.status !== 200 && !(r.status === 503 && r.body?.error?.code === 'DATABASE_UNAVAILABLE')) {
          odd.push(`replica ${i % 2}: ${r.status} ${JSON.stringify(r.body)}`);
        }
        await sleep(20);
      }
    })();
    /** What each replica printed, for a failure's message. */
    const replicas = (): string =>
      net.replicas
        .map((r, i) => `replica ${i} (exit ${r.child.exitCode ?? r.child.signalCode ?? 'none'}):\n${r.output().slice(-2000)}`)
        .join('\n');
    try {
      await sleep(300);
      await net.pg.stop();
      await waitFor(() => statuses.slice(-5).length === 5 && statuses.slice(-5).every((s) => s === 503), 30_000, '503 while down');
      await net.pg.start();
      await waitFor(async () => {
        const [a, b] = await Promise.all([alice[0]('GET', '/api/v1/deployments'), alice[1]('GET', '/api/v1/deployments')]);
        return a.status === 200 && b.status === 200;
      }, 60_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nanswers other than 200 or 503 DATABASE_UNAVAILABLE: ${odd.join('; ')}\n${replicas()}`, {
        cause: err,
      });
    } finally {
      stop = true;
      await load;
    }
    expect(odd, `answers other than 200 or 503 DATABASE_UNAVAILABLE\n${replicas()}`).toEqual([]);
    expect(statuses).toContain(503);
    await net.waitNodes(Object.fromEntries(net.nodes.map((n) => [n.name, 'online'])), 60_000);
  });
});
