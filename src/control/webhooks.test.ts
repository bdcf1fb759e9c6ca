/**
 * Webhook deliveries sent by several control-plane replicas from one
 * catalogue (two catalogues on one SQLite file, each with its own
 * dispatcher), to a receiver on loopback: each delivery is sent once, and
 * one claimed by a replica that died is sent by another once its lease ran
 * out.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { WebhookDispatcher } from '../services/webhooks/dispatcher.js';
import { verifySignature } from '../services/webhooks/sender.js';
import { WebhookService } from '../services/webhooks/service.js';
import type { Catalogue } from './catalogue.js';
import { openCatalogue } from './store/index.js';
import { catalogueWebhookStore } from './webhooks.js';

const log = pino({ level: 'silent' });
let dir: string;
let receiver: http.Server;
let url: string;
const received: Array<{ delivery: string; body: string; signature: string }> = [];
const open: Catalogue[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-cp-hooks-'));
  receiver = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      received.push({
        delivery: String(req.headers['x-kova-delivery']),
        body: Buffer.concat(parts).toString(),
        signature: String(req.headers['x-kova-signature']),
      });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  received.length = 0;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** Two replicas (catalogue, webhook service, dispatcher) on one new database, alice's deployment on n1 and her webhook. */
async function replicas(clock: ManualClock) {
  const file = `sqlite:${path.join(dir, `cp${++n}.db`)}`;
  const make = async () => {
    // Two catalogues on one database stand for two replicas.
    const catalogue = await openCatalogue(file, { clock });
    open.push(catalogue);
    const store = catalogueWebhookStore(catalogue);
    const hooks = new WebhookService(store, clock, log, { allowPrivate: true });
    const dispatcher = new WebhookDispatcher(store, clock, log, hooks.options, { random: () => 0, leaseMs: 30_000 });
    return { catalogue, hooks, dispatcher };
  };
  const a = await make();
  const b = await make();
  const alice = await a.catalogue.ensureUser('alice', 'user', 1);
  const node = await a.catalogue.addNode('n1', 'hash-n1', 1);
  await a.catalogue.place('dep-aaaaaaaaaaaa', alice.id, node.id, 2);
  const { webhook, secret } = await b.hooks.create(alice.id, { url, events: ['snapshot.failed'] });
  const record = (i: number) =>
    a.hooks.record(
      {
        id: `evt-${String(i).padStart(12, 'a')}`,
        event: 'snapshot.failed',
        deploymentId: 'dep-aaaaaaaaaaaa',
        deploymentName: 'web',
        createdAt: clock.now(),
        data: { snapshot: { id: `snap-${i}` } },
      },
      node.id,
    );
  return { a, b, alice: alice.id, webhook, secret, record };
}

describe('webhook deliveries from several replicas', () => {
  it('sends each delivery once when two replicas send at the same time', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0));
    const { a, b, alice, webhook, secret, record } = await replicas(clock);
    for (let i = 0; i < 12; i++) await record(i);
    const [sentA, sentB] = await Promise.all([a.dispatcher.runDue(), b.dispatcher.runDue()]);
    expect(sentA + sentB).toBe(12);
    expect(received).toHaveLength(12);
    expect(new Set(received.map((r) => r.delivery)).size).toBe(12);
    for (const r of received) expect(verifySignature(secret, r.body, r.signature)).toBe(true);
    const page = await b.hooks.deliveries(alice, webhook.id, { limit: 100 });
    expect(page.deliveries.map((d) => [d.status, d.attempts])).toEqual(Array.from({ length: 12 }, () => ['delivered', 1]));
    expect(await a.dispatcher.runDue()).toBe(0);
  });

  it('leaves a delivery claimed by a replica that died to another one, once its lease ran out', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0));
    const { a, b, alice, webhook, record } = await replicas(clock);
    await record(1);
    // Replica a claims it and dies before sending.
    const [claimed] = await a.catalogue.claimDeliveries(clock.now(), 10, 30_000);
    expect(claimed).toBeDefined();
    expect(await b.dispatcher.runDue()).toBe(0);
    clock.advance(30_000 - 1);
    expect(await b.dispatcher.runDue()).toBe(0);
    clock.advance(1);
    expect(await b.dispatcher.runDue()).toBe(1);
    expect(received.map((r) => r.delivery)).toEqual([claimed!.delivery.id]);
    // The dead replica's lease is gone: what it would record now is dropped.
    const late = { status: 'failed' as const, at: clock.now(), nextAttemptAt: null, responseStatus: null, error: 'late' };
    expect(await a.catalogue.recordDeliveryAttempt(claimed!.delivery.id, claimed!.lease, late)).toBe(false);
    const [d] = (await a.hooks.deliveries(alice, webhook.id)).deliveries;
    expect(d).toMatchObject({ status: 'delivered', attempts: 1, responseStatus: 200 });
  });
});
