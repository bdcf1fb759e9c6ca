/**
 * Wakes are hints: a NOTIFY that cannot be sent does not fail the write it
 * follows, and local waiters are woken all the same.
 */
import { describe, expect, it } from 'vitest';
import { pgWakeup, waitUntil } from './wake.js';

describe('pgWakeup', () => {
  it('wakes local waiters and resolves when NOTIFY cannot be sent', async () => {
    // Nothing listens on port 1: the LISTEN client keeps failing and retrying, as while PostgreSQL is down.
    const wake = pgWakeup({
      connectionString: 'postgres://kova@127.0.0.1:1/kova',
      connectTimeoutMs: 500,
      reconnectMaxMs: 100,
      send: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    });
    try {
      let ready = false;
      const t0 = Date.now();
      const waited = waitUntil(wake, 'ops', 'node-a', { timeoutMs: 10_000, pollMs: 60_000 }, () =>
        Promise.resolve(ready ? 'woken' : undefined),
      );
      await new Promise((r) => setTimeout(r, 20));
      ready = true;
      await expect(wake.notify('ops', 'node-a')).resolves.toBeUndefined();
      expect(await waited).toBe('woken');
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      await wake.close();
    }
  });
});
