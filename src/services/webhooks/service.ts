/**
 * service: each user's webhooks (create, list, delete, delivery log) and the
 * event sink the other services report to.
 *
 * A webhook is an http or https URL, the events it wants and a secret that
 * signs every request (sender.ts). A user has at most `maxPerUser` of them
 * and sees and deletes only their own (another user's is 404, like a
 * missing one). The secret is shown once, when the webhook is created; it is
 * stored as given (the server must sign with it), in the database that is
 * private to the server (mode 0600).
 *
 * emit() records one pending delivery per subscribed webhook of the
 * deployment's owner, all with the same body, in one transaction, and wakes
 * the dispatcher; it never throws (a failure to record is logged). In
 * network mode the events come from the nodes instead: record() takes each
 * with the id its node chose and the node that reported it.
 *
 * The webhooks live in a WebhookStore (store.ts): the node's journal for
 * `kova serve`, the catalogue for `kova control-plane`. With the journal
 * every call answers synchronously, so emit() has recorded the deliveries
 * when it returns.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Delivery, Webhook } from '../../db/webhooks.js';
import { type Resolver, checkPublicHost, systemResolver } from './address.js';
import { type EventSink, WEBHOOK_EVENTS, type WebhookEvent, isWebhookEvent } from './events.js';
import type { EventRecord, RecordOutcome, WebhookStore } from './store.js';

/** Webhooks a user may have unless configured otherwise. */
export const DEFAULT_MAX_WEBHOOKS_PER_USER = 10;
/** The longest webhook URL. */
export const MAX_URL_LENGTH = 2048;
/** Delivery log pages: default and largest size. */
export const DELIVERY_PAGE = { default: 50, max: 200 } as const;
const SECRET_RE = /^[\x21-\x7e]{16,256}$/;

export interface WebhookOptions {
  /** Allow URLs whose host is loopback, private or link-local (default false: refused). */
  readonly allowPrivate?: boolean;
  /** Default DEFAULT_MAX_WEBHOOKS_PER_USER. */
  readonly maxPerUser?: number;
  /** Resolves host names (default the system's resolver). */
  readonly resolve?: Resolver;
}

export interface WebhookInput {
  readonly url: string;
  readonly events: readonly string[];
  readonly secret?: string;
}

/** The settings the dispatcher shares with this service. */
export interface ResolvedWebhookOptions {
  readonly allowPrivate: boolean;
  readonly maxPerUser: number;
  readonly resolve: Resolver;
}

export function webhookOptions(o: WebhookOptions = {}): ResolvedWebhookOptions {
  return {
    allowPrivate: o.allowPrivate ?? false,
    maxPerUser: o.maxPerUser ?? DEFAULT_MAX_WEBHOOKS_PER_USER,
    resolve: o.resolve ?? systemResolver,
  };
}

