/**
 * webhooks: users' webhooks, their deliveries and the ids of the events
 * the nodes reported, in the catalogue (the WebhookStore contract of
 * src/services/webhooks/store.ts, adapted in src/control/webhooks.ts).
 *
 * Concurrency across replicas:
 * - insertWebhook locks the user's row (PostgreSQL) before counting, so
 *   two creations cannot pass the cap together;
 * - recordEvent inserts the event id first (ON CONFLICT DO NOTHING): of two
 *   replicas recording the same event, the second finds it and adds nothing;
 * - claimDeliveries is one UPDATE over the due rows picked `FOR UPDATE SKIP
 *   LOCKED` (PostgreSQL; SQLite has one writer): a claimed row gets a new
 *   lease token and its next attempt moved to the lease's end, so no other
 *   claim sees it due before then;
 * - recordDeliveryAttempt is conditional on the lease token: an attempt
 *   whose lease ran out (and was claimed again) records nothing.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { AttemptRecord, Delivery, Webhook } from '../../db/webhooks.js';
import type { ClaimedDelivery, RecordOutcome } from '../../services/webhooks/store.js';
import { eventBody } from '../../services/webhooks/store.js';
import type { Catalogue } from '../catalogue.js';
import type { Conn } from './connection.js';
import type { WebhookDeliveriesTable, WebhooksTable } from './schema.js';

type WebhookPart = Pick<
  Catalogue,
  | 'webhook'
  | 'webhooksOf'
  | 'lastDelivery'
  | 'insertWebhook'
  | 'deleteWebhook'
  | 'webhookDeliveries'
  | 'recordEvent'
  | 'claimDeliveries'
  | 'recordDeliveryAttempt'
  | 'pruneDeliveries'
>;

type DeliveryRow = Omit<WebhookDeliveriesTable, 'seq'> & { seq: number };

const toHook = (r: WebhooksTable): Webhook => ({
  id: r.id,
  userId: r.user_id,
  url: r.url,
  events: JSON.parse(r.events) as string[],
  secret: r.secret,
  createdAt: r.created_at,
});

const toDelivery = (r: DeliveryRow): Delivery => ({
  seq: Number(r.seq),
  id: r.id,
  webhookId: r.webhook_id,
  eventId: r.event_id,
  event: r.event,
  body: r.body,
  status: r.status,
  attempts: Number(r.attempts),
  nextAttemptAt: r.next_attempt_at === null ? null : Number(r.next_attempt_at),
  responseStatus: r.response_status,
  error: r.error,
  createdAt: Number(r.created_at),
  lastAttemptAt: r.last_attempt_at === null ? null : Number(r.last_attempt_at),
  finishedAt: r.finished_at === null ? null : Number(r.finished_at),
});

export function webhooks(conn: Conn): WebhookPart {
  const { db, dialect } = conn;
  return {
    async webhook(id) {
      const r = await db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
      return r && toHook(r);
    },
    async webhooksOf(userId) {
      const rows = await db
        .selectFrom('webhooks')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      return rows.map(toHook);
    },
    async lastDelivery(webhookId) {
      const r = await db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('webhook_id', '=', webhookId)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return r && toDelivery(r);
    },
    async insertWebhook(w, max) {
      return db.transaction().execute(async (trx) => {
        if (dialect === 'postgres') await sql`SELECT id FROM users WHERE id = ${w.userId} FOR UPDATE`.execute(trx);
        const { n } = await trx
          .selectFrom('webhooks')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('user_id', '=', w.userId)
          .executeTakeFirstOrThrow();
        if (Number(n) >= max) return false;
        await trx
          .insertInto('webhooks')
          .values({ id: w.id, user_id: w.userId, url: w.url, events: JSON.stringify(w.events), secret: w.secret, created_at: w.createdAt })
          .execute();
        return true;
      });
    },
    async deleteWebhook(id) {
      await db.deleteFrom('webhooks').where('id', '=', id).execute();
    },
    async webhookDeliveries(webhookId, limit, beforeSeq) {
      let q = db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId);
      if (beforeSeq !== null) q = q.where('seq', '<', beforeSeq);
      const rows = await q.orderBy('seq', 'desc').limit(limit).execute();
      return rows.map(toDelivery);
    },
    async recordEvent(ev, nodeId, newDeliveryId): Promise<RecordOutcome> {
      return db.transaction().execute(async (trx): Promise<RecordOutcome> => {
        let dq = trx.selectFrom('deployments').select(['id', 'user_id']).where('id', '=', ev.deploymentId);
        if (nodeId !== null) dq = dq.where('node_id', '=', nodeId);
        const dep = await dq.executeTakeFirst();
        if (!dep) return { outcome: 'refused', deliveries: 0 };
        const fresh = await trx
          .insertInto('webhook_events')
          .values({ id: ev.id, node_id: nodeId ?? '', deployment_id: ev.deploymentId, received_at: conn.clock.now() })
          .onConflict((oc) => oc.column('id').doNothing())
          .returning('id')
          .executeTakeFirst();
        if (!fresh) return { outcome: 'duplicate', deliveries: 0 };
        const hooks = (await trx.selectFrom('webhooks').selectAll().where('user_id', '=', dep.user_id).execute())
          .map(toHook)
          .filter((w) => w.events.includes(ev.event));
        if (hooks.length === 0) return { outcome: 'recorded', deliveries: 0 };
        const body = eventBody(ev, ev.deploymentName ?? ev.deploymentId);
        await trx
          .insertInto('webhook_deliveries')
          .values(
            hooks.map((w) => ({
              id: newDeliveryId(),
              webhook_id: w.id,
              event_id: ev.id,
              event: ev.event,
              body,
              status: 'pending' as const,
              attempts: 0,
              next_attempt_at: ev.createdAt,
              created_at: ev.createdAt,
            })),
          )
          .execute();
        return { outcome: 'recorded', deliveries: hooks.length };
      });
    },
    async claimDeliveries(now, limit, leaseMs): Promise<ClaimedDelivery[]> {
      const lease = randomUUID();
      const lock = dialect === 'postgres' ? sql`FOR UPDATE SKIP LOCKED` : sql``;
      const { rows } = await sql<DeliveryRow>`
        UPDATE webhook_deliveries SET lease = ${lease}, next_attempt_at = ${now + leaseMs}
        WHERE seq IN (
          SELECT seq FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ${now}
          ORDER BY next_attempt_at, seq LIMIT ${limit} ${lock}
        )
        RETURNING *`.execute(db);
      return rows
        .map(toDelivery)
        .sort((a, b) => a.seq - b.seq)
        .map((d) => ({
          // As it was before the claim moved its next attempt to the lease's end.
          delivery: { ...d, nextAttemptAt: now },
          lease,
        }));
    },
    async recordDeliveryAttempt(id: string, lease: string, a: AttemptRecord) {
      const r = await db
        .updateTable('webhook_deliveries')
        .set((eb) => ({
          attempts: eb('attempts', '+', 1),
          status: a.status,
          last_attempt_at: a.at,
          next_attempt_at: a.nextAttemptAt,
          response_status: a.responseStatus,
          error: a.error,
          finished_at: a.status === 'pending' ? null : a.at,
          lease: null,
        }))
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .where('lease', '=', lease)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async pruneDeliveries(before) {
      const r = await db
        .deleteFrom('webhook_deliveries')
        .where('status', '!=', 'pending')
        .where('finished_at', '<', before)
        .executeTakeFirst();
      await db.deleteFrom('webhook_events').where('received_at', '<', before).execute();
      return Number(r.numDeletedRows);
    },
  };
}
