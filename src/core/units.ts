/**
 * units: sizes and durations as people read and write them.
 *
 * Sizes use decimal units (B, KB, MB, GB, TB) with one decimal above bytes,
 * as the API contract shows them ("2.4 GB"). Durations are an integer with a
 * unit s, m, h or d ("30m", "24h", "7d").
 */

const SIZE_UNITS = ['KB', 'MB', 'GB', 'TB', 'PB'] as const;

/** formatBytes renders a byte count: 950 → "950 B", 2_400_000_000 → "2.4 GB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1000) return `${Math.max(0, Math.round(n))} B`;
  let v = n;
  let unit = 'B';
  for (const u of SIZE_UNITS) {
    if (v < 1000) break;
    v /= 1000;
    unit = u;
  }
  // 999.96 KB would round to "1000.0 KB": carry into the next unit.
  if (Number(v.toFixed(1)) >= 1000 && unit !== 'PB') {
    v /= 1000;
    unit = SIZE_UNITS[SIZE_UNITS.indexOf(unit as (typeof SIZE_UNITS)[number]) + 1] ?? unit;
  }
  return `${v.toFixed(1)} ${unit}`;
}

const DURATION_RE = /^([1-9][0-9]{0,8})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * parseDuration turns "30m" into milliseconds, or returns null when
 * malformed or too long to count exactly in milliseconds (callers bound it
 * further).
 */
export function parseDuration(s: string): number | null {
  const m = DURATION_RE.exec(s);
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return Number.isSafeInteger(ms) ? ms : null;
}

/** formatDuration renders milliseconds with the largest unit that divides them exactly. */
export function formatDuration(ms: number): string {
  for (const u of ['d', 'h', 'm'] as const) {
    if (ms >= UNIT_MS[u] && ms % UNIT_MS[u] === 0) return `${ms / UNIT_MS[u]}${u}`;
  }
  return `${Math.max(1, Math.round(ms / 1000))}s`;
}

/** formatElapsed renders a short human duration: "850 ms", "12.3 s", "4m 05s". */
export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${m}m ${String(s).padStart(2, '0')}s`;
}
