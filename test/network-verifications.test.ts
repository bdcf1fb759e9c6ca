/**
 * Checks of a deployment's stored data through the control plane
 * (docs/network.md, "Checks of the stored data"): a real PostgreSQL, two
 * replicas and one node (process runtime) that reaches only replica B, so
 * requests on replica A are answered across replicas. A check asked for on
 * A runs on the node; its history is read from the node's journal; the
 * settings' summary follows it through the deployment's documents; damage
 * is real (bytes flipped in the node's pack files), and the node's
 * verification.failed reaches a user's webhook on a loopback receiver.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotSettings, Verification, VerificationSummary } from '../src/api/contract.js';
import { type Api, createDeployment, expectStatus, snapshotReady, volumeDir, waitRunning } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type Network, startNetwork } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';

const run = postgresAvailable();
const SDL = sdlFor('while true; do sleep 1; done');

let net: Network;
let alice: [Api, Api];
let bob: Api;
let dep: string;
let snaps: string[];
let receiver: http.Server;
const received: string[] = [];
const savedEnv = process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE;

const url = (d: string) => `/api/v1/deployments/${d}/verifications`;
/* eslint-disable @typescript-eslint/no-explicit-any */
type View = any;

/** fields: an object's field names, sorted. */
const fields = (o: object): string[] => Object.keys(o).sort();
const VERIFICATION_FIELDS = fields(Verification.properties);

/** expectVerification: `v` has the contract's fields (as the all-in-one answers), its times ISO 8601. */
function expectVerification(v: View): void {
  expect(fields(v)).toEqual(VERIFICATION_FIELDS);
  for (const t of ['createdAt', 'startedAt', 'finishedAt']) if (v[t] !== null) expect(new Date(v[t]).toISOString()).toBe(v[t]);
}

/** check asks for a check on replica A (202, queued) and waits until the history shows it finished. */
async function check(d: string, full: boolean): Promise<View> {
  const r = await alice[0]('POST', url(d), { full });
  expectStatus(r, 202, 'check now');
  const v = r.body.verification;
  expectVerification(v);
  expect(v).toMatchObject({ trigger: 'manual', status: 'queued', part: full ? null : expect.any(Number) });
  return waitFor(
    async () => {
      const page = await alice[0]('GET', `${url(d)}?limit=1`);
      expectStatus(page, 200, 'history');
      const last = page.body.verifications[0];
      return last?.id === v.id && (last.status === 'ok' || last.status === 'failed') ? last : null;
    },
    60_000,
    `check ${v.id} to finish`,
  );
}

async function settings(api: Api, d: string): Promise<View> {
  const r = await api('GET', `/api/v1/deployments/${d}/snapshot-settings`);
  expectStatus(r, 200, 'settings');
  expect(fields(r.body.settings)).toEqual(fields(SnapshotSettings.properties));
  expect(fields(r.body.settings.verification)).toEqual(fields(VerificationSummary.properties));
  if (r.body.settings.verification.lastVerification) expectVerification(r.body.settings.verification.lastVerification);
  return r.body.settings;
}

