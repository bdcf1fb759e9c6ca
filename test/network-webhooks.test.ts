/**
 * Webhooks in network mode, end to end: a real PostgreSQL, two
 * control-plane replicas (webhooks allowed to private addresses) and a node
 * on the process runtime, and a receiver on loopback. Events raised on the
 * node travel through its outbox to the control plane, which records them
 * once and delivers them from whichever replica claims them: every event
 * reaches the receiver exactly once, signed with the webhook's secret, also
 * one raised while the node could not reach the control plane.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../src/services/webhooks/sender.js';
import { IDLE_SCRIPT } from './helpers/api.js';
import {
  type Api,
  createDeployment,
  expectStatus,
  restoreCompleted,
  snapshotReady,
  startSnapshot,
  volumeDir,
  waitRunning,
  waitSnapshot,
} from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type Network, startNetwork } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';

const run = postgresAvailable();

interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A deployment whose snapshots fail (the pre hook exits 3) while FAIL_MARKER is in its volume. */
const FAIL_MARKER = '.fail-snapshots';
const SDL = sdlFor(IDLE_SCRIPT, { pre: ['sh', '-c', `if [ -e ${FAIL_MARKER} ]; then echo no space left; exit 3; fi`] });

let net: Network;
let receiver: http.Server;
let hookUrl: string;
const received: Received[] = [];
let alice: [Api, Api];
let bob: Api;
let secret: string;
let hookId: string;
let depId: string;
let dataDir: string;
const savedEnv = process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE;

/** The events the receiver got, parsed, with their checked signatures. */
function events(): Array<{ id: string; event: string; delivery: string; signed: boolean; deployment: { id: string; name: string } }> {
  return received.map((r) => {
    const body = JSON.parse(r.body) as { id: string; event: string; deployment: { id: string; name: string } };
    return {
      ...body,
      delivery: String(r.headers['x-kova-delivery']),
      signed: verifySignature(secret, r.body, r.headers['x-kova-signature'] as string),
    };
  });
}

/** The events waiting in the node's outbox (read from its journal while it runs). */
function outbox(): Array<{ id: string; event: string }> {
  const db = new Database(path.join(dataDir, 'kova.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT event FROM event_outbox ORDER BY seq').all() as Array<{ event: string }>;
    return rows.map((r) => JSON.parse(r.event) as { id: string; event: string });
  } finally {
    db.close();
  }
}

