/**
 * Calendar retention, checked against a reference written the other way
 * round (group every snapshot by its period first, then take the newest of
 * the newest periods) over generated histories, and on hand-made cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type RetentionCandidate,
  type RetentionPolicy,
  describeRetention,
  periodKey,
  planRetention,
  retentionPolicy,
} from './retention.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 1); // a Thursday

/** The reference names periods as strings, computed with Date only. */
function refPeriod(tier: 'hourly' | 'daily' | 'weekly' | 'monthly', t: number): string {
  const d = new Date(t);
  const ymd = d.toISOString().slice(0, 10);
  switch (tier) {
    case 'hourly':
      return d.toISOString().slice(0, 13);
    case 'daily':
      return ymd;
    case 'weekly': {
      const monday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7)));
      return monday.toISOString().slice(0, 10);
    }
    case 'monthly':
      return d.toISOString().slice(0, 7);
  }
}

function reference(snaps: readonly RetentionCandidate[], p: RetentionPolicy): Set<string> {
  const ready = snaps.filter((s) => s.automatic && s.status === 'ready');
  const newer = (a: RetentionCandidate, b: RetentionCandidate): number =>
    b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  const kept = new Set<string>();
  [...ready]
    .sort(newer)
    .slice(0, p.last)
    .forEach((s) => kept.add(s.id));
  for (const tier of ['hourly', 'daily', 'weekly', 'monthly'] as const) {
    const groups = new Map<string, RetentionCandidate[]>();
    for (const s of ready) {
      const k = refPeriod(tier, s.createdAt);
      groups.set(k, [...(groups.get(k) ?? []), s]);
    }
    const newestOfEach = [...groups.values()].map((g) => [...g].sort(newer)[0]!).sort(newer);
    newestOfEach.slice(0, p[tier] ?? 0).forEach((s) => kept.add(s.id));
  }
  return kept;
}

const snapshotArb = fc.record({
  offset: fc.integer({ min: 0, max: 800 * DAY }),
  automatic: fc.boolean(),
  status: fc.constantFrom('ready', 'ready', 'ready', 'failed', 'creating'),
});
const historyArb = fc
  .array(snapshotArb, { maxLength: 120 })
  .map((xs) =>
    xs.map((x, i) => ({ id: `snap-${String(i).padStart(4, '0')}`, automatic: x.automatic, status: x.status, createdAt: T0 + x.offset })),
  );
// Dense histories put many snapshots in the same hour and day.
const denseHistoryArb = fc
  .array(fc.integer({ min: 0, max: 3 * DAY }), { maxLength: 200 })
  .map((xs) => xs.map((o, i) => ({ id: `snap-${String(i).padStart(4, '0')}`, automatic: true, status: 'ready', createdAt: T0 + o })));
const tierArb = fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined });
const policyArb = fc.record({ last: fc.integer({ min: 1, max: 20 }), hourly: tierArb, daily: tierArb, weekly: tierArb, monthly: tierArb });

