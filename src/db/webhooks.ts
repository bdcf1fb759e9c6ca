/**
 * webhooks: each user's webhooks, and the log of deliveries to them. A
 * delivery keeps the exact body it sends, so every retry (and a retry after
 * a restart) sends the same bytes with the same signature.
 */
import { Table } from './table.js';

export interface Webhook {
  readonly id: string;
  readonly userId: string;
  readonly url: string;
  readonly events: readonly string[];
  /** Kept as given, not hashed: the server signs each request with it. */
  readonly secret: string;
  readonly createdAt: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface Delivery {
  /** Orders deliveries (newest has the highest); the delivery log's cursor. */
  readonly seq: number;
  readonly id: string;
  readonly webhookId: string;
  readonly eventId: string;
  readonly event: string;
  readonly body: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** When the next attempt is due (null once delivered or failed). */
  readonly nextAttemptAt: number | null;
  readonly responseStatus: number | null;
  readonly error: string | null;
  readonly createdAt: number;
  readonly lastAttemptAt: number | null;
  readonly finishedAt: number | null;
}

/** A webhook's row, in the journal and in the control plane's catalogue alike. */
export interface HookRow {
  id: string;
  user_id: string;
  url: string;
  events: string;
  secret: string;
  created_at: number;
}

/**
 * A delivery's row, in the journal and in the catalogue alike. Integer
 * columns are numbers in SQLite; PostgreSQL's driver may hand out its 64-bit
 * integers as strings, hence Number() below.
 */
export interface DeliveryRow {
  seq: number;
  id: string;
  webhook_id: string;
  event_id: string;
  event: string;
  body: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number | null;
  response_status: number | null;
  error: string | null;
  created_at: number;
  last_attempt_at: number | null;
  finished_at: number | null;
}

const num = (v: number | null): number | null => (v === null ? null : Number(v));

export const toHook = (r: HookRow): Webhook => ({
  id: r.id,
  userId: r.user_id,
  url: r.url,
  events: JSON.parse(r.events) as string[],
  secret: r.secret,
  createdAt: Number(r.created_at),
});

export const toDelivery = (r: DeliveryRow): Delivery => ({
  seq: Number(r.seq),
  id: r.id,
  webhookId: r.webhook_id,
  eventId: r.event_id,
  event: r.event,
  body: r.body,
  status: r.status,
  attempts: Number(r.attempts),
  nextAttemptAt: num(r.next_attempt_at),
  responseStatus: r.response_status,
  error: r.error,
  createdAt: Number(r.created_at),
  lastAttemptAt: num(r.last_attempt_at),
  finishedAt: num(r.finished_at),
});

/** The outcome of one attempt, as recorded. */
export interface AttemptRecord {
  readonly status: DeliveryStatus;
  readonly at: number;
  readonly nextAttemptAt: number | null;
  readonly responseStatus: number | null;
  readonly error: string | null;
}

export class Webhooks extends Table {
  insert(h: Webhook): void {
    this.q('INSERT INTO webhooks (id, user_id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      h.id,
      h.userId,
      h.url,
      JSON.stringify(h.events),
      h.secret,
      h.createdAt,
    );
  }

  get(id: string): Webhook | undefined {
    const r = this.q('SELECT * FROM webhooks WHERE id = ?').get(id) as HookRow | undefined;
    return r && toHook(r);
  }

  /** listByUser returns a user's webhooks, newest first. */
  listByUser(userId: string): Webhook[] {
    return (this.q('SELECT * FROM webhooks WHERE user_id = ? ORDER BY created_at DESC, rowid DESC').all(userId) as HookRow[]).map(toHook);
  }

  countByUser(userId: string): number {
    return (this.q('SELECT count(*) AS n FROM webhooks WHERE user_id = ?').get(userId) as { n: number }).n;
  }

  /** delete removes a webhook and its delivery log (pending deliveries are never sent). */
  delete(id: string): void {
    this.q('DELETE FROM webhooks WHERE id = ?').run(id);
  }

  /* ---- deliveries ---------------------------------------------------------------- */

  insertDelivery(d: Pick<Delivery, 'id' | 'webhookId' | 'eventId' | 'event' | 'body' | 'createdAt'>): void {
    this.q(
      `INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, body, status, attempts, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
    ).run(d.id, d.webhookId, d.eventId, d.event, d.body, d.createdAt, d.createdAt);
  }

  delivery(id: string): Delivery | undefined {
    const r = this.q('SELECT * FROM webhook_deliveries WHERE id = ?').get(id) as DeliveryRow | undefined;
    return r && toDelivery(r);
  }

  /** deliveries returns one page of a webhook's log, newest first, starting below `beforeSeq` when given. */
  deliveries(webhookId: string, limit: number, beforeSeq: number | null): Delivery[] {
    const rows = this.q('SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?').all(
      webhookId,
      beforeSeq ?? Number.MAX_SAFE_INTEGER,
      limit,
    ) as DeliveryRow[];
    return rows.map(toDelivery);
  }

  /** lastDelivery returns a webhook's newest delivery. */
  lastDelivery(webhookId: string): Delivery | undefined {
    const r = this.q('SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY seq DESC LIMIT 1').get(webhookId) as
      DeliveryRow | undefined;
    return r && toDelivery(r);
  }

  /** due returns pending deliveries whose next attempt is due at `now`, oldest first. */
  due(now: number, limit: number): Delivery[] {
    return (
      this.q(
        "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT ?",
      ).all(now, limit) as DeliveryRow[]
    ).map(toDelivery);
  }

  /** nextDue returns when the earliest pending delivery is due, or null. */
  nextDue(): number | null {
    const r = this.q("SELECT min(next_attempt_at) AS t FROM webhook_deliveries WHERE status = 'pending'").get() as { t: number | null };
    return r.t;
  }

  /** recordAttempt counts one attempt of a pending delivery and records its outcome. */
  recordAttempt(id: string, a: AttemptRecord): void {
    this.q(
      `UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, last_attempt_at = ?, next_attempt_at = ?,
         response_status = ?, error = ?, finished_at = ? WHERE id = ? AND status = 'pending'`,
    ).run(a.status, a.at, a.nextAttemptAt, a.responseStatus, a.error, a.status === 'pending' ? null : a.at, id);
  }

  /** prune deletes finished deliveries older than `before`. */
  prune(before: number): number {
    return this.q("DELETE FROM webhook_deliveries WHERE status != 'pending' AND finished_at < ?").run(before).changes;
  }
}
