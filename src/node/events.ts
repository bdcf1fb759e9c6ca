/**
 * events: the node's outbox of events for webhooks (`kova node`).
 *
 * The node's services report events (snapshot.failed, restore.completed, …)
 * to an EventSink; on a network node that sink is this outbox. emit()
 * inserts the event, with an id chosen here (`evt-…`), into the node's
 * journal (kova.db, table `event_outbox`), in the transaction of whatever
 * reported it when there is one, so an event is kept exactly when its
 * cause is. Nothing else happens at emit: it never waits on the network.
 *
 * run() sends the outbox to the control plane (POST /node/v1/events,
 * through the transport), oldest first, in batches of MAX_BATCH, one batch
 * in flight at a time, and deletes an event only once the control plane
 * acknowledged its id. An event whose acknowledgement was lost is sent
 * again; the control plane records each id once, so it makes one delivery
 * per webhook whatever happens. While the control plane cannot be reached
 * the send waits in the transport and events pile up here; at
 * `maxEvents` the oldest are dropped (logged), so an outbox that is never
 * read (a control plane that does not take events) cannot fill the disk.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { sleep } from '../core/sleep.js';
import type { Store } from '../db/store.js';
import type { NodeEvent } from '../network/protocol.js';
import type { EventSink, WebhookEvent } from '../services/webhooks/events.js';

/** Sends a batch; resolves with the ids the control plane acknowledged, or null when it did not take them (retry later). */
export type SendEvents = (events: readonly NodeEvent[]) => Promise<readonly string[] | null>;

export interface OutboxOptions {
  /** Events kept at most; beyond, the oldest are dropped. Default 10,000. */
  readonly maxEvents?: number;
  /** How often run() looks for events besides emit()'s wake-up. Default 1 s. */
  readonly pollMs?: number;
  /** Pause after a batch the control plane did not take, doubling up to maxRetryMs. Default 1 s. */
  readonly retryMs?: number;
  /** Default 60 s. */
  readonly maxRetryMs?: number;
}

export const OUTBOX_DEFAULTS = { maxEvents: 10_000, pollMs: 1_000, retryMs: 1_000, maxRetryMs: 60_000 } as const;
/** Events per request (the control plane takes at most MAX_EVENTS_PER_REQUEST). */
export const MAX_BATCH = 100;

export class EventOutbox implements EventSink {
  private readonly opts: Required<OutboxOptions>;
  private flushing: Promise<number> | null = null;
  private wake: (() => void) | null = null;
  private poked = false;
  private readonly stopping = new AbortController();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: OutboxOptions = {},
  ) {
    this.opts = { ...OUTBOX_DEFAULTS, ...opts };
    // The outbox's table lives in the journal with the rest of the node's state; created here, where it is used.
    store.db.exec(`CREATE TABLE IF NOT EXISTS event_outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      event TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`);
  }

  emit(event: WebhookEvent, deploymentId: string, data: Readonly<Record<string, unknown>>): void {
    try {
      const dep = this.store.deployments.get(deploymentId);
      const e: NodeEvent = {
        id: newId('evt'),
        event,
        deploymentId,
        deploymentName: dep?.name ?? deploymentId,
        createdAt: this.clock.now(),
        data,
      };
      this.store.tx(() => {
        this.store.db
          .prepare('INSERT INTO event_outbox (id, event, created_at) VALUES (?, ?, ?)')
          .run(e.id, JSON.stringify(e), e.createdAt);
        const over = this.count() - this.opts.maxEvents;
        if (over > 0) {
          this.store.db.prepare('DELETE FROM event_outbox WHERE seq IN (SELECT seq FROM event_outbox ORDER BY seq LIMIT ?)').run(over);
          this.log.warn({ dropped: over, max: this.opts.maxEvents }, 'the event outbox is full; the oldest events were dropped');
        }
      });
      this.poked = true;
      this.wake?.();
    } catch (err) {
      this.log.error({ err, event, deployment: deploymentId }, 'could not keep an event for webhooks');
    }
  }

  /** Events waiting, oldest first. */
  pending(limit = MAX_BATCH): NodeEvent[] {
    const rows = this.store.db.prepare('SELECT event FROM event_outbox ORDER BY seq LIMIT ?').all(limit) as Array<{ event: string }>;
    return rows.map((r) => JSON.parse(r.event) as NodeEvent);
  }

  count(): number {
    return (this.store.db.prepare('SELECT count(*) AS n FROM event_outbox').get() as { n: number }).n;
  }

  /** ack deletes the events the control plane acknowledged. */
  ack(ids: readonly string[]): void {
    const del = this.store.db.prepare('DELETE FROM event_outbox WHERE id = ?');
    this.store.tx(() => {
      for (const id of ids) del.run(id);
    });
  }

  /**
   * flush sends what waits, batch after batch, until the outbox is empty
   * or a batch is not taken; resolves with how many were acknowledged.
   * Calls are serialised: a call during a flush waits for it, then flushes.
   */
  async flush(send: SendEvents): Promise<number> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    this.flushing = this.sendAll(send);
    try {
      return await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  private async sendAll(send: SendEvents): Promise<number> {
    let acked = 0;
    for (;;) {
      const batch = this.pending(MAX_BATCH);
      if (batch.length === 0) return acked;
      const ids = await send(batch);
      if (ids === null) throw new OutboxNotTakenError();
      const known = new Set(batch.map((e) => e.id));
      const mine = ids.filter((id) => known.has(id));
      this.ack(mine);
      acked += mine.length;
      // Nothing of the batch acknowledged: sending it again at once would loop.
      if (mine.length === 0) throw new OutboxNotTakenError();
    }
  }

  /**
   * run flushes after every emit() and every pollMs until stop(); after a
   * batch that was not taken (or an error, given to onError) it waits
   * retryMs, doubling up to maxRetryMs, whatever is emitted meanwhile.
   */
  async run(send: SendEvents, onError: (err: unknown) => boolean | void): Promise<void> {
    let retry = this.opts.retryMs;
    while (!this.stopping.signal.aborted) {
      // Set by emit(): an event kept while this flush runs is not left for the next poll.
      this.poked = false;
      try {
        await this.flush(send);
        retry = this.opts.retryMs;
      } catch (err) {
        if (!(err instanceof OutboxNotTakenError) && onError(err) === true) return;
        await sleep(retry, this.stopping.signal);
        retry = Math.min(this.opts.maxRetryMs, retry * 2);
        continue;
      }
      if (this.poked) continue;
      const wakeup = new AbortController();
      this.wake = () => wakeup.abort();
      await sleep(this.opts.pollMs, AbortSignal.any([this.stopping.signal, wakeup.signal]));
      this.wake = null;
    }
  }

  /** stop ends run(); events not sent stay in the journal for the next start. */
  stop(): void {
    this.stopping.abort();
    this.wake?.();
  }
}

/** A batch the control plane did not take (it answered otherwise, or acknowledged none of it). */
class OutboxNotTakenError extends Error {
  constructor() {
    super('the control plane did not take the events');
  }
}
