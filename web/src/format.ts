/** format: sizes, times and durations as the dashboard shows them. */

// Sizes are rendered exactly as the server and the CLI render them: one
// implementation, shared with the server code (it is pure, no Node APIs).
export { formatBytes } from '../../src/core/units.js';

/** formatMs renders a short duration: "850 ms", "2.4 s", "3m 05s". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${m}m ${String(s).padStart(2, '0')}s`;
}

const UNITS: [limitMs: number, unitMs: number, one: string, many: string][] = [
  [60_000, 1000, 's', 's'],
  [3_600_000, 60_000, 'min', 'min'],
  [86_400_000, 3_600_000, 'hour', 'hours'],
  [30 * 86_400_000, 86_400_000, 'day', 'days'],
];

/** formatRelative renders a time against now: "just now", "12 s ago", "3 min ago", "in 2 hours". */
export function formatRelative(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = t - now;
  const abs = Math.abs(diff);
  if (abs < 5_000) return diff <= 0 ? 'just now' : 'in a few seconds';
  for (const [limit, unit, one, many] of UNITS) {
    if (abs < limit) {
      const n = Math.round(abs / unit);
      const text = `${n} ${n === 1 ? one : many}`;
      return diff < 0 ? `${text} ago` : `in ${text}`;
    }
  }
  return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** formatClock renders a time briefly: the time of day when it is today, else the day and the time ("Mar 3, 14:05"). */
export function formatClock(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = new Date(t);
  const today = d.toDateString() === new Date(now).toDateString();
  return today
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** formatExact renders a time in full, with its time zone, for title attributes. */
export function formatExact(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
  });
}

/** percent of done over total, 0–100, or null when the total is unknown. */
export function percent(done: number, total: number | null): number | null {
  if (total === null || total <= 0) return null;
  return Math.max(0, Math.min(100, (done / total) * 100));
}

const TRIGGERS: Record<string, string> = {
  manual: 'Manual',
  automatic: 'Automatic',
  'before-update': 'Before update',
  'before-restore': 'Before restore',
};

export const triggerLabel = (trigger: string): string => TRIGGERS[trigger] ?? trigger;

const OPERATIONS: Record<string, string> = {
  deploy: 'Deploying',
  snapshot: 'Taking a snapshot',
  restore: 'Restoring',
  update: 'Updating',
  restart: 'Restarting',
  close: 'Closing',
  clone: 'Cloning',
  recover: 'Recovering',
  'clone-offsite': 'Cloning',
};

export const operationLabel = (op: string): string => OPERATIONS[op] ?? op;
