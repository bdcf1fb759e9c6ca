/**
 * Network mode end to end: a real PostgreSQL, two control-plane replicas and
 * three nodes on the process runtime, set up with the operator commands.
 * Every call goes through the control plane (alternating replicas); what
 * users see is checked against what the nodes have on disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Api,
  createDeployment,
  expectStatus,
  getDeployment,
  restoreCompleted,
  snapshotReady,
  volumeDir,
  waitRunning,
} from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type Network, startNetwork } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';

const run = postgresAvailable();
let net: Network;
let alice: [Api, Api];
let bob: Api;

const SDL = sdlFor('while true; do sleep 1; done');

/** nodeOf: the data directory of the node a deployment runs on, from the deployment's `node`. */
function nodeDir(dep: { node: { name: string } }): string {
  const n = net.nodes.find((x) => x.name === dep.node.name);
  expect(n, `node ${dep.node.name} is one of ours`).toBeTruthy();
  return n!.dataDir;
}

describe.skipIf(!run)('network mode: control plane on PostgreSQL, three nodes', () => {
  beforeAll(async () => {
    net = await startNetwork({ replicas: 2, nodes: 3 });
    const a = await net.userKey('alice');
    alice = [net.api(a, 0), net.api(a, 1)];
    bob = net.api(await net.userKey('bob'), 1);
  }, 180_000);

  afterAll(async () => {
    await net?.close();
  }, 120_000);

  it('lists the nodes to admins only, with status, capacity and deployment count', async () => {
    const r = await net.admin(1)('GET', '/api/v1/nodes');
    expectStatus(r, 200, 'list nodes');
    expect(r.body.nodes.map((n: { name: string }) => n.name).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    for (const n of r.body.nodes) {
      expect(n.status).toBe('online');
      expect(n.lastHeartbeatAt).toEqual(expect.any(String));
      expect(n.capacity.diskFreeBytes).toBeGreaterThan(0);
      expect(n.deployments).toBe(0);
    }
    const refused = await alice[0]('GET', '/api/v1/nodes');
    expect([403, 404]).toContain(refused.status);
  });

  it('places deployments on different nodes and runs them there', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await createDeployment(alice[i % 2]!, SDL, `web-${i}`));
    const deps = await Promise.all(ids.map((id, i) => waitRunning(alice[(i + 1) % 2]!, id)));
    const names = deps.map((d) => d.node.name);
    expect(new Set(names).size, `placed on ${names.join(', ')}`).toBe(3);
    for (const d of deps) {
      expect(d.node.status).toBe('online');
      expect(fs.existsSync(volumeDir(nodeDir(d), d.id)), `volume of ${d.id} on ${d.node.name}`).toBe(true);
    }
    const nodes = await net.admin(0)('GET', '/api/v1/nodes');
    expect(nodes.body.nodes.map((n: { deployments: number }) => n.deployments)).toEqual([1, 1, 1]);
    // Another user sees none of them.
    const list = await bob('GET', '/api/v1/deployments');
    expectStatus(list, 200, 'bob lists');
    expect(list.body.deployments).toEqual([]);
    expect((await bob('GET', `/api/v1/deployments/${ids[0]}`)).status).toBe(404);
    expect((await bob('POST', `/api/v1/deployments/${ids[0]}/snapshots`, {})).status).toBe(404);
  });

  it('snapshots, lists and restores through either replica, on the right node', async () => {
    const id = await createDeployment(alice[0], SDL, 'restore-me');
    const dep = await waitRunning(alice[1], id);
    const file = path.join(volumeDir(nodeDir(dep), id), 'note.txt');
    fs.writeFileSync(file, 'before\n');
    const snap = await snapshotReady(alice[1], id, 'v1');
    expect(snap.label).toBe('v1');
    const list = await alice[0]('GET', `/api/v1/deployments/${id}/snapshots`);
    expectStatus(list, 200, 'list snapshots');
    expect(list.body.snapshots.map((s: { id: string }) => s.id)).toContain(snap.id);

    fs.writeFileSync(file, 'after\n');
    const restore = await restoreCompleted(alice[0], id, snap.id);
    expect(restore.safetySnapshotId).toEqual(expect.any(String));
    expect(fs.readFileSync(path.join(volumeDir(nodeDir(dep), id), 'note.txt'), 'utf8')).toBe('before\n');
    await waitRunning(alice[1], id);
    const restores = await alice[1]('GET', `/api/v1/deployments/${id}/restores`);
    expectStatus(restores, 200, 'list restores');
    expect(restores.body.restores.filter((r: { snapshotId: string }) => r.snapshotId === snap.id)).toHaveLength(1);
  });

  it('runs automatic snapshots with retention on the node, and the catalogue follows', async () => {
    const id = await createDeployment(alice[1], SDL, 'auto');
    await waitRunning(alice[0], id);
    const put = await alice[0]('PUT', `/api/v1/deployments/${id}/snapshot-settings`, { enabled: true, interval: '1s', retention: 2 });
    expectStatus(put, 200, 'enable automatic snapshots');
    expect(put.body.settings.enabled).toBe(true);
    const got = await alice[1]('GET', `/api/v1/deployments/${id}/snapshot-settings`);
    expect(got.body.settings.interval).toBe('1s');
    // Retention keeps two: wait for at least four taken in all, then only two remain listed.
    let seen = new Set<string>();
    await waitFor(
      async () => {
        const r = await alice[seen.size % 2]!('GET', `/api/v1/deployments/${id}/snapshots`);
        const auto = (r.body.snapshots as Array<{ id: string; automatic: boolean; status: string }>).filter((s) => s.automatic);
        seen = new Set([...seen, ...auto.map((s) => s.id)]);
        return seen.size >= 4 && auto.filter((s) => s.status === 'ready').length === 2 && auto.length <= 3;
      },
      60_000,
      'automatic snapshots pruned to two',
    );
    expectStatus(await alice[0]('PUT', `/api/v1/deployments/${id}/snapshot-settings`, { enabled: false }), 200, 'disable');
  });

  it('clones on the same node and closes', async () => {
    const id = await createDeployment(alice[0], SDL, 'source');
    const dep = await waitRunning(alice[0], id);
    fs.writeFileSync(path.join(volumeDir(nodeDir(dep), id), 'seed.txt'), 'seed\n');
    const snap = await snapshotReady(alice[0], id, 'seed');
    const clone = await alice[1]('POST', `/api/v1/deployments/${id}/snapshots/${snap.id}/clone`, { name: 'copy' });
    expectStatus(clone, 201, 'clone');
    const cloneId = clone.body.deployment.id as string;
    const cloned = await waitRunning(alice[1], cloneId);
    expect(cloned.node.id).toBe(dep.node.id);
    expect(fs.readFileSync(path.join(volumeDir(nodeDir(cloned), cloneId), 'seed.txt'), 'utf8')).toBe('seed\n');

    for (const d of [cloneId, id]) {
      expectStatus(await alice[d === id ? 0 : 1]('POST', `/api/v1/deployments/${d}/close`), 200, `close ${d}`);
      await waitFor(async () => (await getDeployment(alice[0], d)).status === 'closed', 30_000, `${d} closed`);
    }
  });
});
