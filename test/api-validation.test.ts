/**
 * Input bounds through the API on a real service (process runtime, temp
 * data dir, app.inject()): automatic-snapshot intervals are bounded and a
 * stored value from an older version never breaks a read; user text
 * (labels, names) is one well-formed, printable kind of text everywhere.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { ISO_UTC, createDeployment, expectError, expectOk } from './helpers/api.js';
import { type Harness, startHarness } from './helpers/harness.js';

const DAY = 86_400_000;

let h: Harness;
let clock: ManualClock;

beforeAll(async () => {
  clock = new ManualClock(Date.UTC(2026, 1, 10, 9, 15));
  h = await startHarness({ clock });
});
afterEach(async () => {
  await h.idle();
});
afterAll(async () => {
  await h?.close();
});

const base = (depId: string) => `/api/v1/deployments/${depId}`;

describe('snapshot interval bounds', () => {
  it('accepts exactly 365d', async () => {
    const dep = await createDeployment(h);
    const s = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true, interval: '365d' })).settings;
    expect(s.interval).toBe('365d');
    expect(Date.parse(s.nextRunAt)).toBeGreaterThanOrEqual(clock.now() + 365 * DAY);
  });

  it.each(['366d', '8761h', '525601m', '9999999d', '999999999d', '999999999s'])('refuses %s with INVALID_INTERVAL and keeps the settings', async (interval) => {
    const dep = await createDeployment(h);
    const before = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true, interval: '6h' })).settings;
    const err = expectError(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true, interval }), 400, 'INVALID_INTERVAL');
    expect(err.message).toMatch(/at most 365d|interval must be/);
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings).toEqual(before);
  });

  it('answers a GET with 200 when an older version stored an interval past the bound', async () => {
    const dep = await createDeployment(h);
    expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true }));
    // What earlier versions accepted and stored for {"enabled": true, "interval": "9999999d"}.
    const ms = 9_999_999 * DAY;
    h.store.db
      .prepare('UPDATE snapshot_settings SET interval_ms = ?, interval_text = ?, next_run_at = ? WHERE deployment_id = ?')
      .run(ms, '9999999d', clock.now() + ms, dep);
    const s = expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings;
    expect(s).toMatchObject({ enabled: true, interval: '365d' });
    expect(s.nextRunAt).toMatch(ISO_UTC);
    expect(Date.parse(s.nextRunAt)).toBeLessThanOrEqual(clock.now() + 365 * DAY + 60_000);
    // The scheduler tick copes with it too, and afterwards the settings can be changed as usual.
    expect(() => h.services.settings.tick()).not.toThrow();
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.nextRunAt).toMatch(ISO_UTC);
    const fixed = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { interval: '7d' })).settings;
    expect(fixed).toMatchObject({ enabled: true, interval: '7d' });
  });

  it('answers a GET with 200 for a due time beyond any date and an interval text that does not parse', async () => {
    const dep = await createDeployment(h);
    expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true }));
    h.store.db
      .prepare('UPDATE snapshot_settings SET interval_ms = ?, interval_text = ?, next_run_at = ? WHERE deployment_id = ?')
      .run(999_999_999 * DAY, '999999999d', 9e18, dep);
    const s = expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings;
    expect(s).toMatchObject({ enabled: true, interval: '365d' });
    expect(s.nextRunAt).toMatch(ISO_UTC);
  });
});