describe.skipIf(!run)('network mode: webhooks', () => {
  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(parts).toString() });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    // The replicas (and nodes) inherit it: the receiver is on loopback.
    process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE = 'true';
    net = await startNetwork({ replicas: 2, nodes: 1 });
    const a = await net.userKey('alice');
    alice = [net.api(a, 0), net.api(a, 1)];
    bob = net.api(await net.userKey('bob'), 1);
  }, 180_000);

  afterAll(async () => {
    if (savedEnv === undefined) delete process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE;
    else process.env.KOVA_WEBHOOKS_ALLOW_PRIVATE = savedEnv;
    await net?.close();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  }, 120_000);

  it('creates a webhook on one replica, lists it on the other, and hides it from another user', async () => {
    const created = await alice[0]('POST', '/api/v1/webhooks', {
      url: hookUrl,
      events: ['restore.completed', 'snapshot.failed'],
    });
    expectStatus(created, 201, 'create webhook');
    secret = created.body.secret;
    hookId = created.body.webhook.id;
    expect(secret).toMatch(/^whsec_/);
    const list = await alice[1]('GET', '/api/v1/webhooks');
    expectStatus(list, 200, 'list webhooks');
    expect(list.body.webhooks).toEqual([created.body.webhook]);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    // The same validation and codes as kova serve.
    const bad = await alice[1]('POST', '/api/v1/webhooks', { url: 'ftp://x', events: ['restore.completed'] });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'INVALID_WEBHOOK_URL']);
    const badEvent = await alice[0]('POST', '/api/v1/webhooks', { url: hookUrl, events: ['nope'] });
    expect([badEvent.status, badEvent.body.error.code]).toEqual([400, 'INVALID_WEBHOOK_EVENT']);
    // Another user's webhook is 404, like a missing one.
    expect((await bob('GET', '/api/v1/webhooks')).body.webhooks).toEqual([]);
    for (const [method, url] of [
      ['DELETE', `/api/v1/webhooks/${hookId}`],
      ['GET', `/api/v1/webhooks/${hookId}/deliveries`],
    ] as const) {
      const r = await bob(method, url);
      expect([r.status, r.body.error.code], `${method} ${url}`).toEqual([404, 'WEBHOOK_NOT_FOUND']);
    }
  });

  it('delivers a restore.completed once, signed, and logs it as delivered', async () => {
    depId = await createDeployment(alice[0], SDL, 'hooked');
    await waitRunning(alice[1], depId);
    dataDir = net.nodes[0]!.dataDir;
    const snap = await snapshotReady(alice[1], depId, 'v1');
    const restore = await restoreCompleted(alice[0], depId, snap.id);
    const got = await waitFor(() => events().find((e) => e.event === 'restore.completed'), 30_000, 'restore.completed at the receiver');
    expect(got).toMatchObject({ signed: true, deployment: { id: depId, name: 'hooked' } });
    expect(JSON.parse(received.find((r) => r.body.includes(got.id))!.body).data.restore.id).toBe(restore.id);
    const log = await waitFor(async () => {
      const r = await alice[1]('GET', `/api/v1/webhooks/${hookId}/deliveries`);
      expectStatus(r, 200, 'delivery log');
      const d = r.body.deliveries.find((x: { eventId: string }) => x.eventId === got.id);
      return d?.status === 'delivered' ? d : null;
    });
    expect(log).toMatchObject({ event: 'restore.completed', attempts: 1, responseStatus: 200 });
  });

  it('delivers a snapshot.failed', async () => {
    fs.writeFileSync(path.join(volumeDir(dataDir, depId), FAIL_MARKER), '');
    const snapId = await startSnapshot(alice[0], depId, 'fails');
    expect((await waitSnapshot(alice[1], depId, snapId)).status).toBe('failed');
    const got = await waitFor(
      () => events().find((e) => e.event === 'snapshot.failed' && received.some((r) => r.body.includes(snapId))),
      30_000,
      'snapshot.failed at the receiver',
    );
    expect(got.signed).toBe(true);
  });

  it('keeps events raised while the node cannot reach the control plane, and delivers them once it can', async () => {
    const node = net.nodes[0]!;
    // Automatic snapshots run on the node by themselves, and fail while the marker is there.
    const put = await alice[1]('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { enabled: true, interval: '1s', retention: 5 });
    expectStatus(put, 200, 'enable automatic snapshots');
    node.cut();
    let kept: Array<{ id: string; event: string }> = [];
    try {
      kept = await waitFor(
        () => {
          const o = outbox().filter((e) => e.event === 'snapshot.failed');
          return o.length >= 2 ? o : null;
        },
        60_000,
        'failed automatic snapshots in the outbox',
      );
      // Not delivered while the node is cut off.
      await new Promise((r) => setTimeout(r, 1500));
      const seen = new Set(events().map((e) => e.id));
      for (const e of kept) expect(seen.has(e.id), `${e.id} delivered while cut off`).toBe(false);
    } finally {
      node.heal();
    }
    await net.waitNodes({ [node.name]: 'online' });
    const settled = await alice[0]('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { enabled: false });
    expectStatus(settled, 200, 'disable automatic snapshots');
    await waitFor(
      () => {
        const seen = new Set(events().map((e) => e.id));
        return kept.every((e) => seen.has(e.id));
      },
      60_000,
      'the kept events at the receiver',
    );
    await waitFor(() => outbox().length === 0, 30_000, 'an empty outbox');
  });

  it('sends every delivery once with two replicas sending', async () => {
    // Give both replicas time to try again anything they could.
    await new Promise((r) => setTimeout(r, 3000));
    const all = events();
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect(all.every((e) => e.signed)).toBe(true);
    expect(new Set(all.map((e) => e.delivery)).size, 'deliveries received twice').toBe(all.length);
    expect(new Set(all.map((e) => e.id)).size, 'events received twice').toBe(all.length);
    const log = await alice[0]('GET', `/api/v1/webhooks/${hookId}/deliveries?limit=200`);
    expectStatus(log, 200, 'delivery log');
    expect(log.body.deliveries).toHaveLength(all.length);
    for (const d of log.body.deliveries) expect(d).toMatchObject({ status: 'delivered', attempts: 1 });
  });
});
