/**
 * dispatcher: sends the pending webhook deliveries the database holds.
 *
 * runDue() claims the deliveries due at the clock's now (store.ts: each is
 * leased to this dispatcher for `leaseMs`, so several control-plane
 * replicas sending from one database never make the same attempt), makes
 * one attempt (sender.ts) of each, at most `concurrency` at once, and
 * records each outcome before it resolves: a 2xx marks it `delivered`;
 * anything else schedules the next attempt after the sender's backoff
 * (retryDelayMs), or marks it `failed` after the last one. A delivery is
 * never attempted twice at once. A dispatcher that dies mid-attempt leaves
 * its claims to run out: the delivery is due again when its lease ends,
 * and that attempt is made again (the receiver dedups by X-Kova-Delivery).
 * An outcome recorded after the lease was lost is dropped.
 * Unless private addresses are allowed, the URL's host is resolved and
 * checked (address.ts) before every attempt.
 *
 * start() runs runDue() every second and as soon as an event is recorded;
 * since the deliveries live in the database, a restarted server (or another
 * replica) picks up the pending ones where they were. Tests do not start it: they call
 * runDue() and move the clock past each backoff instead of sleeping.
 * Finished deliveries older than LOG_RETENTION_MS are pruned.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { KovaError } from '../../core/errors.js';
import { checkPublicHost } from './address.js';
import { ATTEMPT_TIMEOUT_MS, type Attempt, deliver, retryDelayMs } from './sender.js';
import { type ResolvedWebhookOptions, parseWebhookUrl } from './service.js';
import type { ClaimedDelivery, WebhookStore } from './store.js';

/** How long finished deliveries stay in the log. */
export const LOG_RETENTION_MS = 30 * 86_400_000;
const TICK_MS = 1000;
const PRUNE_EVERY_MS = 3_600_000;
/** Deliveries taken from the database per run. */
const BATCH = 100;

export interface DispatcherOptions {
  /** Attempts in flight at once. Default 4. */
  readonly concurrency?: number;
  /** One attempt's timeout. Default the sender's ATTEMPT_TIMEOUT_MS (10 s). */
  readonly timeoutMs?: number;
  /** The jitter source of the backoff, a number in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** How long a claimed delivery stays this dispatcher's. Default LEASE_MS; longer than an attempt's timeout. */
  readonly leaseMs?: number;
}

/** How long a claim lasts unless configured: an attempt's timeout and a minute to record it. */
export const LEASE_MS = ATTEMPT_TIMEOUT_MS + 60_000;

export class WebhookDispatcher {
  private readonly inFlight = new Set<string>();
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly random: () => number;
  private readonly leaseMs: number;
  private timer: NodeJS.Timeout | null = null;
  private looping: Promise<void> | null = null;
  private again = false;
  private lastPrune = 0;

  constructor(
    private readonly store: WebhookStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly hooks: ResolvedWebhookOptions,
    opts: DispatcherOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 4;
    this.timeoutMs = opts.timeoutMs ?? ATTEMPT_TIMEOUT_MS;
    this.random = opts.random ?? Math.random;
    this.leaseMs = Math.max(opts.leaseMs ?? LEASE_MS, this.timeoutMs + 1000);
  }

  /** runDue attempts every delivery due now, once; resolves with how many were attempted. */
  async runDue(): Promise<number> {
    const claimed = await this.store.claim(this.clock.now(), BATCH, this.leaseMs);
    const due = claimed.filter((c) => !this.inFlight.has(c.delivery.id));
    for (const c of due) this.inFlight.add(c.delivery.id);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length) {
        const c = due[next++]!;
        try {
          await this.attempt(c);
        } catch (err) {
          this.log.error({ err, delivery: c.delivery.id }, 'could not record a webhook attempt');
        } finally {
          this.inFlight.delete(c.delivery.id);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, due.length) }, worker));
    await this.prune();
    return due.length;
  }

  private async attempt({ delivery: d, lease }: ClaimedDelivery): Promise<void> {
    const hook = await this.store.get(d.webhookId);
    if (!hook) return; // deleted meanwhile: its log went with it
    let result: Attempt;
    const started = this.clock.now();
    try {
      const url = parseWebhookUrl(hook.url);
      if (!this.hooks.allowPrivate) await checkPublicHost(url, this.hooks.resolve);
      result = await deliver({
        url: url.href,
        secret: hook.secret,
        event: d.event,
        deliveryId: d.id,
        body: d.body,
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      const detail = err instanceof KovaError ? `refused: ${err.message}` : String(err);
      result = { ok: false, status: null, detail, durationMs: 0 };
    }
    const at = this.clock.now();
    const attempts = d.attempts + 1;
    const delay = result.ok ? null : retryDelayMs(attempts + 1, this.random());
    const recorded = await this.store.recordAttempt(d.id, lease, {
      status: result.ok ? 'delivered' : delay === null ? 'failed' : 'pending',
      at,
      nextAttemptAt: delay === null ? null : at + delay,
      responseStatus: result.status,
      error: result.ok ? null : result.detail,
    });
    this.log.info(
      { delivery: d.id, webhook: hook.id, event: d.event, attempt: attempts, ok: result.ok, status: result.status, ms: at - started },
      recorded ? 'webhook attempt' : 'webhook attempt made after its lease ran out; not recorded',
    );
  }

  private async prune(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    await this.store.prune(now - LOG_RETENTION_MS);
  }

  /** start sends due deliveries every second, and soon after each kick(). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), TICK_MS);
    this.timer.unref();
    this.kick();
  }

  /** kick runs runDue() now (or right after the run in progress) when started. */
  kick(): void {
    if (!this.timer) return;
    if (this.looping) {
      this.again = true;
      return;
    }
    this.looping = (async () => {
      do {
        this.again = false;
        try {
          await this.runDue();
        } catch (err) {
          this.log.error({ err }, 'webhook deliveries failed');
        }
      } while (this.again && this.timer);
    })().finally(() => {
      this.looping = null;
    });
  }

  /** stop stops sending and waits for the attempts in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.looping;
  }
}
