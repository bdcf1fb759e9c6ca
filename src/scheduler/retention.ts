/**
 * retention: which automatic snapshots a deployment's retention policy
 * keeps, as a pure function of the snapshots and the policy.
 *
 * The policy has two parts, both optional but for `last`:
 * - `last`: the N most recent automatic snapshots are always kept (the
 *   settings' `retention` count);
 * - calendar tiers `hourly`, `daily`, `weekly`, `monthly`: for each of the
 *   last N hours (days, ISO weeks, months) that hold at least one snapshot,
 *   the newest snapshot of that period is kept. Periods without a snapshot
 *   are skipped, not counted, so a tier of 7 days keeps 7 days' worth of
 *   history even when the node was off for some of them.
 *
 * A snapshot kept by several rules is kept once. Periods are in UTC, so a
 * policy means the same on every node whatever its time zone. Only ready
 * automatic snapshots take part: manual snapshots are never pruned, and
 * failed or unfinished ones are neither counted nor chosen here.
 */

export interface RetentionPolicy {
  /** The most recent automatic snapshots always kept (at least 1). */
  readonly last: number;
  readonly hourly?: number | undefined;
  readonly daily?: number | undefined;
  readonly weekly?: number | undefined;
  readonly monthly?: number | undefined;
}

export interface RetentionCandidate {
  readonly id: string;
  readonly automatic: boolean;
  readonly status: string;
  readonly createdAt: number;
}

/** Why a snapshot is kept: the rules that chose it. */
export type KeepReason = 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly';

export interface RetentionPlan<T> {
  /** Ready automatic snapshots kept, newest first, with the rules that keep each. */
  readonly keep: ReadonlyArray<{ readonly snapshot: T; readonly reasons: readonly KeepReason[] }>;
  /** Ready automatic snapshots the policy prunes, newest first. */
  readonly prune: readonly T[];
}

export const CALENDAR_TIERS = ['hourly', 'daily', 'weekly', 'monthly'] as const;
export type CalendarTier = (typeof CALENDAR_TIERS)[number];

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * periodKey names the period of `tier` that holds the instant `t` (ms since
 * the epoch, UTC). Keys only need to be equal within a period and differ
 * between periods.
 */
export function periodKey(tier: CalendarTier, t: number): number {
  switch (tier) {
    case 'hourly':
      return Math.floor(t / HOUR_MS);
    case 'daily':
      return Math.floor(t / DAY_MS);
    case 'weekly':
      return isoWeekStartDay(t);
    case 'monthly': {
      const d = new Date(t);
      return d.getUTCFullYear() * 12 + d.getUTCMonth();
    }
  }
}

/** isoWeekStartDay is the day number (days since the epoch) of the Monday that starts t's ISO week. */
function isoWeekStartDay(t: number): number {
  const day = Math.floor(t / DAY_MS);
  // 1970-01-01 was a Thursday: day 0 has weekday index 3 counting Monday as 0.
  const weekday = (((day + 3) % 7) + 7) % 7;
  return day - weekday;
}

/**
 * planRetention decides, for the ready automatic snapshots among
 * `snapshots`, which the policy keeps and which it prunes. Snapshots taken
 * at the same instant are ordered by id, so the result never depends on the
 * input's order.
 */
export function planRetention<T extends RetentionCandidate>(snapshots: readonly T[], policy: RetentionPolicy): RetentionPlan<T> {
  const candidates = snapshots
    .filter((s) => s.automatic && s.status === 'ready')
    .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const reasons = new Map<T, KeepReason[]>();
  const keepFor = (s: T, r: KeepReason): void => {
    const list = reasons.get(s);
    if (list) list.push(r);
    else reasons.set(s, [r]);
  };
  candidates.slice(0, Math.max(0, policy.last)).forEach((s) => keepFor(s, 'last'));
  for (const tier of CALENDAR_TIERS) {
    let left = policy[tier] ?? 0;
    let lastKey: number | null = null;
    // Newest first: the first snapshot met in each period is that period's newest.
    for (const s of candidates) {
      if (left <= 0) break;
      const key = periodKey(tier, s.createdAt);
      if (key === lastKey) continue;
      lastKey = key;
      keepFor(s, tier);
      left--;
    }
  }
  return {
    keep: candidates.filter((s) => reasons.has(s)).map((s) => ({ snapshot: s, reasons: reasons.get(s)! })),
    prune: candidates.filter((s) => !reasons.has(s)),
  };
}

/** hasCalendarTiers tells whether any calendar tier is set above zero. */
export function hasCalendarTiers(policy: RetentionPolicy): boolean {
  return CALENDAR_TIERS.some((t) => (policy[t] ?? 0) > 0);
}

const TIER_WORDS: Record<CalendarTier, [string, string]> = {
  hourly: ['hour', 'hours'],
  daily: ['day', 'days'],
  weekly: ['week', 'weeks'],
  monthly: ['month', 'months'],
};

/**
 * describeRetention says in plain words what a policy keeps, for the
 * dashboard's settings tab and the CLI.
 */
export function describeRetention(policy: RetentionPolicy): string {
  const last = policy.last === 1 ? 'the most recent automatic snapshot' : `the ${policy.last} most recent automatic snapshots`;
  const tiers = CALENDAR_TIERS.filter((t) => (policy[t] ?? 0) > 0).map((t) => {
    const n = policy[t]!;
    const [one, many] = TIER_WORDS[t];
    return n === 1 ? `the newest of the last ${one}` : `the newest of each of the last ${n} ${many}`;
  });
  const kept = tiers.length === 0 ? `Keeps ${last}` : `Keeps ${last}, and ${joinWords(tiers)} (UTC) that had one`;
  return `${kept}; older automatic snapshots are deleted. Manual snapshots are never deleted.`;
}

function joinWords(parts: readonly string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

/** The retention part of a deployment's settings: `retention` is the policy's `last`; null tiers are not set. */
export interface RetentionSettings {
  readonly retention: number;
  readonly keepHourly: number | null;
  readonly keepDaily: number | null;
  readonly keepWeekly: number | null;
  readonly keepMonthly: number | null;
}

/** The largest count a calendar tier setting takes. */
export const MAX_TIER = 1000;

/** tierMessage is the INVALID_RETENTION message for a calendar tier setting. */
export function tierMessage(field: string): string {
  return `${field} must be an integer from 0 to ${MAX_TIER}, or null for none`;
}

/** retentionPolicy turns stored settings into the policy planRetention applies. */
export function retentionPolicy(s: RetentionSettings): RetentionPolicy {
  return {
    last: s.retention,
    hourly: s.keepHourly ?? undefined,
    daily: s.keepDaily ?? undefined,
    weekly: s.keepWeekly ?? undefined,
    monthly: s.keepMonthly ?? undefined,
  };
}