/** parseWebhookUrl checks a URL's form (not where it points): INVALID_WEBHOOK_URL otherwise. */
export function parseWebhookUrl(text: string): URL {
  if (text.length > MAX_URL_LENGTH) throw new ValidationError('INVALID_WEBHOOK_URL', `url must be at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ValidationError('INVALID_WEBHOOK_URL', 'url must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ValidationError('INVALID_WEBHOOK_URL', `url must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  if (url.username !== '' || url.password !== '')
    throw new ValidationError('INVALID_WEBHOOK_URL', 'url must not carry a user name or password: use the signing secret');
  url.hash = '';
  return url;
}

export class WebhookService implements EventSink {
  private readonly opts: ResolvedWebhookOptions;
  /** Called after emit recorded deliveries (the dispatcher's wake-up). */
  onEmitted: () => void = () => undefined;

  constructor(
    private readonly store: WebhookStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: WebhookOptions = {},
  ) {
    this.opts = webhookOptions(opts);
  }

  get options(): ResolvedWebhookOptions {
    return this.opts;
  }

  /** list returns the user's webhooks, newest first, each with its latest delivery. */
  async list(userId: string): Promise<Array<{ webhook: Webhook; lastDelivery: Delivery | null }>> {
    const hooks = await this.store.listByUser(userId);
    return Promise.all(hooks.map(async (w) => ({ webhook: w, lastDelivery: (await this.store.lastDelivery(w.id)) ?? null })));
  }

  /** get returns one of the user's webhooks (404 WEBHOOK_NOT_FOUND otherwise). */
  async get(userId: string, id: string): Promise<Webhook> {
    const w = await this.store.get(id);
    if (!w || w.userId !== userId) throw new NotFoundError('WEBHOOK_NOT_FOUND', `webhook ${id} not found`);
    return w;
  }

  /** create validates and stores a webhook; the answer carries its secret (shown only here). */
  async create(userId: string, input: WebhookInput): Promise<{ webhook: Webhook; secret: string }> {
    const url = parseWebhookUrl(input.url);
    const events = validateEvents(input.events);
    if (input.secret !== undefined && !SECRET_RE.test(input.secret)) {
      throw new ValidationError('INVALID_WEBHOOK_SECRET', 'secret must be 16 to 256 printable ASCII characters without spaces');
    }
    if ((await this.store.listByUser(userId)).length >= this.opts.maxPerUser) throw this.limitError();
    if (!this.opts.allowPrivate) await checkPublicHost(url, this.opts.resolve);
    const secret = input.secret ?? `whsec_${randomBytes(32).toString('base64url')}`;
    const webhook: Webhook = { id: newId('whk'), userId, url: url.href, events, secret, createdAt: this.clock.now() };
    // Counted again with the insert: parallel creations cannot pass the cap together.
    if (!(await this.store.insertCapped(webhook, this.opts.maxPerUser))) throw this.limitError();
    return { webhook, secret };
  }

  private limitError(): ValidationError {
    return new ValidationError('WEBHOOK_LIMIT', `a user may have at most ${this.opts.maxPerUser} webhooks; delete one first`, {
      max: this.opts.maxPerUser,
    });
  }

  /** delete removes one of the user's webhooks and its delivery log; its pending deliveries are dropped. */
  async delete(userId: string, id: string): Promise<void> {
    await this.get(userId, id);
    await this.store.delete(id);
  }

  /**
   * deliveries returns one page of a webhook's delivery log, newest first,
   * and the cursor of the next page (null after the last).
   */
  async deliveries(
    userId: string,
    id: string,
    page: { cursor?: string; limit?: number } = {},
  ): Promise<{ deliveries: Delivery[]; cursor: string | null }> {
    await this.get(userId, id);
    const limit = page.limit ?? DELIVERY_PAGE.default;
    if (!Number.isInteger(limit) || limit < 1 || limit > DELIVERY_PAGE.max)
      throw new ValidationError('INVALID_REQUEST', `limit must be an integer from 1 to ${DELIVERY_PAGE.max}`);
    let before: number | null = null;
    if (page.cursor !== undefined) {
      if (!/^[1-9][0-9]{0,15}$/.test(page.cursor)) throw new ValidationError('INVALID_CURSOR', 'cursor is not one this API gave out');
      before = Number(page.cursor);
    }
    const rows = await this.store.deliveries(id, limit + 1, before);
    const more = rows.length > limit;
    const shown = rows.slice(0, limit);
    return { deliveries: shown, cursor: more ? String(shown[shown.length - 1]!.seq) : null };
  }

  emit(event: WebhookEvent, deploymentId: string, data: Readonly<Record<string, unknown>>): void {
    const ev: EventRecord = { id: newId('evt'), event, deploymentId, deploymentName: null, createdAt: this.clock.now(), data };
    this.record(ev, null).catch((err: unknown) => {
      this.log.error({ err, event, deployment: deploymentId }, 'could not record webhook deliveries');
    });
  }

  /**
   * record records the deliveries of an event that happened elsewhere (a
   * node, `nodeId`), once per event id, and wakes the dispatcher when it
   * added any. Throws what the store throws (the node sends it again).
   */
  async record(ev: EventRecord, nodeId: string | null): Promise<RecordOutcome> {
    const r = await this.store.recordEvent(ev, nodeId, () => newId('dlv'));
    if (r.deliveries > 0) this.onEmitted();
    return r;
  }
}

/** validateEvents checks a webhook's events: at least one, each from WEBHOOK_EVENTS; duplicates are dropped. */
function validateEvents(events: readonly string[]): WebhookEvent[] {
  if (!Array.isArray(events) || events.length === 0)
    throw new ValidationError('INVALID_WEBHOOK_EVENT', `events must list at least one of ${WEBHOOK_EVENTS.join(', ')}`);
  const bad = events.find((e) => !isWebhookEvent(e));
  if (bad !== undefined)
    throw new ValidationError('INVALID_WEBHOOK_EVENT', `unknown event "${String(bad)}"; events are ${WEBHOOK_EVENTS.join(', ')}`);
  return [...new Set(events as WebhookEvent[])];
}
