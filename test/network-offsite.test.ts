/**
 * Off-node copies and recovery in network mode, end to end: a real
 * PostgreSQL, a control plane and two nodes (processes, process runtime)
 * sharing one s3rver target and master key. A deployment with data and
 * snapshots on node A is copied off-node (its copies read `copied` through
 * the control plane); A is killed and its data directory destroyed; `POST
 * …/recover` runs the deployment on B from the copy: volume byte for byte
 * (metadata included), history listed, new snapshots work; a clone of a
 * copied snapshot made while A is offline runs on B. The refusals:
 * an online node, a snapshot without a copy, another user. A started again
 * with the same token does not run the deployment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EntryDesc, compareTrees, describeTree, prng } from '../src/engine/testing.js';
import { type Api, createDeployment, expectStatus, getDeployment, snapshotReady, volumeDir, waitRunning } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type Network, kova } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';
import { type OffsiteNetwork, startOffsiteNetwork } from './helpers/offsite-network.js';
import { killServices, serviceLeaders } from './helpers/server-process.js';

const run = postgresAvailable();
const SDL = sdlFor('sleep 3600');
let offsite: OffsiteNetwork;
let net: Network;
let alice: Api;
let aliceKey: string;
let bob: Api;

/** fillVolume writes files with varied metadata: modes, an old mtime, a symlink. */
function fillVolume(dir: string, seed: number): void {
  fs.mkdirSync(path.join(dir, 'db'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'db/notes.txt'), `seed ${seed}\n`.repeat(100));
  fs.chmodSync(path.join(dir, 'db/notes.txt'), 0o640);
  fs.writeFileSync(path.join(dir, 'db/table.bin'), prng(seed, 600 * 1024));
  fs.rmSync(path.join(dir, 'db/link'), { force: true });
  fs.symlinkSync('notes.txt', path.join(dir, 'db/link'));
  fs.utimesSync(path.join(dir, 'db/table.bin'), new Date('2021-03-04T05:06:07Z'), new Date('2021-03-04T05:06:07Z'));
  fs.chmodSync(path.join(dir, 'db'), 0o750);
}

async function snapshots(
  api: Api,
  depId: string,
): Promise<Array<{ id: string; label: string | null; offsite: { status: string } | null }>> {
  const r = await api('GET', `/api/v1/deployments/${depId}/snapshots`);
  expectStatus(r, 200, 'list snapshots');
  return r.body.snapshots;
}

async function waitCopied(api: Api, depId: string, snapId: string): Promise<void> {
  await waitFor(
    async () => (await snapshots(api, depId)).find((s) => s.id === snapId)?.offsite?.status === 'copied',
    60_000,
    `snapshot ${snapId} copied off-node, as the control plane shows it`,
  );
}

