/**
 * Calendar retention (docs/api.md, "Automatic snapshots" and "Retention
 * preview"): the keepHourly… settings, their validation, the preview, and
 * the retention step after an automatic snapshot. Automatic snapshots are
 * taken at chosen times with a ManualClock and SettingsService.tick().
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { describeRetention } from '../src/scheduler/retention.js';
import { type SnapshotView, createDeployment, expectError, expectOk, listSnapshots, raw, takeSnapshot } from './helpers/api.js';
import { type Harness, startHarness } from './helpers/harness.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let h: Harness;
let clock: ManualClock;

beforeAll(async () => {
  clock = new ManualClock(Date.UTC(2026, 0, 5, 8, 0, 0));
  h = await startHarness({ clock, minSnapshotIntervalMs: 1000 });
});
afterEach(async () => {
  // Close what the test left, so its schedule does not run in the next test's ticks.
  await h.idle();
  const open = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.filter((d: { status: string }) => d.status === 'active');
  for (const d of open) expectOk(await h.api('POST', `/api/v1/deployments/${d.id}/close`));
  await h.idle();
});
afterAll(async () => {
  await h?.close();
});

const settingsUrl = (dep: string) => `/api/v1/deployments/${dep}/snapshot-settings`;
const previewUrl = (dep: string) => `${settingsUrl(dep)}/preview`;

/** autoAt takes one automatic snapshot at `t` (the schedule is 1 s, so it is due) and returns its id. */
async function autoAt(dep: string, t: number): Promise<string> {
  clock.set(t);
  expect(h.services.settings.tick()).toBe(1);
  await h.idle();
  const [newest] = (await listSnapshots(h, dep)).filter((s) => s.automatic);
  expect(newest!.status).toBe('ready');
  expect(Date.parse(newest!.createdAt)).toBe(t);
  return newest!.id;
}

/** nextDay is 00:00 UTC of the day after the clock's. */
const nextDay = () => (Math.floor(clock.now() / DAY) + 1) * DAY;

describe('settings', () => {
  it('are not set by default, and the view describes the policy', async () => {
    const dep = await createDeployment(h);
    const s = expectOk(await h.api('GET', settingsUrl(dep))).settings;
    expect(s).toMatchObject({ retention: 7, keepHourly: null, keepDaily: null, keepWeekly: null, keepMonthly: null });
    expect(s.retentionDescription).toBe(describeRetention({ last: 7 }));
  });

  it('persist the tiers, show them with their description, and unset them with null', async () => {
    const dep = await createDeployment(h);
    const s = expectOk(await h.api('PUT', settingsUrl(dep), { retention: 3, keepDaily: 7, keepMonthly: 12 })).settings;
    expect(s).toMatchObject({ retention: 3, keepHourly: null, keepDaily: 7, keepWeekly: null, keepMonthly: 12 });
    expect(s.retentionDescription).toBe(
      'Keeps the 3 most recent automatic snapshots, and the newest of each of the last 7 days and the newest of each of the last 12 months (UTC) that had one; older automatic snapshots are deleted. Manual snapshots are never deleted.',
    );
    expect(h.store.settings.get(dep)).toMatchObject({ keepHourly: null, keepDaily: 7, keepWeekly: null, keepMonthly: 12 });
    expect(expectOk(await h.api('GET', settingsUrl(dep))).settings).toEqual(s);

    // Absent leaves a tier as it is; null unsets it; 0 and 1000 are allowed.
    const t = expectOk(await h.api('PUT', settingsUrl(dep), { keepHourly: 0, keepWeekly: 1000, keepMonthly: null })).settings;
    expect(t).toMatchObject({ retention: 3, keepHourly: 0, keepDaily: 7, keepWeekly: 1000, keepMonthly: null });
    expect(t.retentionDescription).toBe(describeRetention({ last: 3, hourly: 0, daily: 7, weekly: 1000 }));
    expect(expectOk(await h.api('GET', settingsUrl(dep))).settings).toEqual(t);
  });

  it.each([
    ['keepHourly', -1],
    ['keepDaily', 1001],
    ['keepWeekly', 1.5],
    ['keepMonthly', '3'],
    ['keepDaily', true],
  ])('rejects %s = %j with INVALID_RETENTION naming the field, for PUT and preview, changing nothing', async (field, value) => {
    const dep = await createDeployment(h);
    const before = expectOk(await h.api('PUT', settingsUrl(dep), { keepDaily: 2 })).settings;
    const err = expectError(await h.api('PUT', settingsUrl(dep), { [field]: value }), 400, 'INVALID_RETENTION');
    expect(err.message).toBe(`${field} must be an integer from 0 to 1000, or null for none`);
    const perr = expectError(await h.api('POST', previewUrl(dep), { [field]: value }), 400, 'INVALID_RETENTION');
    expect(perr.message).toContain(field);
    expect(expectOk(await h.api('GET', settingsUrl(dep))).settings).toEqual(before);
  });

  it('rejects a bad retention in a preview as PUT does', async () => {
    const dep = await createDeployment(h);
    expectError(await h.api('POST', previewUrl(dep), { retention: 0 }), 400, 'INVALID_RETENTION');
    expectError(await h.api('POST', previewUrl(dep), { interval: '5' }), 400, 'INVALID_INTERVAL');
  });
});

