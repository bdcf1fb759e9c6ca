/**
 * rate-limit: the API's limits, counted by @fastify/rate-limit in fixed
 * windows of a minute:
 *
 * - requests: each API key, and each user across all their keys;
 * - sign-in attempts that need a scrypt check (a key not verified in the
 *   last minute, or a wrong secret): each key prefix, and each client
 *   address. They are counted before the hash is computed, so a burst of
 *   guesses costs at most the limit in scrypts, and a prefix that exists
 *   costs the same as one that does not.
 *
 * Over a limit, the answer is 429 RATE_LIMITED with Retry-After (seconds to
 * the end of the window). Counts live in a store: ClockStore keeps them in
 * this process on the injected clock; the control plane's store
 * (src/control/rate-limit-store.ts) shares them between its replicas through
 * its database. Each limit's keys carry its own namespace (`key:`, `user:`,
 * `signin-prefix:`, `signin-address:`), so one shared store holds them all.
 */
import rateLimit, { type FastifyRateLimitOptions, type FastifyRateLimitStore } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import type { Limits } from './deps.js';
import { errorBody } from './errors.js';

const WINDOW_MS = 60_000;
/** Most keys a ClockStore remembers; the oldest window is dropped beyond it. */
const STORE_KEYS = 10_000;

/**
 * clockStore returns a @fastify/rate-limit store class counting fixed
 * windows in memory on `clock`. Each limiter gets its own child store.
 */
export function clockStore(clock: Clock): new (options: FastifyRateLimitOptions) => FastifyRateLimitStore {
  return class ClockStore implements FastifyRateLimitStore {
    private readonly windows = new Map<string, { start: number; count: number }>();

    incr(key: string, cb: (err: Error | null, res?: { current: number; ttl: number }) => void, timeWindow: number): void {
      const now = clock.now();
      let w = this.windows.get(key);
      if (!w || now - w.start >= timeWindow) {
        this.windows.delete(key);
        w = { start: now, count: 0 };
        this.windows.set(key, w);
        if (this.windows.size > STORE_KEYS) this.windows.delete(this.windows.keys().next().value as string);
      }
      w.count++;
      cb(null, { current: w.count, ttl: w.start + timeWindow - now });
    }

    child(): FastifyRateLimitStore {
      return new ClockStore();
    }
  };
}

type Check = (req: FastifyRequest) => Promise<{ isAllowed: true } | { isAllowed: false; isExceeded: boolean; ttlInSeconds: number }>;

export interface ApiLimiter {
  /** request counts one request of an authenticated caller; returns the seconds to wait, 0 when allowed. */
  request(req: FastifyRequest, keyPrefix: string, userId: string): Promise<number>;
  /** signIn counts one scrypt check for `prefix` from this client; returns the seconds to wait, 0 when allowed. */
  signIn(req: FastifyRequest, prefix: string): Promise<number>;
}

/** The store class a limiter counts in (clockStore, or a shared one). */
export type RateLimitStoreClass = new (options: FastifyRateLimitOptions) => FastifyRateLimitStore;

/** apiLimiter registers @fastify/rate-limit on `app` (no route limited by itself) and returns the API's limiters. */
export async function apiLimiter(app: FastifyInstance, store: RateLimitStoreClass, limits: Limits): Promise<ApiLimiter> {
  await app.register(rateLimit, { global: false, store, timeWindow: WINDOW_MS });
  const make = (max: number, key: (req: FastifyRequest) => string): Check =>
    app.createRateLimit({ max, timeWindow: WINDOW_MS, keyGenerator: key }) as unknown as Check;
  // Which key or user a request is counted for, set just before each check.
  const subject = new WeakMap<FastifyRequest, string>();
  const of = (ns: string) => (req: FastifyRequest) => `${ns}:${subject.get(req) ?? ''}`;
  const perKey = make(limits.perKey, of('key'));
  const perUser = make(limits.perUser, of('user'));
  const perPrefix = make(limits.signInsPerPrefix, of('signin-prefix'));
  const perAddress = make(limits.signInsPerAddress, (req) => `signin-address:${req.ip}`);
  // Counts against each limit in turn; stops at the first one exceeded.
  const wait = async (req: FastifyRequest, checks: Array<[Check, string]>): Promise<number> => {
    for (const [check, id] of checks) {
      subject.set(req, id);
      const r = await check(req);
      if (!r.isAllowed && r.isExceeded) return Math.max(1, r.ttlInSeconds);
    }
    return 0;
  };
  return {
    request: (req, keyPrefix, userId) =>
      wait(req, [
        [perKey, keyPrefix],
        [perUser, userId],
      ]),
    signIn: (req, prefix) =>
      wait(req, [
        [perPrefix, prefix],
        [perAddress, ''],
      ]),
  };
}

/** tooMany answers 429 RATE_LIMITED with Retry-After. */
export function tooMany(reply: FastifyReply, seconds: number, what: string): FastifyReply {
  return reply
    .status(429)
    .header('retry-after', String(seconds))
    .send(errorBody('RATE_LIMITED', `too many ${what}; retry in ${seconds} s`));
}