describe.skipIf(!run)('network mode: off-node copies and recovery on another node', () => {
  beforeAll(async () => {
    offsite = await startOffsiteNetwork('network');
    net = offsite.net;
    aliceKey = await net.userKey('alice');
    alice = net.api(aliceKey);
    bob = net.api(await net.userKey('bob'));
  }, 180_000);

  afterAll(async () => {
    await offsite?.close();
  }, 120_000);

  it('copies on the node, recovers on the other one when it is lost, and keeps the old node away', async () => {
    const depId = await createDeployment(alice, SDL, 'db');
    const running = await waitRunning(alice, depId);
    const a = net.nodes.findIndex((n) => n.name === running.node.name);
    const b = 1 - a;
    const nodeA = net.nodes[a]!;
    const nodeB = net.nodes[b]!;
    const volA = volumeDir(nodeA.dataDir, depId);

    // Data and two snapshots on A; each copy reads `copied` through the control plane.
    fillVolume(volA, 1);
    const one = await snapshotReady(alice, depId, 'one');
    const expectedOne: Map<string, EntryDesc> = describeTree(volA);
    fillVolume(volA, 2);
    fs.writeFileSync(path.join(volA, 'only-in-two.txt'), 'two');
    const two = await snapshotReady(alice, depId, 'two');
    const expected: Map<string, EntryDesc> = describeTree(volA);
    await waitCopied(alice, depId, one.id);
    await waitCopied(alice, depId, two.id);
    const settings = await alice('GET', `/api/v1/deployments/${depId}/snapshot-settings`);
    expectStatus(settings, 200, 'settings');
    expect(settings.body.settings.offsite).toEqual({ enabled: true });

    // A snapshot taken with copies turned off has none.
    // Copies off for one snapshot, through the CLI as a user would.
    const cli = ['--url', net.replicas[0]!.url, '--token', aliceKey];
    expect(JSON.parse(await kova(['snapshots', 'settings', depId, '--offsite', 'off', '--json', ...cli])).offsite).toEqual({
      enabled: false,
    });
    fs.writeFileSync(path.join(volA, 'after-two.txt'), 'lost with the node');
    const local = await snapshotReady(alice, depId, 'local-only');
    expect(await kova(['snapshots', 'settings', depId, '--offsite', 'on', ...cli])).toMatch(
      /OFF-NODE COPIES\s+on: every ready snapshot is copied/,
    );
    expect((await snapshots(alice, depId)).find((s) => s.id === local.id)?.offsite ?? null).toBeNull();

    // While A is online, recovery is refused: a restore is what it needs.
    const online = await alice('POST', `/api/v1/deployments/${depId}/recover`, {});
    expectStatus(online, 409, 'recover on an online node');
    expect(online.body.error.code).toBe('NODE_ONLINE');

    // A is lost: the process killed, its services killed, its data directory gone.
    await nodeA.kill();
    killServices(nodeA.dataDir);
    fs.rmSync(nodeA.dataDir, { recursive: true, force: true });
    await net.waitNodes({ [nodeA.name]: 'offline', [nodeB.name]: 'online' });

    const notCopied = await alice('POST', `/api/v1/deployments/${depId}/recover`, { snapshotId: local.id });
    expectStatus(notCopied, 409, 'recover from a snapshot without a copy');
    expect(notCopied.body.error.code).toBe('SNAPSHOT_NOT_COPIED');
    const other = await bob('POST', `/api/v1/deployments/${depId}/recover`, {});
    expectStatus(other, 404, "recover another user's deployment");
    expect(other.body.error.code).toBe('DEPLOYMENT_NOT_FOUND');

    // A clone of a copied snapshot while A is offline: made on B from the bucket; without a copy it waits for A.
    const noCopy = await alice('POST', `/api/v1/deployments/${depId}/snapshots/${local.id}/clone`, { name: 'no-copy' });
    expectStatus(noCopy, 503, 'clone a snapshot without a copy from an offline node');
    expect(noCopy.body.error.code).toBe('NODE_UNAVAILABLE');
    const clone = await alice('POST', `/api/v1/deployments/${depId}/snapshots/${one.id}/clone`, { name: 'from-copy' });
    expectStatus(clone, 201, 'clone from the off-node copy');
    const cloneId: string = clone.body.deployment.id;
    expect(clone.body.deployment).toMatchObject({ name: 'from-copy', clonedFrom: one.id, node: { name: nodeB.name } });
    await waitRunning(alice, cloneId, 90_000);
    const cloneDiffs = compareTrees(expectedOne, describeTree(volumeDir(nodeB.dataDir, cloneId)));
    expect(cloneDiffs, 'the clone on B is snapshot "one", byte for byte and metadata').toEqual([]);

    // The default: the newest snapshot whose copy is copied ("two"), on B; through the CLI, as an operator would.
    const rec = JSON.parse(await kova(['deployments', 'recover', depId, '--yes', '--json', ...cli]));
    expect(rec.recovery).toMatchObject({
      snapshotId: two.id,
      fromNode: { name: nodeA.name },
      toNode: { name: nodeB.name },
      operationId: expect.stringMatching(/^op-/),
    });
    expect(rec.deployment.node.name).toBe(nodeB.name);
    const moved = await waitFor(
      async () => {
        const d = await getDeployment(alice, depId);
        return d.operation === null && d.services?.every((s: { state: string }) => s.state === 'running') ? d : null;
      },
      90_000,
      'the deployment running on B',
    );
    expect(moved.node).toMatchObject({ name: nodeB.name, status: 'online' });
    const diffs = compareTrees(expected, describeTree(volumeDir(nodeB.dataDir, depId)));
    expect(diffs, 'the volume on B is snapshot "two", byte for byte and metadata').toEqual([]);
    expect(serviceLeaders(nodeB.dataDir, depId).length).toBeGreaterThan(0);

    // The copied history is listed again (the local-only snapshot was lost with A), and restorable on B.
    const history = await snapshots(alice, depId);
    expect(history.map((s) => [s.label, s.offsite?.status])).toEqual([
      ['two', 'copied'],
      ['one', 'copied'],
    ]);
    const plan = await alice('GET', `/api/v1/deployments/${depId}/snapshots/${one.id}/restore-plan`);
    expectStatus(plan, 200, 'restore plan of the older snapshot on B');

    // A new snapshot on B, copied like the others.
    const after = await snapshotReady(alice, depId, 'after');
    await waitCopied(alice, depId, after.id);

    // A comes back with the same token: it is told to forget the deployment and never runs it.
    const back = await net.startNode(a);
    await net.waitNodes({ [nodeA.name]: 'online' });
    await sleep(3000);
    expect(serviceLeaders(back.dataDir, depId)).toEqual([]);
    const still = await getDeployment(alice, depId);
    expect(still.node.name).toBe(nodeB.name);
    expect((await snapshots(alice, depId)).map((s) => s.label)).toEqual(['after', 'two', 'one']);
    const nodes = await net.admin()('GET', '/api/v1/nodes');
    expect(Object.fromEntries(nodes.body.nodes.map((n: { name: string; deployments: number }) => [n.name, n.deployments]))).toEqual({
      [nodeA.name]: 0,
      [nodeB.name]: 2,
    });
    // And it is B's now in every respect: a second recovery is refused while B is online.
    const again = await alice('POST', `/api/v1/deployments/${depId}/recover`, {});
    expectStatus(again, 409, 'recover again');
    expect(again.body.error.code).toBe('NODE_ONLINE');
    await expect(kova(['deployments', 'recover', depId, '--yes', ...cli])).rejects.toThrow(/online/);
  }, 300_000);
});
