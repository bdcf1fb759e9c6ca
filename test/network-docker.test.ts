/**
 * Network mode on the Docker runtime: a control plane on PostgreSQL and two
 * `kova node --runtime docker` (containers in network mode none, the busybox
 * test image). Every step goes through the control plane's API; the data
 * is written and read inside the container itself (docker exec):
 * create → running container → write → snapshot → change → restore → the
 * container, restarted, sees the snapshot's data → close removes the
 * container and the volume.
 *
 * Needs dockerd and busybox-static, and PostgreSQL. With CI=true a missing
 * daemon fails the suite; elsewhere it is skipped with a message.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerClient } from '../src/runtime/docker/docker-client.js';
import { DockerRuntime, LABEL_DEPLOYMENT } from '../src/runtime/docker/docker-runtime.js';
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
import { ensureBusyboxImage } from './helpers/images.js';
import { type Network, startNetwork } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const DOCKER_UP = await DockerRuntime.available({ timeoutMs: 3000 });
if (!DOCKER_UP && !IN_CI) console.warn('skipping the network Docker workflow: no Docker daemon answers on /var/run/docker.sock');

describe.skipIf((!DOCKER_UP && !IN_CI) || !postgresAvailable())('network mode: a Docker workflow through the control plane', () => {
  let net: Network;
  let alice: Api;
  let image: string;
  const docker = new DockerRuntime({ networkMode: 'none', stopTimeoutSec: 2 });
  const client = new DockerClient();
  const created: string[] = [];

  beforeAll(async () => {
    if (!DOCKER_UP) throw new Error('CI: Docker is required but no daemon answers on /var/run/docker.sock');
    image = await ensureBusyboxImage();
    net = await startNetwork({ replicas: 1, nodes: 2, runtime: 'docker' });
    alice = net.api(await net.userKey('alice'));
  }, 180_000);

  afterAll(async () => {
    // The deployments' containers first (they outlive their node by design), then the network.
    for (const id of created)
      for (const c of await client.listContainers([`${LABEL_DEPLOYMENT}=${id}`])) await client.removeContainer(c.Id);
    await net?.close();
    await docker.close();
    client.close();
  }, 120_000);

  const sh = async (id: string, cmd: string): Promise<string> => {
    const r = await docker.exec(id, 'app', ['sh', '-c', cmd], { timeoutMs: 20_000 });
    expect(r.exitCode, `exec ${cmd}: ${r.output}`).toBe(0);
    return r.output;
  };

  it('creates a running container, snapshots what it wrote, restores it into the restarted container, and closes', async () => {
    const id = await createDeployment(alice, sdlFor('while true; do sleep 1; done', { image }), 'docker-app');
    created.push(id);
    const dep = await waitRunning(alice, id, 90_000);
    const node = net.nodes.find((n) => n.name === dep.node.name)!;
    expect(node, `placed on ${dep.node.name}`).toBeTruthy();
    const containers = await client.listContainers([`${LABEL_DEPLOYMENT}=${id}`]);
    expect(containers).toHaveLength(1);
    const [before] = await docker.status(id);
    expect(before).toMatchObject({ name: 'app', state: 'running' });

    // Written inside the container, on the node's volume.
    await sh(id, 'echo before > /data/note.txt && mkdir -p /data/dir && echo kept > /data/dir/kept.txt && sync');
    expect(fs.readFileSync(`${volumeDir(node.dataDir, id)}/note.txt`, 'utf8')).toBe('before\n');
    const snap = await snapshotReady(alice, id, 'docker');
    expect(snap.consistency).toBe('frozen');

    await sh(id, 'echo after > /data/note.txt && echo new > /data/extra.txt && rm -r /data/dir && sync');
    const restore = await restoreCompleted(alice, id, snap.id);
    expect(restore.safetySnapshotId).toEqual(expect.any(String));
    await waitRunning(alice, id, 60_000);
    const [after] = await docker.status(id);
    expect(after?.state).toBe('running');
    expect(Date.parse(after!.startedAt!)).toBeGreaterThan(Date.parse(before!.startedAt!));
    // The restarted container sees the snapshot's data, and nothing written after it.
    expect(await sh(id, 'cat /data/note.txt /data/dir/kept.txt; ls /data')).toBe('before\nkept\ndir\nnote.txt\n');

    expectStatus(await alice('POST', `/api/v1/deployments/${id}/close`), 200, 'close');
    await waitFor(async () => (await getDeployment(alice, id)).status === 'closed', 60_000, 'the deployment closed');
    await waitFor(async () => (await client.listContainers([`${LABEL_DEPLOYMENT}=${id}`])).length === 0, 30_000, 'the container removed');
    await waitFor(() => !fs.existsSync(volumeDir(node.dataDir, id)), 30_000, "the volume removed from the node's data dir");
  });
});