describe('planRetention', () => {
  it('keeps exactly what the reference keeps, for any history and policy', () => {
    fc.assert(
      fc.property(fc.oneof(historyArb, denseHistoryArb), policyArb, (snaps, policy) => {
        const plan = planRetention(snaps, policy);
        expect(new Set(plan.keep.map((k) => k.snapshot.id))).toEqual(reference(snaps, policy));
      }),
      { numRuns: 400 },
    );
  });

  it('never prunes a manual, failed or unfinished snapshot, and splits the ready automatic ones in two', () => {
    fc.assert(
      fc.property(historyArb, policyArb, (snaps, policy) => {
        const plan = planRetention(snaps, policy);
        for (const s of plan.prune) expect(s.automatic && s.status === 'ready').toBe(true);
        const readyAuto = snaps.filter((s) => s.automatic && s.status === 'ready').map((s) => s.id);
        const both = [...plan.keep.map((k) => k.snapshot.id), ...plan.prune.map((s) => s.id)];
        expect(both.sort()).toEqual(readyAuto.sort());
      }),
    );
  });

  it('does not depend on the order of its input', () => {
    fc.assert(
      fc.property(historyArb, policyArb, fc.integer(), (snaps, policy, seed) => {
        const shuffled = [...snaps].sort((a, b) => ((a.createdAt * 31 + seed) % 97) - ((b.createdAt * 31 + seed) % 97));
        const ids = (p: ReturnType<typeof planRetention>): string[] => p.prune.map((s) => s.id);
        expect(ids(planRetention(shuffled, policy))).toEqual(ids(planRetention(snaps, policy)));
      }),
    );
  });

  it('with only `last` set, behaves as the plain count: the newest N stay', () => {
    const snaps = Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, automatic: true, status: 'ready', createdAt: T0 + i * HOUR }));
    const plan = planRetention(snaps, { last: 3 });
    expect(plan.keep.map((k) => k.snapshot.id)).toEqual(['s9', 's8', 's7']);
    expect(plan.prune.map((s) => s.id)).toEqual(['s6', 's5', 's4', 's3', 's2', 's1', 's0']);
  });

  it('keeps the newest snapshot of each of the last days that had one, skipping empty days', () => {
    // Hourly snapshots for days 0, 1 and 3 (day 2 missing), at 06:00 and 18:00.
    const snaps = [0, 1, 3].flatMap((d) =>
      [6, 18].map((h) => ({ id: `d${d}h${h}`, automatic: true, status: 'ready', createdAt: T0 + d * DAY + h * HOUR })),
    );
    const plan = planRetention(snaps, { last: 1, daily: 3 });
    expect(plan.keep.map((k) => [k.snapshot.id, k.reasons])).toEqual([
      ['d3h18', ['last', 'daily']],
      ['d1h18', ['daily']],
      ['d0h18', ['daily']],
    ]);
  });

  it('uses ISO weeks (Monday to Sunday, UTC) and calendar months', () => {
    // 2026-01-04 is a Sunday, 2026-01-05 a Monday.
    const sunday = Date.UTC(2026, 0, 4, 23, 59);
    const monday = Date.UTC(2026, 0, 5, 0, 1);
    expect(periodKey('weekly', sunday)).not.toBe(periodKey('weekly', monday));
    expect(periodKey('weekly', monday)).toBe(periodKey('weekly', Date.UTC(2026, 0, 11, 23, 59)));
    expect(periodKey('monthly', Date.UTC(2026, 0, 31, 23, 59))).not.toBe(periodKey('monthly', Date.UTC(2026, 1, 1)));
    expect(periodKey('monthly', Date.UTC(2025, 11, 31))).toBe(periodKey('monthly', Date.UTC(2025, 11, 1)));
    // Before 1970 too: weeks still start on Mondays.
    expect(periodKey('weekly', Date.UTC(1969, 11, 29))).toBe(periodKey('weekly', Date.UTC(1970, 0, 4, 12)));
  });
});

describe('describeRetention', () => {
  it('says what is kept in plain words', () => {
    expect(describeRetention({ last: 7 })).toBe(
      'Keeps the 7 most recent automatic snapshots; older automatic snapshots are deleted. Manual snapshots are never deleted.',
    );
    expect(describeRetention({ last: 1, hourly: 0, daily: 7, weekly: 4, monthly: 1 })).toBe(
      'Keeps the most recent automatic snapshot, and the newest of each of the last 7 days, the newest of each of the last 4 weeks and the newest of the last month (UTC) that had one; older automatic snapshots are deleted. Manual snapshots are never deleted.',
    );
  });
});

describe('retentionPolicy', () => {
  it('takes retention as `last` and unset (null) tiers as absent', () => {
    const p = retentionPolicy({ retention: 3, keepHourly: null, keepDaily: 7, keepWeekly: 0, keepMonthly: null });
    expect(p).toEqual({ last: 3, hourly: undefined, daily: 7, weekly: 0, monthly: undefined });
    expect(describeRetention(p)).toBe(describeRetention({ last: 3, daily: 7 }));
  });
});
