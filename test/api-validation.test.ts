/**
 * Input bounds through the API on a real service (process runtime, temp
 * data dir, app.inject()): automatic-snapshot intervals are bounded and a
 * stored value from an older version never breaks a read; user text
 * (labels, names) is one well-formed, printable kind of text everywhere.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { IDLE_SCRIPT, ISO_UTC, createDeployment, expectError, expectOk, takeSnapshot } from './helpers/api.js';
import { type Harness, sdlFor, startHarness } from './helpers/harness.js';

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

  it.each(['366d', '8761h', '525601m', '9999999d', '999999999d', '999999999s'])(
    'refuses %s with INVALID_INTERVAL and keeps the settings',
    async (interval) => {
      const dep = await createDeployment(h);
      const before = expectOk(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true, interval: '6h' })).settings;
      const err = expectError(await h.api('PUT', `${base(dep)}/snapshot-settings`, { enabled: true, interval }), 400, 'INVALID_INTERVAL');
      expect(err.message).toMatch(/at most 365d|interval must be/);
      expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings).toEqual(before);
    },
  );

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

/** Text every user-text field must refuse, each with why. */
const BAD_TEXT: ReadonlyArray<readonly [string, string]> = [
  ['64 lone surrogates', '\ud800'.repeat(64)],
  ['a lone low surrogate', 'ok\udc00'],
  ['NUL', 'a\u0000b'],
  ['ESC (a terminal escape sequence)', 'x\u001b[31mred'],
  ['a newline', 'two\nlines'],
  ['DEL', 'a\u007f'],
  ['C1 NEL', 'a\u0085b'],
  ['C1 CSI', 'a\u009b31m'],
  ['a right-to-left override', 'txt.\u202Eexe'],
  ['a left-to-right embedding', '\u202Aabc'],
  ['a first-strong isolate', 'a\u2068b\u2069'],
  ['a right-to-left mark', 'a\u200Fb'],
  ['a zero-width space', 'ad\u200Bmin'],
  ['a byte order mark', '\uFEFFname'],
  ['a line separator', 'a\u2028b'],
  ['a tag character', 'a\u{E0041}'],
  ['a noncharacter', 'a\uFFFF'],
];

/** Text every user-text field must keep as it is. */
const GOOD_TEXT: readonly string[] = [
  'before-migration',
  'Ünïcödé ✓ 日本語',
  'family 👨\u200D👩\u200D👧',
  'می\u200Cخواهم',
  '😀'.repeat(64),
];

describe('user text: one rule for labels and names', () => {
  let dep: string;
  beforeAll(async () => {
    dep = await createDeployment(h);
  });

  describe.each(BAD_TEXT)('refuses %s', (_what, text) => {
    it('in a snapshot label (INVALID_LABEL), and nothing is created', async () => {
      const before = expectOk(await h.api('GET', `${base(dep)}/snapshots`)).snapshots.length;
      const err = expectError(await h.api('POST', `${base(dep)}/snapshots`, { label: text }), 400, 'INVALID_LABEL');
      expect(err.message).toMatch(/U\+[0-9A-F]{4,5} at character \d+/);
      expect(expectOk(await h.api('GET', `${base(dep)}/snapshots`)).snapshots.length).toBe(before);
    });

    it('in an API-key label (INVALID_LABEL), and no key is created', async () => {
      const before = expectOk(await h.api('GET', '/api/v1/api-keys')).apiKeys.length;
      expectError(await h.api('POST', '/api/v1/api-keys', { label: text }), 400, 'INVALID_LABEL');
      expect(expectOk(await h.api('GET', '/api/v1/api-keys')).apiKeys.length).toBe(before);
    });

    it('in a deployment name (INVALID_NAME), and nothing is created', async () => {
      const before = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.length;
      expectError(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor(IDLE_SCRIPT), name: text }), 400, 'INVALID_NAME');
      expect(expectOk(await h.api('GET', '/api/v1/deployments')).deployments.length).toBe(before);
    });
  });

  it('refuses a name on clone the same way', async () => {
    const snap = await takeSnapshot(h, dep, 'for-clone');
    for (const [, text] of BAD_TEXT) {
      expectError(await h.api('POST', `${base(dep)}/snapshots/${snap.id}/clone`, { name: text }), 400, 'INVALID_NAME');
    }
  });

  it.each(GOOD_TEXT)('keeps %j as written in labels and names', async (text) => {
    const key = expectOk(await h.api('POST', '/api/v1/api-keys', { label: text }), 201).apiKey;
    expect(key.label).toBe(text);
    const d = expectOk(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor(IDLE_SCRIPT), name: text }), 201).deployment;
    expect(d.name).toBe(text);
    await h.idle();
    expect((await takeSnapshot(h, d.id, text)).label).toBe(text);
  });

  it('counts length in code points: 64 emoji pass (above), 65 do not', async () => {
    const text = '😀'.repeat(65);
    expectError(await h.api('POST', `${base(dep)}/snapshots`, { label: text }), 400, 'INVALID_LABEL');
    expectError(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor(IDLE_SCRIPT), name: text }), 400, 'INVALID_NAME');
  });

  it('stores text in NFC: a decomposed é comes back composed', async () => {
    const key = expectOk(await h.api('POST', '/api/v1/api-keys', { label: 'cafe\u0301' }), 201).apiKey;
    expect(key.label).toBe('caf\u00e9');
  });
});
