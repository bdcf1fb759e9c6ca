/**
 * Network mode over TLS: the control plane serves HTTPS with a self-signed
 * certificate made by the test (IP address 127.0.0.1), the nodes trust it
 * with --ca, and a whole workflow (create, write, snapshot, restore, close)
 * goes through it. A node started without --ca refuses the certificate:
 * it exits with code 1 and says what to give it.
 */
import fs from 'node:fs';
import os from 'node:os';
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
import { type Network, kova, startNetwork } from './helpers/network.js';
import { startKovaNode } from './helpers/node-process.js';
import { postgresAvailable } from './helpers/postgres.js';

const run = postgresAvailable();
let net: Network;
let alice: Api;

describe.skipIf(!run)('network mode over TLS: a self-signed control plane, nodes with --ca', () => {
  beforeAll(async () => {
    net = await startNetwork({ replicas: 1, nodes: 2, tls: true });
    alice = net.api(await net.userKey('alice'));
  }, 180_000);

  afterAll(async () => {
    await net?.close();
  }, 120_000);

  it('serves HTTPS only, and the nodes with --ca are online through it', async () => {
    expect(net.replicas[0]!.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(net.caFile).toEqual(expect.any(String));
    await expect(fetch(`http://127.0.0.1:${net.replicas[0]!.port}/healthz`)).rejects.toThrow();
    const r = await net.admin()('GET', '/api/v1/nodes');
    expectStatus(r, 200, 'list nodes');
    expect(r.body.nodes.map((n: { name: string; status: string }) => `${n.name} ${n.status}`).sort()).toEqual([
      'node-1 online',
      'node-2 online',
    ]);
  });

  it('creates, snapshots, restores and closes a deployment over TLS', async () => {
    const id = await createDeployment(alice, sdlFor('while true; do sleep 1; done'), 'over-tls');
    const dep = await waitRunning(alice, id, 60_000);
    const node = net.nodes.find((n) => n.name === dep.node.name)!;
    const file = path.join(volumeDir(node.dataDir, id), 'note.txt');
    fs.writeFileSync(file, 'before\n');
    const snap = await snapshotReady(alice, id, 'tls');
    fs.writeFileSync(file, 'after\n');
    await restoreCompleted(alice, id, snap.id);
    expect(fs.readFileSync(file, 'utf8')).toBe('before\n');
    await waitRunning(alice, id);
    expectStatus(await alice('POST', `/api/v1/deployments/${id}/close`), 200, 'close');
    await waitFor(async () => (await getDeployment(alice, id)).status === 'closed', 30_000, 'closed');
  });

  it('a node without --ca refuses the self-signed certificate: exit code 1 and a message naming --ca', async () => {
    const out = await kova(['nodes', 'add', 'node-plain', '--database', net.databaseUrl]);
    const token = out.trim().split('\n').at(-1)!.trim();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-plain-'));
    const node = startKovaNode({ dataDir, controlPlane: net.replicas[0]!.url, token });
    try {
      const exit = await Promise.race([node.exited, new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
      expect(exit, node.output()).toEqual({ code: 1, signal: null });
      expect(node.output()).toContain(
        `kova: the control plane at ${net.replicas[0]!.url} presented a certificate this node does not trust (self-signed certificate); ` +
          'give the certificate, or the private CA that signed it, with --ca FILE (KOVA_CONTROL_PLANE_CA)',
      );
      // It never said hello: the control plane does not count it as online.
      const r = await net.admin()('GET', '/api/v1/nodes');
      expect(r.body.nodes.find((n: { name: string }) => n.name === 'node-plain')?.status).toBe('offline');
    } finally {
      await node.kill();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