describe.skipIf(!run)('network mode: checks of the stored data through the control plane', () => {
  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        received.push(Buffer.concat(parts).toString());
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    // The replicas inherit it: the receiver is on loopback.
    process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE = 'true';
    net = await startNetwork({ replicas: 2, nodes: 1, nodeTimeout: '3s' });
    const aliceKey = await net.userKey('alice');
    alice = [net.api(aliceKey, 0), net.api(aliceKey, 1)];
    bob = net.api(await net.userKey('bob'), 0);
    // The node reaches replica B only: its long poll, results, documents and uploads go there.
    net.nodes[0]!.links[0]!.cut();

    dep = await createDeployment(alice[0], SDL, 'check-me');
    await waitRunning(alice[0], dep);
    const src = volumeDir(net.nodes[0]!.dataDir, dep);
    fs.writeFileSync(path.join(src, 'a.txt'), 'first\n'.repeat(1000));
    const one = (await snapshotReady(alice[0], dep, 'one')).id as string;
    fs.writeFileSync(path.join(src, 'b.txt'), 'second\n'.repeat(1000));
    const two = (await snapshotReady(alice[0], dep, 'two')).id as string;
    snaps = [one, two];
  }, 240_000);

  afterAll(async () => {
    if (savedEnv === undefined) delete process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE;
    else process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE = savedEnv;
    await net?.close();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  }, 120_000);

  it('shows where the checks stand in the settings, nothing checked yet', async () => {
    // Reported by the node: its scheduler plans the first check on its next
    // tick, and the deployment's document carries it on the next flush after.
    const s = await waitFor(
      async () => {
        const got = await settings(alice[0], dep);
        return got.verification.nextRunAt === null ? null : got;
      },
      30_000,
      'the node to report its first scheduled check',
    );
    expect(s.verification).toMatchObject({ enabled: true, interval: '7d', lastVerification: null, lastFullCheckAt: null });
    expect(Date.parse(s.verification.nextRunAt)).toBeGreaterThan(Date.now());
    expect(await settings(alice[1], dep)).toEqual(s);
  });

  it('checks now on the node, lists the history in pages as the all-in-one, the same through either replica', async () => {
    const first = await check(dep, false);
    expect(first).toMatchObject({ status: 'ok', findings: 0, problems: [], damagedSnapshots: [], error: null });
    const full = await check(dep, true);
    expect(full).toMatchObject({ status: 'ok', part: null });
    expect(full.bytesRead).toBeGreaterThan(0);
    const third = await check(dep, false);

    const all = await alice[0]('GET', url(dep));
    expectStatus(all, 200, 'history');
    expect(all.body.verifications.map((v: View) => v.id)).toEqual([third.id, full.id, first.id]);
    expect(all.body.cursor).toBeNull();
    for (const v of all.body.verifications) expectVerification(v);
    expect((await alice[1]('GET', url(dep))).body).toEqual(all.body);

    const page1 = await alice[0]('GET', `${url(dep)}?limit=2`);
    expectStatus(page1, 200, 'page 1');
    expect(page1.body.verifications.map((v: View) => v.id)).toEqual([third.id, full.id]);
    expect(page1.body.cursor).toBe(full.id);
    const page2 = await alice[0]('GET', `${url(dep)}?limit=2&cursor=${page1.body.cursor}`);
    expectStatus(page2, 200, 'page 2');
    expect(page2.body.verifications.map((v: View) => v.id)).toEqual([first.id]);
    expect(page2.body.cursor).toBeNull();

    const bad = await alice[0]('GET', `${url(dep)}?cursor=ver-nosuchcheck0`);
    expectStatus(bad, 400, 'unknown cursor');
    expect(bad.body.error.code).toBe('INVALID_CURSOR');
    const badLimit = await alice[0]('GET', `${url(dep)}?limit=0`);
    expectStatus(badLimit, 400, 'limit 0');

    // The settings' summary followed the checks.
    const s = await waitFor(
      async () => {
        const x = await settings(alice[0], dep);
        return x.verification.lastVerification?.id === third.id && x.verification.lastVerification.status === 'ok' ? x : null;
      },
      10_000,
      'the summary to show the last check',
    );
    expect(s.verification.lastVerification).toEqual(third);
    expect(s.verification.lastFullCheckAt).toBe(full.startedAt);
  });

  it('a full check finds damage: the snapshots show damaged, the history and the summary the failure, the webhook the event', async () => {
    const hook = await alice[0]('POST', '/api/v1/webhooks', {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
      events: ['verification.failed'],
    });
    expectStatus(hook, 201, 'create webhook');
    const packsDir = path.join(net.nodes[0]!.dataDir, 'repos', dep, 'packs');
    const packs = fs.readdirSync(packsDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(packs.length).toBeGreaterThan(0);
    for (const p of packs) {
      const file = path.join(p.parentPath, p.name);
      const buf = fs.readFileSync(file);
      buf[buf.length >> 1]! ^= 0xff;
      fs.writeFileSync(file, buf);
    }

    const failed = await check(dep, true);
    expect(failed.status).toBe('failed');
    expect(failed.findings).toBeGreaterThan(0);
    expect(failed.problems.length).toBeGreaterThan(0);
    expect([...failed.damagedSnapshots].sort()).toEqual([...snaps].sort());

    // The catalogue shows the damage once the node's document arrived (through replica B), on either replica.
    for (const api of alice) {
      await waitFor(
        async () => {
          const r = await api('GET', `/api/v1/deployments/${dep}/snapshots`);
          expectStatus(r, 200, 'snapshot list');
          return r.body.snapshots.filter((x: View) => snaps.includes(x.id)).every((x: View) => x.damaged === true);
        },
        10_000,
        'the snapshots to show damaged',
      );
      const s = await settings(api, dep);
      expect(s.verification.lastVerification).toEqual(failed);
      expect(s.verification.lastFullCheckAt).toBeNull();
    }

    // The node raised verification.failed; it reached alice's webhook through the control plane, once.
    const delivered = await waitFor(
      () => Promise.resolve(received.length > 0 ? received.map((r) => JSON.parse(r) as View) : null),
      30_000,
      'the verification.failed event at the webhook',
    );
    expect(delivered).toEqual([
      expect.objectContaining({
        event: 'verification.failed',
        deployment: expect.objectContaining({ id: dep }),
        data: expect.objectContaining({
          verification: expect.objectContaining({ id: failed.id, findings: failed.findings }),
          damagedSnapshots: expect.arrayContaining(snaps.map((id) => expect.objectContaining({ id }))),
        }),
      }),
    ]);
  });

  it('answers as the all-in-one for a deployment with no snapshots, a closed one and another user’s', async () => {
    const empty = await createDeployment(alice[0], SDL, 'no-snapshots');
    await waitRunning(alice[0], empty);
    const v = await check(empty, false);
    expect(v).toMatchObject({ status: 'ok', bytesRead: 0, findings: 0 });

    for (const [method, body] of [
      ['GET', undefined],
      ['POST', { full: true }],
    ] as const) {
      const r = await bob(method, url(dep), body);
      expectStatus(r, 404, `bob ${method}`);
      expect(r.body.error.code).toBe('DEPLOYMENT_NOT_FOUND');
      const missing = await alice[0](method, url('dep-nosuchdeploy'), body);
      expectStatus(missing, 404, `missing ${method}`);
    }
    expectStatus(await bob('GET', `/api/v1/deployments/${dep}/snapshot-settings`), 404, 'bob settings');

    expectStatus(await alice[0]('POST', `/api/v1/deployments/${empty}/close`), 200, 'close');
    for (const [method, body] of [
      ['GET', undefined],
      ['POST', { full: false }],
    ] as const) {
      const r = await alice[0](method, url(empty), body);
      expectStatus(r, 409, `closed ${method}`);
      expect(r.body.error.code).toBe('DEPLOYMENT_NOT_ACTIVE');
    }
  });

  it('answers 503 NODE_UNAVAILABLE for the history and a check while the node is stopped; the summary stays readable', async () => {
    const node = net.nodes[0]!;
    const before = await settings(alice[0], dep);
    node.child.kill('SIGSTOP');
    try {
      await net.waitNodes({ 'node-1': 'offline' });
      for (const [method, body] of [
        ['GET', undefined],
        ['POST', { full: true }],
      ] as const) {
        const t0 = Date.now();
        const r = await alice[0](method, url(dep), body);
        expectStatus(r, 503, `${method} while the node is stopped`);
        expect(r.body.error.code).toBe('NODE_UNAVAILABLE');
        expect(Date.now() - t0).toBeLessThan(2_000);
      }
      expect(await settings(alice[0], dep)).toEqual(before);
    } finally {
      node.child.kill('SIGCONT');
    }
    await net.waitNodes({ 'node-1': 'online' });
    expectStatus(await alice[0]('GET', url(dep)), 200, 'history once the node is back');
  });
});
