/** validate: the checks the API makes on input, run before sending. */

export const LABEL_MAX = 64;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** labelError returns the API's message for a label it would reject, or null. */
export function labelError(label: string): string | null {
  if ([...label].length > LABEL_MAX) return `label must be at most ${LABEL_MAX} characters`;
  if (CONTROL.test(label)) return 'label must not contain control characters';
  return null;
}

const DURATION = /^([1-9][0-9]{0,8})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** parseDuration turns "30m" into milliseconds, or null when malformed. */
export function parseDuration(s: string): number | null {
  const m = DURATION.exec(s.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** retentionValue parses the retention field: an integer, or null. */
export function retentionValue(s: string): number | null {
  if (!/^\s*-?\d+\s*$/.test(s)) return null;
  return Number(s);
}

/** The largest count a calendar retention tier takes (the API's). */
export const TIER_MAX = 1000;

/**
 * tierValue parses a calendar tier field: empty is null (not set), an
 * integer from 0 to TIER_MAX is itself, anything else is undefined (invalid).
 */
export function tierValue(s: string): number | null | undefined {
  if (s.trim() === '') return null;
  if (!/^\s*\d+\s*$/.test(s)) return undefined;
  const n = Number(s);
  return n <= TIER_MAX ? n : undefined;
}
