/**
 * rate-limit-store: a @fastify/rate-limit store whose counts live in the
 * catalogue (Catalogue.hit, fixed windows), so every replica of a control
 * plane counts the same requests against one limit. The all-in-one keeps
 * its in-process ClockStore (src/api/rate-limit.ts).
 *
 * Keys are shared between the limiters of one app: apiLimiter namespaces
 * them (`key:…`, `user:…`), so children share one keyspace.
 */
import type { FastifyRateLimitOptions, FastifyRateLimitStore } from '@fastify/rate-limit';
import type { RateLimitStoreClass } from '../api/rate-limit.js';
import type { Clock } from '../core/clock.js';
import type { Catalogue } from './catalogue.js';

export function catalogueStore(catalogue: Catalogue, clock: Clock): RateLimitStoreClass {
  return class CatalogueStore implements FastifyRateLimitStore {
    // The plugin passes its options; the window comes with each incr.
    constructor(_options?: FastifyRateLimitOptions) {}

    incr(key: string, cb: (err: Error | null, res?: { current: number; ttl: number }) => void, timeWindow: number): void {
      catalogue.hit(`rl:${key}`, timeWindow, clock.now()).then(
        (r) => cb(null, { current: r.count, ttl: r.ttlMs }),
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
      );
    }

    child(): FastifyRateLimitStore {
      return new CatalogueStore();
    }
  };
}
