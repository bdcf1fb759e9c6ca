/**
 * The node's event outbox (events.ts): an event is kept in the journal
 * until the control plane acknowledged it, sent again after a failure or a
 * lost acknowledgement, and recorded once on the control plane side
 * (node-side.ts over a SQLite catalogue: one delivery per webhook).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { Store } from '../db/store.js';
import type { Catalogue } from '../control/catalogue.js';
import { Dispatcher } from '../control/dispatch.js';
import { NodeSide } from '../control/node-side.js';
import { openCatalogue } from '../control/store/index.js';
import { NodeEvents, catalogueWebhookStore } from '../control/webhooks.js';
import type { NodeEvent } from '../network/protocol.js';
import { WebhookService } from '../services/webhooks/service.js';
import { EventOutbox, type SendEvents } from './events.js';

const log = pino({ level: 'silent' });

async function waitUntil(ok: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
let dir: string;
let store: Store;
let clock: ManualClock;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-outbox-'));
  store = Store.open(path.join(dir, 'kova.db'));
  clock = new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('EventOutbox', () => {
  it('keeps each event until acknowledged, across a restart, and sends it again after a failure', async () => {
    const outbox = new EventOutbox(store, clock, log);
    outbox.emit('snapshot.failed', 'dep-aaaaaaaaaaaa', { snapshot: { id: 'snap-1' } });
    outbox.emit('restore.completed', 'dep-aaaaaaaaaaaa', { restore: { id: 'rst-1' } });
    outbox.emit('restore.failed', 'dep-aaaaaaaaaaaa', { restore: { id: 'rst-2' } });
    const waiting = outbox.pending();
    expect(waiting.map((e) => e.event)).toEqual(['snapshot.failed', 'restore.completed', 'restore.failed']);
    expect(waiting[0]).toMatchObject({ deploymentId: 'dep-aaaaaaaaaaaa', createdAt: clock.now(), data: { snapshot: { id: 'snap-1' } } });
    expect(new Set(waiting.map((e) => e.id)).size).toBe(3);

    // The control plane does not answer well: nothing is deleted.
    const sent: NodeEvent[][] = [];
    const refuse: SendEvents = async (events) => {
      sent.push([...events]);
      return null;
    };
    await expect(outbox.flush(refuse)).rejects.toThrow(/did not take/);
    const failing: SendEvents = async () => {
      throw new Error('connection reset');
    };
    await expect(outbox.flush(failing)).rejects.toThrow('connection reset');
    expect(outbox.count()).toBe(3);

    // A restart: the events are in the journal, with their ids.
    store.close();
    store = Store.open(path.join(dir, 'kova.db'));
    const again = new EventOutbox(store, clock, log);
    expect(again.pending()).toEqual(waiting);

    // Only what is acknowledged goes; the rest is sent again in the next batch.
    const partial: SendEvents = async (events) => {
      sent.push([...events]);
      return sent.length === 2 ? [events[0]!.id, 'evt-notinthebatch'] : events.map((e) => e.id);
    };
    expect(await again.flush(partial)).toBe(3);
    expect(sent[1]!.map((e) => e.id)).toEqual(waiting.map((e) => e.id));
    expect(sent[2]!.map((e) => e.id)).toEqual(waiting.slice(1).map((e) => e.id));
    expect(again.count()).toBe(0);
  });

  it('runs: sends after each emit, and again after a batch the control plane did not take', async () => {
    const outbox = new EventOutbox(store, clock, log, { pollMs: 60_000, retryMs: 20, maxRetryMs: 40 });
    const got: string[] = [];
    let refuse = 2;
    // An older control plane answers 404 (null here) twice, then takes them.
    const send: SendEvents = async (events) => {
      if (refuse-- > 0) return null;
      got.push(...events.map((e) => e.event));
      return events.map((e) => e.id);
    };
    const running = outbox.run(send, () => undefined);
    try {
      outbox.emit('snapshot.failed', 'dep-aaaaaaaaaaaa', {});
      await waitUntil(() => got.length === 1);
      expect(outbox.count()).toBe(0);
      // Emitting wakes the loop long before its 60 s poll.
      outbox.emit('restore.failed', 'dep-aaaaaaaaaaaa', {});
      await waitUntil(() => got.length === 2);
      expect(got).toEqual(['snapshot.failed', 'restore.failed']);
    } finally {
      outbox.stop();
      await running;
    }
  });

  it('keeps at most maxEvents, dropping the oldest', () => {
    const outbox = new EventOutbox(store, clock, log, { maxEvents: 2 });
    for (const id of ['snap-1', 'snap-2', 'snap-3']) outbox.emit('snapshot.failed', 'dep-aaaaaaaaaaaa', { snapshot: { id } });
    expect(outbox.pending().map((e) => (e.data as { snapshot: { id: string } }).snapshot.id)).toEqual(['snap-2', 'snap-3']);
  });

  it("is recorded once by the control plane when the acknowledgement is lost, and only for the node's own deployments", async () => {
    const catalogue: Catalogue = await openCatalogue(`sqlite:${path.join(dir, 'control.db')}`, { clock });
    try {
      const user = await catalogue.ensureUser('alice', 'user', 1);
      const node = await catalogue.addNode('n1', 'hash-n1', 1);
      const other = await catalogue.addNode('n2', 'hash-n2', 1);
      await catalogue.place('dep-aaaaaaaaaaaa', user.id, node.id, 2);
      await catalogue.place('dep-bbbbbbbbbbbb', user.id, other.id, 2);
      const hooks = new WebhookService(catalogueWebhookStore(catalogue), clock, log, { allowPrivate: true });
      const { webhook } = await hooks.create(user.id, { url: 'http://127.0.0.1:9/hook', events: ['restore.completed'] });
      const side = new NodeSide(catalogue, new Dispatcher(catalogue, clock, { waitMs: 1000, nodeTimeoutMs: 30_000 }, log), clock, {
        heartbeatIntervalMs: 1000,
        nodeTimeoutMs: 30_000,
        events: new NodeEvents(hooks, log),
      });
      const me = (await catalogue.node(node.id))!;

      const outbox = new EventOutbox(store, clock, log);
      outbox.emit('restore.completed', 'dep-aaaaaaaaaaaa', { restore: { id: 'rst-1' } });
      // Another node's deployment, and data larger than any event has: acknowledged (so they leave the outbox), recorded for nobody.
      outbox.emit('restore.completed', 'dep-bbbbbbbbbbbb', { restore: { id: 'rst-2' } });
      outbox.emit('restore.completed', 'dep-aaaaaaaaaaaa', { restore: { id: 'rst-3', error: 'x'.repeat(70_000) } });
      let calls = 0;
      const send: SendEvents = async (events) => {
        const reply = await side.events(me, events);
        // The first answer is lost on the way back.
        return ++calls === 1 ? null : reply.acked;
      };
      await expect(outbox.flush(send)).rejects.toThrow(/did not take/);
      expect(outbox.count()).toBe(3);
      expect(await outbox.flush(send)).toBe(3);
      expect(outbox.count()).toBe(0);

      const log1 = await hooks.deliveries(user.id, webhook.id);
      expect(log1.deliveries).toHaveLength(1);
      expect(JSON.parse(log1.deliveries[0]!.body)).toMatchObject({
        event: 'restore.completed',
        deployment: { id: 'dep-aaaaaaaaaaaa', name: 'dep-aaaaaaaaaaaa' },
        data: { restore: { id: 'rst-1' } },
      });
    } finally {
      await catalogue.close();
    }
  });
});
