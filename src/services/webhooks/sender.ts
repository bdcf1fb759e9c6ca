/**
 * sender: one webhook delivery attempt, and the rules for retrying.
 *
 * A delivery is a POST of a JSON body to the hook's URL with
 *   X-Kova-Event: <event name>
 *   X-Kova-Delivery: <delivery id> (the same on every retry, for dedup)
 *   X-Kova-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>
 * signed with the hook's secret. A 2xx answer is success; anything else,
 * a timeout or a connection error is a failure to retry after a backoff
 * (retryDelayMs), up to MAX_ATTEMPTS. Redirects are not followed: a hook
 * that moved must be updated by its owner.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Attempts per delivery, the first included. */
export const MAX_ATTEMPTS = 8;
/** How long one attempt may take. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** The part of a receiver's answer kept in the delivery log. */
const RESPONSE_EXCERPT = 512;

/** sign returns the X-Kova-Signature value for `body`. */
export function sign(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** verifySignature checks a signature header in constant time, as a receiver would. */
export function verifySignature(secret: string, body: string | Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(sign(secret, body));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

/**
 * retryDelayMs is the wait before attempt `attempt` (2 for the first
 * retry): 30 s, doubling up to 1 h, with up to 10% jitter from `random`
 * (a number in [0, 1)) so many failed hooks don't retry in step. Null
 * when no attempt is left.
 */
export function retryDelayMs(attempt: number, random: number): number | null {
  if (attempt < 2 || attempt > MAX_ATTEMPTS) return null;
  const base = Math.min(30_000 * 2 ** (attempt - 2), 3_600_000);
  return Math.round(base * (1 + 0.1 * random));
}

export interface Attempt {
  readonly ok: boolean;
  /** The HTTP status, null when no answer came. */
  readonly status: number | null;
  /** A short reason for a failure, or the start of the receiver's answer. */
  readonly detail: string;
  readonly durationMs: number;
}

export interface DeliveryRequest {
  readonly url: string;
  readonly secret: string;
  readonly event: string;
  readonly deliveryId: string;
  readonly body: string;
  readonly timeoutMs?: number;
}

/** deliver makes one attempt. It never throws: every outcome is an Attempt. */
export async function deliver(req: DeliveryRequest, now: () => number = Date.now): Promise<Attempt> {
  const started = now();
  try {
    const res = await fetch(req.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(req.timeoutMs ?? ATTEMPT_TIMEOUT_MS),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'kova-webhooks/1',
        'x-kova-event': req.event,
        'x-kova-delivery': req.deliveryId,
        'x-kova-signature': sign(req.secret, req.body),
      },
      body: req.body,
    });
    const text = (await res.text().catch(() => '')).slice(0, RESPONSE_EXCERPT);
    const ok = res.status >= 200 && res.status < 300;
    return { ok, status: res.status, detail: ok ? text : `HTTP ${res.status}${text ? `: ${text}` : ''}`, durationMs: now() - started };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const reason = e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? e.message);
    return { ok: false, status: null, detail: reason, durationMs: now() - started };
  }
}
