/**
 * The pure rules of automatic snapshots: jitter, due times and which
 * snapshots retention prunes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_INTERVAL_MS, type RetainedSnapshot, boundedSchedule, isDue, jitterMs, nextRunAfter, pruneVictims } from './policy.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const depId = fc.string({ minLength: 0, maxLength: 40 });
const interval = fc.integer({ min: 0, max: 400 * DAY });

describe('jitterMs', () => {
  it('is a whole number of milliseconds from 0 to under 5% of the interval', () => {
    fc.assert(
      fc.property(depId, interval, (id, ms) => {
        const j = jitterMs(id, ms);
        expect(Number.isInteger(j)).toBe(true);
        expect(j).toBeGreaterThanOrEqual(0);
        expect(j).toBeLessThanOrEqual(ms * 0.05);
      }),
    );
  });

  it('is at most a minute, however long the interval', () => {
    fc.assert(
      fc.property(depId, fc.integer({ min: 20 * MINUTE, max: 10_000 * DAY }), (id, ms) => {
        expect(jitterMs(id, ms)).toBeLessThanOrEqual(MINUTE);
      }),
    );
    for (let i = 0; i < 500; i++) expect(jitterMs(`dep-${i}`, 7 * DAY)).toBeLessThan(MINUTE);
  });

  it('is deterministic per deployment id', () => {
    fc.assert(
      fc.property(depId, interval, (id, ms) => {
        expect(jitterMs(id, ms)).toBe(jitterMs(id, ms));
        expect(jitterMs(`${id}`, ms)).toBe(jitterMs(id.slice(), ms));
      }),
    );
    expect(jitterMs('dep-abcdefghijkl', DAY)).toBe(jitterMs('dep-abcdefghijkl', DAY));
  });

  it('is zero when the interval is too short to spread', () => {
    for (const ms of [0, 1, 10, 19]) expect(jitterMs('dep-abcdefghijkl', ms)).toBe(0);
  });

  it('spreads different deployments over the window', () => {
    const ids = Array.from({ length: 200 }, (_, i) => `dep-${i.toString(36).padStart(12, 'a')}`);
    const day = ids.map((id) => jitterMs(id, DAY));
    // 200 deployments on a 24h interval land on many different offsets within the minute...
    expect(new Set(day).size).toBeGreaterThan(150);
    // ...covering both halves of it.
    expect(day.some((j) => j < 30 * SECOND)).toBe(true);
    expect(day.some((j) => j >= 30 * SECOND)).toBe(true);
    const spread = Math.max(...day) - Math.min(...day);
    expect(spread).toBeGreaterThan(50 * SECOND);
    // Short intervals spread too, within their 5%.
    const short = ids.map((id) => jitterMs(id, 10 * SECOND));
    expect(new Set(short).size).toBeGreaterThan(100);
    expect(Math.max(...short)).toBeLessThan(500);
  });

  it('gives ids that differ in one character different offsets', () => {
    const a = jitterMs('dep-aaaaaaaaaaaa', DAY);
    const b = jitterMs('dep-aaaaaaaaaaab', DAY);
    expect(a).not.toBe(b);
  });
});

describe('nextRunAfter', () => {
  it('is one interval plus the deployment jitter after t', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_000_000_000_000 }), depId, interval, (t, id, ms) => {
        expect(nextRunAfter(t, id, ms)).toBe(t + ms + jitterMs(id, ms));
      }),
    );
  });

  it('is always at least one interval and at most interval + min(5%, 1 min) later', () => {
    const t = Date.UTC(2026, 1, 10, 9, 15);
    for (const ms of [SECOND, MINUTE, 30 * MINUTE, HOUR, DAY, 7 * DAY]) {
      for (let i = 0; i < 50; i++) {
        const next = nextRunAfter(t, `dep-${i}`, ms);
        expect(next - t).toBeGreaterThanOrEqual(ms);
        expect(next - t).toBeLessThanOrEqual(ms + Math.min(ms * 0.05, MINUTE));
      }
    }
  });

  it('keeps a steady period for one deployment', () => {
    const id = 'dep-steadysteady';
    let t = Date.UTC(2026, 0, 1);
    const gaps = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const next = nextRunAfter(t, id, HOUR);
      gaps.add(next - t);
      t = next;
    }
    expect(gaps.size).toBe(1);
  });
});

describe('isDue', () => {
  it('is never due when disabled (no next run)', () => {
    expect(isDue(null, 0)).toBe(false);
    expect(isDue(null, Date.now())).toBe(false);
    expect(isDue(null, Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it('is due from the next run on, not a millisecond before', () => {
    const at = Date.UTC(2026, 0, 1, 12);
    expect(isDue(at, at - 1)).toBe(false);
    expect(isDue(at, at)).toBe(true);
    expect(isDue(at, at + 1)).toBe(true);
    expect(isDue(at, at + 365 * DAY)).toBe(true);
    fc.assert(
      fc.property(fc.integer(), fc.integer(), (next, now) => {
        expect(isDue(next, now)).toBe(next <= now);
      }),
    );
  });
});

describe('pruneVictims', () => {
  const snap = (id: string, createdAt: number, automatic = true, status = 'ready'): RetainedSnapshot => ({
    id,
    automatic,
    status,
    createdAt,
  });
  const ids = (xs: readonly RetainedSnapshot[]) => xs.map((s) => s.id).sort();

  it('prunes nothing up to the retention', () => {
    const xs = [snap('a', 1), snap('b', 2), snap('c', 3)];
    expect(pruneVictims(xs, 3)).toEqual([]);
    expect(pruneVictims(xs, 4)).toEqual([]);
    expect(pruneVictims([], 1)).toEqual([]);
  });

  it('prunes the oldest beyond the retention', () => {
    const xs = [snap('a', 1), snap('b', 2), snap('c', 3), snap('d', 4), snap('e', 5)];
    expect(ids(pruneVictims(xs, 3))).toEqual(['a', 'b']);
    expect(ids(pruneVictims(xs, 4))).toEqual(['a']);
    expect(ids(pruneVictims(xs, 1))).toEqual(['a', 'b', 'c', 'd']);
  });

  it('goes by creation time, not by the order given', () => {
    const xs = [snap('d', 4), snap('a', 1), snap('e', 5), snap('c', 3), snap('b', 2)];
    expect(ids(pruneVictims(xs, 2))).toEqual(['a', 'b', 'c']);
  });

  it('never prunes manual snapshots, and does not count them', () => {
    const xs = [snap('m1', 0, false), snap('a', 1), snap('m2', 2, false), snap('b', 3), snap('c', 4), snap('m3', 5, false)];
    expect(ids(pruneVictims(xs, 2))).toEqual(['a']);
    expect(ids(pruneVictims(xs, 1))).toEqual(['a', 'b']);
    expect(pruneVictims([snap('m1', 0, false), snap('m2', 1, false)], 1)).toEqual([]);
  });

  it('never prunes failed, creating or deleting snapshots, and does not count them', () => {
    const xs = [
      snap('a', 1),
      snap('f1', 2, true, 'failed'),
      snap('b', 3),
      snap('f2', 4, true, 'failed'),
      snap('f3', 5, true, 'failed'),
      snap('c', 6, true, 'creating'),
      snap('x', 0, true, 'deleting'),
    ];
    // Two ready ones, retention 2: the failures and the one in progress push out no good one.
    expect(pruneVictims(xs, 2)).toEqual([]);
    expect(ids(pruneVictims(xs, 1))).toEqual(['a']);
  });

  it('prunes every automatic ready snapshot at retention 0', () => {
    const xs = [snap('a', 1), snap('b', 2), snap('m', 3, false)];
    expect(ids(pruneVictims(xs, 0))).toEqual(['a', 'b']);
  });

  it('returns the snapshots themselves and leaves the input untouched', () => {
    type Tagged = RetainedSnapshot & { readonly tag: string };
    const xs: Tagged[] = [
      { ...snap('b', 2), tag: 'two' },
      { ...snap('a', 1), tag: 'one' },
      { ...snap('c', 3), tag: 'three' },
    ];
    const copy = xs.map((x) => ({ ...x }));
    const victims = pruneVictims(xs, 1);
    expect(victims.every((v) => xs.includes(v))).toBe(true);
    expect(victims.map((v) => v.tag).sort()).toEqual(['one', 'two']);
    expect(xs).toEqual(copy);
  });

  it('keeps exactly min(retention, ready automatic) newest, for any mix', () => {
    const arb = fc.array(
      fc.record({
        automatic: fc.boolean(),
        status: fc.constantFrom('ready', 'failed', 'creating', 'deleting'),
      }),
      { maxLength: 40 },
    );
    fc.assert(
      fc.property(arb, fc.integer({ min: 0, max: 50 }), (shape, retention) => {
        // Distinct creation times, shuffled by index.
        const xs = shape.map((s, i) => snap(`s${i}`, ((i * 7919) % 1009) + i * 1009, s.automatic, s.status));
        const victims = pruneVictims(xs, retention);
        const eligible = xs.filter((s) => s.automatic && s.status === 'ready');
        expect(victims.every((v) => v.automatic && v.status === 'ready')).toBe(true);
        expect(victims).toHaveLength(Math.max(0, eligible.length - retention));
        const kept = eligible.filter((s) => !victims.includes(s));
        if (victims.length > 0 && kept.length > 0) {
          expect(Math.max(...victims.map((v) => v.createdAt))).toBeLessThan(Math.min(...kept.map((k) => k.createdAt)));
        }
      }),
    );
  });
});

describe('boundedSchedule', () => {
  const now = Date.UTC(2026, 1, 10);

  it('returns settings within the rules unchanged', () => {
    fc.assert(
      fc.property(depId, fc.integer({ min: SECOND, max: MAX_INTERVAL_MS }), fc.integer({ min: 0, max: 400 * DAY }), (id, ms, ago) => {
        const next = nextRunAfter(now - ago, id, ms);
        expect(boundedSchedule(id, ms, next, now)).toEqual({ intervalMs: ms, nextRunAt: next });
        expect(boundedSchedule(id, ms, null, now)).toEqual({ intervalMs: ms, nextRunAt: null });
      }),
    );
  });

  it('brings any stored interval and due time within a year of now', () => {
    const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(9_999_999 * DAY, 999_999_999 * DAY, 9e18, -9e18));
    fc.assert(
      fc.property(depId, anyNumber, anyNumber, (id, ms, next) => {
        const b = boundedSchedule(id, ms, next, now);
        expect(b.intervalMs).toBeGreaterThanOrEqual(SECOND);
        expect(b.intervalMs).toBeLessThanOrEqual(MAX_INTERVAL_MS);
        expect(b.nextRunAt).not.toBeNull();
        expect(b.nextRunAt!).toBeGreaterThanOrEqual(0);
        expect(b.nextRunAt!).toBeLessThanOrEqual(now + MAX_INTERVAL_MS + MINUTE);
        expect(() => new Date(b.nextRunAt!).toISOString()).not.toThrow();
      }),
    );
  });
});
