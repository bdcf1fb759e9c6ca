/**
 * store: where webhooks and their deliveries live, as the webhook service
 * and the dispatcher see it. Two implementations: the node's journal
 * (kova.db, journalWebhookStore below) for `kova serve`, and the control
 * plane's catalogue (src/control/webhooks.ts, PostgreSQL or SQLite) for
 * `kova control-plane`. Methods may answer now or later (`Awaitable`).
 *
 * Each method is atomic on its own: insertCapped counts and inserts in one
 * transaction, recordEvent checks the deployment, dedups the event id and
 * inserts every delivery in one transaction, claim hands each due delivery
 * to one caller until its lease runs out (several replicas may claim at
 * once), and recordAttempt only counts an attempt made under the lease it
 * names.
 */
import { iso } from '../../core/clock.js';
import type { Store } from '../../db/store.js';
import type { AttemptRecord, Delivery, Webhook } from '../../db/webhooks.js';
import type { WebhookEvent } from './events.js';

/** A value now, or a promise of it. */
type Awaitable<T> = T | Promise<T>;

/** One event to record deliveries for. */
export interface EventRecord {
  /** `evt-…`, chosen where the event happened; the catalogue records each id once. */
  readonly id: string;
  readonly event: WebhookEvent;
  readonly deploymentId: string;
  /** The deployment's name as its node knows it; null: the store looks it up. */
  readonly deploymentName: string | null;
  readonly createdAt: number;
  readonly data: Readonly<Record<string, unknown>>;
}

/**
 * What recordEvent did: `recorded` (with `deliveries` webhooks subscribed,
 * possibly 0), `duplicate` (that event id was recorded before: nothing
 * added), `refused` (no such deployment, or not placed on the node that
 * reported it).
 */
export type RecordOutcome =
  { readonly outcome: 'recorded'; readonly deliveries: number } | { readonly outcome: 'duplicate' | 'refused'; readonly deliveries: 0 };

/** A delivery handed to one sender, with the lease its attempt is recorded under. */
export interface ClaimedDelivery {
  readonly delivery: Delivery;
  readonly lease: string;
}

export interface WebhookStore {
  get(id: string): Awaitable<Webhook | undefined>;
  /** A user's webhooks, newest first. */
  listByUser(userId: string): Awaitable<Webhook[]>;
  lastDelivery(webhookId: string): Awaitable<Delivery | undefined>;
  /** insertCapped stores the webhook unless its user already has `max`; false then. */
  insertCapped(w: Webhook, max: number): Awaitable<boolean>;
  /** delete removes a webhook with its delivery log. */
  delete(id: string): Awaitable<void>;
  /** One page of a webhook's log, newest first, below `beforeSeq` when given. */
  deliveries(webhookId: string, limit: number, beforeSeq: number | null): Awaitable<Delivery[]>;
  /**
   * recordEvent records one pending delivery, with `body`, per webhook of
   * the deployment's owner subscribed to the event. `nodeId`: the node
   * that reported it (the deployment must be placed on it), null in the
   * all-in-one.
   */
  recordEvent(ev: EventRecord, nodeId: string | null, newDeliveryId: () => string): Awaitable<RecordOutcome>;
  /**
   * claim hands out up to `limit` pending deliveries due at `now`, oldest
   * first, each leased for `leaseMs`: no other claim gets it before the
   * lease runs out (then it is due again, so a sender that died loses nothing).
   */
  claim(now: number, limit: number, leaseMs: number): Awaitable<ClaimedDelivery[]>;
  /** recordAttempt counts one attempt made under `lease`; false when the lease was lost (nothing recorded). */
  recordAttempt(id: string, lease: string, a: AttemptRecord): Awaitable<boolean>;
  /** prune deletes finished deliveries older than `before` (and event ids kept for dedup). */
  prune(before: number): Awaitable<number>;
}

/** eventBody is the JSON every delivery of an event sends. */
export function eventBody(ev: EventRecord, deploymentName: string): string {
  return JSON.stringify({
    id: ev.id,
    event: ev.event,
    createdAt: iso(ev.createdAt),
    deployment: { id: ev.deploymentId, name: deploymentName },
    data: ev.data,
  });
}

/**
 * journalWebhookStore: the webhooks of `kova serve`, in the node's journal.
 * One process sends them, so a claim is simply what is due (the dispatcher
 * never attempts one delivery twice at once) and the lease is not stored.
 */
export function journalWebhookStore(store: Store): WebhookStore {
  const hooks = store.webhooks;
  return {
    get: (id) => hooks.get(id),
    listByUser: (userId) => hooks.listByUser(userId),
    lastDelivery: (id) => hooks.lastDelivery(id),
    insertCapped: (w, max) =>
      store.tx(() => {
        if (hooks.countByUser(w.userId) >= max) return false;
        hooks.insert(w);
        return true;
      }),
    delete: (id) => hooks.delete(id),
    deliveries: (id, limit, before) => hooks.deliveries(id, limit, before),
    recordEvent: (ev, _nodeId, newDeliveryId) =>
      store.tx((): RecordOutcome => {
        const dep = store.deployments.get(ev.deploymentId);
        if (!dep) return { outcome: 'refused', deliveries: 0 };
        const subscribed = hooks.listByUser(dep.userId).filter((w) => w.events.includes(ev.event));
        const body = eventBody(ev, ev.deploymentName ?? dep.name);
        for (const w of subscribed) {
          hooks.insertDelivery({ id: newDeliveryId(), webhookId: w.id, eventId: ev.id, event: ev.event, body, createdAt: ev.createdAt });
        }
        return { outcome: 'recorded', deliveries: subscribed.length };
      }),
    claim: (now, limit) => hooks.due(now, limit).map((delivery) => ({ delivery, lease: '' })),
    recordAttempt: (id, _lease, a) => {
      hooks.recordAttempt(id, a);
      return true;
    },
    prune: (before) => hooks.prune(before),
  };
}
