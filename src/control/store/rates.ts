/**
 * rates: shared rate-limit counters in fixed windows, one row per (key,
 * window start), so every replica counts into the same row. The increment is
 * one INSERT … ON CONFLICT … DO UPDATE … RETURNING: atomic on both dialects,
 * no read-modify-write. Expired windows are pruned at most once a minute.
 */
import type { Catalogue } from '../catalogue.js';
import { DEFAULTS, type Conn } from './connection.js';

export function rates({ db }: Conn): Pick<Catalogue, 'hit'> {
  let lastPrune = -Infinity;
  return {
    async hit(key, windowMs, now) {
      const windowStart = Math.floor(now / windowMs) * windowMs;
      const expiresAt = windowStart + windowMs;
      const r = await db
        .insertInto('rate_counters')
        .values({ key, window_start: windowStart, count: 1, expires_at: expiresAt })
        .onConflict((oc) => oc.columns(['key', 'window_start']).doUpdateSet((eb) => ({ count: eb('rate_counters.count', '+', 1) })))
        .returning('count')
        .executeTakeFirstOrThrow();
      if (now - lastPrune >= DEFAULTS.pruneEveryMs) {
        lastPrune = now;
        await db.deleteFrom('rate_counters').where('expires_at', '<=', now).execute();
      }
      return { count: Number(r.count), ttlMs: expiresAt - now };
    },
  };
}