describe('preview and the retention step', () => {
  it('previews, changing nothing, exactly what the next automatic snapshot prunes; manual snapshots stay', async () => {
    const dep = await createDeployment(h);
    expectOk(await h.api('PUT', settingsUrl(dep), { enabled: true, interval: '1s', retention: 100 }));
    const d0 = nextDay();
    const at = (day: number, hour: number) => d0 + day * DAY + hour * HOUR;
    const ids: Record<string, string> = {};
    ids.d0h08 = await autoAt(dep, at(0, 8));
    ids.d0h20 = await autoAt(dep, at(0, 20));
    ids.d1h08 = await autoAt(dep, at(1, 8));
    clock.set(at(1, 10));
    const manual = (await takeSnapshot(h, dep, 'by hand')).id;
    ids.d1h20 = await autoAt(dep, at(1, 20));
    ids.d2h08 = await autoAt(dep, at(2, 8));
    ids.d3h08 = await autoAt(dep, at(3, 8));
    ids.d4h08 = await autoAt(dep, at(4, 8));

    const before = await listSnapshots(h, dep);
    const settingsBefore = expectOk(await h.api('GET', settingsUrl(dep))).settings;
    const body = { retention: 2, keepDaily: 3 };
    const preview = expectOk(await h.api('POST', previewUrl(dep), body));
    expect(Object.keys(preview).sort()).toEqual(['description', 'keep', 'prune', 'success']);
    expect(preview.description).toBe(describeRetention({ last: 2, daily: 3 }));
    expect(preview.keep).toEqual([
      { id: ids.d4h08, createdAt: new Date(at(4, 8)).toISOString(), reasons: ['last', 'daily'] },
      { id: ids.d3h08, createdAt: new Date(at(3, 8)).toISOString(), reasons: ['last', 'daily'] },
      { id: ids.d2h08, createdAt: new Date(at(2, 8)).toISOString(), reasons: ['daily'] },
    ]);
    expect(preview.prune).toEqual(
      ['d1h20', 'd1h08', 'd0h20', 'd0h08'].map((k) => ({ id: ids[k], createdAt: expect.any(String) as unknown as string })),
    );
    expect(preview.prune.map((p: { id: string }) => p.id)).not.toContain(manual);
    // The preview changed nothing.
    expect(await listSnapshots(h, dep)).toEqual(before);
    expect(expectOk(await h.api('GET', settingsUrl(dep))).settings).toEqual(settingsBefore);

    // Save, and let the next automatic snapshot (same UTC day as the newest) apply the policy.
    expectOk(await h.api('PUT', settingsUrl(dep), body));
    const next = await autoAt(dep, at(4, 9));
    const after = await listSnapshots(h, dep);
    const gone = before.filter((s) => !after.some((a) => a.id === s.id)).map((s) => s.id);
    expect(gone.sort()).toEqual(preview.prune.map((p: { id: string }) => p.id).sort());
    expect(after.map((s: SnapshotView) => s.id)).toEqual([next, ids.d4h08, ids.d3h08, ids.d2h08, manual]);
    expect(after.find((s) => s.id === manual)).toMatchObject({ automatic: false, status: 'ready' });
  });

  it('keeps the newest of each hour beyond the most recent, and never prunes manual snapshots', async () => {
    const dep = await createDeployment(h);
    expectOk(await h.api('PUT', settingsUrl(dep), { enabled: true, interval: '1s', retention: 1, keepHourly: 2 }));
    const t0 = nextDay();
    const a = await autoAt(dep, t0 + 10 * 60_000);
    const b = await autoAt(dep, t0 + 50 * 60_000);
    clock.set(t0 + 55 * 60_000);
    const manual = (await takeSnapshot(h, dep, null)).id;
    const c = await autoAt(dep, t0 + HOUR + 5 * 60_000);
    // c: last and hour 1; b: newest of hour 0; a: pruned.
    expect((await listSnapshots(h, dep)).map((s) => s.id)).toEqual([c, manual, b]);
    expect(a).not.toBe(b);
    // A preview with retention 1 and no tiers prunes only automatic ones.
    const p = expectOk(await h.api('POST', previewUrl(dep), { keepHourly: null }));
    expect(p.prune.map((x: { id: string }) => x.id)).toEqual([b]);
    expect(p.keep.map((x: { id: string }) => x.id)).toEqual([c]);
  });

  it('previews the stored settings for an empty body', async () => {
    const dep = await createDeployment(h);
    expectOk(await h.api('PUT', settingsUrl(dep), { retention: 4, keepWeekly: 2 }));
    const p = expectOk(await h.api('POST', previewUrl(dep), {}));
    expect(p).toEqual({ success: true, description: describeRetention({ last: 4, weekly: 2 }), keep: [], prune: [] });
  });

  it('answers 404 for a deployment that does not exist, and is in the OpenAPI document', async () => {
    expectError(await h.api('POST', previewUrl('dep-doesnotexist'), {}), 404, 'DEPLOYMENT_NOT_FOUND');
    const doc = (await raw(h, 'GET', '/api/v1/openapi.json', { token: null })).body;
    const op = doc.paths['/api/v1/deployments/{id}/snapshot-settings/preview'].post;
    expect(JSON.stringify(op.requestBody)).toContain('keepMonthly');
    expect(JSON.stringify(op.responses['200'])).toContain('"prune"');
    const get = JSON.stringify(doc.paths['/api/v1/deployments/{id}/snapshot-settings'].get.responses['200']);
    expect(get).toContain('"retentionDescription"');
  });
});
