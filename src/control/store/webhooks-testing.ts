/**
 * webhooks-testing: the contract of the catalogue's webhooks (webhooks.ts)
 * as one suite, run against SQLite (unit, webhooks.test.ts) and a real
 * PostgreSQL (test/catalogue-postgres.test.ts). Two catalogues on one
 * database stand for two replicas.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Webhook } from '../../db/webhooks.js';
import type { EventRecord } from '../../services/webhooks/store.js';
import type { Catalogue } from '../catalogue.js';
import { openCatalogue } from './index.js';
import type { CatalogueTarget } from './testing.js';

const hook = (id: string, userId: string, events: string[], createdAt = 10): Webhook => ({
  id,
  userId,
  url: `https://hooks.example/${id}`,
  events,
  secret: 'whsec_0123456789abcdef',
  createdAt,
});

const event = (id: string, deploymentId: string, ev: EventRecord['event'] = 'restore.completed'): EventRecord => ({
  id,
  event: ev,
  deploymentId,
  deploymentName: 'web',
  createdAt: 1_000,
  data: { restore: { id: 'rst-1' } },
});

let seq = 0;
const nextId = (): string => `dlv-${String(++seq).padStart(12, 'a')}`;

export function webhooksSuite(name: string, target: CatalogueTarget): void {
  describe(`catalogue webhooks on ${name}`, () => {
    const open: Catalogue[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });
    /** Two replicas on a new database; alice's deployment on node n1, bob's on n2. */
    const replicas = async () => {
      const url = await target.fresh();
      const a = await openCatalogue(url);
      open.push(a);
      const b = await openCatalogue(url);
      open.push(b);
      const alice = await a.ensureUser('alice', 'user', 1);
      const bob = await a.ensureUser('bob', 'user', 1);
      const n1 = await a.addNode('n1', 'hash-n1', 1);
      const n2 = await a.addNode('n2', 'hash-n2', 1);
      await a.place('dep-aaaaaaaaaaaa', alice.id, n1.id, 2);
      await a.place('dep-bbbbbbbbbbbb', bob.id, n2.id, 2);
      return { a, b, alice: alice.id, bob: bob.id, n1: n1.id, n2: n2.id };
    };

    it('stores webhooks per user, newest first, up to the cap, and deletes one with its deliveries', async () => {
      const { a, b, alice, bob } = await replicas();
      expect(await a.insertWebhook(hook('whk-1', alice, ['restore.completed'], 10), 2)).toBe(true);
      expect(await b.insertWebhook(hook('whk-2', alice, ['snapshot.failed'], 20), 2)).toBe(true);
      expect(await a.insertWebhook(hook('whk-3', alice, ['snapshot.failed'], 30), 2)).toBe(false);
      expect(await a.insertWebhook(hook('whk-4', bob, ['snapshot.failed'], 30), 2)).toBe(true);
      expect((await b.webhooksOf(alice)).map((w) => w.id)).toEqual(['whk-2', 'whk-1']);
      expect(await b.webhook('whk-1')).toEqual(hook('whk-1', alice, ['restore.completed'], 10));
      await a.recordEvent(event('evt-1', 'dep-aaaaaaaaaaaa'), null, nextId);
      expect(await a.lastDelivery('whk-1')).toMatchObject({ webhookId: 'whk-1', status: 'pending' });
      await b.deleteWebhook('whk-1');
      expect(await a.webhook('whk-1')).toBeUndefined();
      expect(await a.webhookDeliveries('whk-1', 10, null)).toEqual([]);
    });

    it('never lets parallel creations pass the cap together', async () => {
      const { a, b, alice } = await replicas();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).insertWebhook(hook(`whk-${i}`, alice, ['snapshot.failed'], i), 3)),
      );
      expect(results.filter(Boolean)).toHaveLength(3);
      expect(await a.webhooksOf(alice)).toHaveLength(3);
    });

    it("records an event once per id, for the owner's subscribed webhooks, only from the deployment's node", async () => {
      const { a, b, alice, bob, n1, n2 } = await replicas();
      await a.insertWebhook(hook('whk-1', alice, ['restore.completed', 'snapshot.failed']), 10);
      await a.insertWebhook(hook('whk-2', alice, ['snapshot.failed']), 10);
      await a.insertWebhook(hook('whk-3', bob, ['restore.completed']), 10);
      // n2 does not run alice's deployment: refused, and the id is not spent.
      expect(await a.recordEvent(event('evt-1', 'dep-aaaaaaaaaaaa'), n2, nextId)).toEqual({ outcome: 'refused', deliveries: 0 });
      expect(await a.recordEvent(event('evt-1', 'dep-unknown00000'), n1, nextId)).toEqual({ outcome: 'refused', deliveries: 0 });
      expect(await a.recordEvent(event('evt-1', 'dep-aaaaaaaaaaaa'), n1, nextId)).toEqual({ outcome: 'recorded', deliveries: 1 });
      // Sent again (the acknowledgement was lost), to the same or another replica: nothing more.
      expect(await b.recordEvent(event('evt-1', 'dep-aaaaaaaaaaaa'), n1, nextId)).toEqual({ outcome: 'duplicate', deliveries: 0 });
      const [d] = await b.webhookDeliveries('whk-1', 10, null);
      expect(d).toMatchObject({ eventId: 'evt-1', event: 'restore.completed', status: 'pending', attempts: 0, nextAttemptAt: 1_000 });
      expect(JSON.parse(d!.body)).toEqual({
        id: 'evt-1',
        event: 'restore.completed',
        createdAt: new Date(1_000).toISOString(),
        deployment: { id: 'dep-aaaaaaaaaaaa', name: 'web' },
        data: { restore: { id: 'rst-1' } },
      });
      expect(await a.webhookDeliveries('whk-2', 10, null)).toEqual([]);
      expect(await a.webhookDeliveries('whk-3', 10, null)).toEqual([]);
      // The same id twice at once on two replicas: one records it.
      await a.recordEvent(event('evt-2', 'dep-aaaaaaaaaaaa', 'snapshot.failed'), n1, nextId);
      const both = await Promise.all([
        a.recordEvent(event('evt-3', 'dep-aaaaaaaaaaaa', 'snapshot.failed'), n1, nextId),
        b.recordEvent(event('evt-3', 'dep-aaaaaaaaaaaa', 'snapshot.failed'), n1, nextId),
      ]);
      expect(both.map((r) => r.outcome).sort()).toEqual(['duplicate', 'recorded']);
      expect(await a.webhookDeliveries('whk-2', 10, null)).toHaveLength(2);
      // Pages: newest first, below a cursor.
      const page = await a.webhookDeliveries('whk-1', 2, null);
      expect(page.map((x) => x.eventId)).toEqual(['evt-3', 'evt-2']);
      expect((await a.webhookDeliveries('whk-1', 2, page[1]!.seq)).map((x) => x.eventId)).toEqual(['evt-1']);
    });

    it('leases each due delivery to one claimer, and gives it to another once the lease ran out', async () => {
      const { a, b, alice, n1 } = await replicas();
      await a.insertWebhook(hook('whk-1', alice, ['snapshot.failed']), 10);
      for (let i = 0; i < 30; i++) await a.recordEvent(event(`evt-${i}`, 'dep-aaaaaaaaaaaa', 'snapshot.failed'), n1, nextId);
      // Four claimers at once, on two replicas: every delivery goes to exactly one.
      const claims = await Promise.all([a, b, a, b].map((c) => c.claimDeliveries(5_000, 10, 60_000)));
      const ids = claims.flat().map((c) => c.delivery.id);
      expect(ids).toHaveLength(30);
      expect(new Set(ids).size).toBe(30);
      expect(await a.claimDeliveries(5_000, 100, 60_000)).toEqual([]);

      const mine = claims.flat()[0]!;
      const outcome = { status: 'pending' as const, at: 5_100, nextAttemptAt: 35_100, responseStatus: 500, error: 'HTTP 500' };
      // A claimer that died: after the lease the delivery is due again and goes to another.
      const again = await b.claimDeliveries(65_001, 100, 60_000);
      expect(again.map((c) => c.delivery.id)).toContain(mine.delivery.id);
      const theirs = again.find((c) => c.delivery.id === mine.delivery.id)!;
      expect(theirs.lease).not.toBe(mine.lease);
      // The late first claimer records nothing; the one holding the lease does, once.
      expect(await a.recordDeliveryAttempt(mine.delivery.id, mine.lease, outcome)).toBe(false);
      expect(await b.recordDeliveryAttempt(theirs.delivery.id, theirs.lease, { ...outcome, at: 65_100, nextAttemptAt: 95_100 })).toBe(true);
      expect(await b.recordDeliveryAttempt(theirs.delivery.id, theirs.lease, outcome)).toBe(false);
      const [logged] = (await a.webhookDeliveries('whk-1', 100, null)).filter((d) => d.id === mine.delivery.id);
      expect(logged).toMatchObject({ attempts: 1, status: 'pending', nextAttemptAt: 95_100, responseStatus: 500 });
      // Not due before its next attempt.
      expect((await a.claimDeliveries(95_099, 100, 60_000)).map((c) => c.delivery.id)).not.toContain(mine.delivery.id);
      const last = (await a.claimDeliveries(95_100, 100, 60_000)).find((c) => c.delivery.id === mine.delivery.id)!;
      const done = { status: 'delivered' as const, at: 95_200, nextAttemptAt: null, responseStatus: 200, error: null };
      expect(await a.recordDeliveryAttempt(last.delivery.id, last.lease, done)).toBe(true);
      expect(await a.lastDelivery('whk-1')).toBeDefined();
      // Finished deliveries older than the retention are pruned; pending ones stay.
      expect(await b.pruneDeliveries(95_201)).toBe(1);
      expect(await a.webhookDeliveries('whk-1', 100, null)).toHaveLength(29);
    });
  });
}
