/** sleep: resolves after its time, or at once when the signal aborts, and never rejects. */
import { describe, expect, it } from 'vitest';
import { sleep } from './sleep.js';

describe('sleep', () => {
  it('resolves after the time given', async () => {
    const t0 = performance.now();
    await sleep(30, new AbortController().signal);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('resolves as soon as the signal aborts, and at once when it already has', async () => {
    const ctl = new AbortController();
    const t0 = performance.now();
    const waiting = sleep(60_000, ctl.signal);
    setTimeout(() => ctl.abort(), 10);
    await waiting;
    expect(performance.now() - t0).toBeLessThan(5_000);
    await expect(sleep(60_000, ctl.signal)).resolves.toBeUndefined();
  });
});
