/**
 * sdl/sizes: byte sizes as an SDL writes them, Kubernetes style.
 *
 * A size is a plain number of bytes (`1073741824`, as a YAML number or a
 * string) or a number with a unit suffix: decimal `k`/`K`, `M`, `G`, `T`,
 * `P`, `E` (powers of 1000) or binary `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`
 * (powers of 1024). A trailing `B` is tolerated (`10GB`, `512MiB`). The
 * number may have a fraction (`1.5Gi`); the result is rounded up to whole
 * bytes, as Kubernetes does.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

const MULTIPLIERS: Readonly<Record<string, bigint>> = {
  '': 1n,
  k: 10n ** 3n,
  K: 10n ** 3n,
  M: 10n ** 6n,
  G: 10n ** 9n,
  T: 10n ** 12n,
  P: 10n ** 15n,
  E: 10n ** 18n,
  Ki: 2n ** 10n,
  Mi: 2n ** 20n,
  Gi: 2n ** 30n,
  Ti: 2n ** 40n,
  Pi: 2n ** 50n,
  Ei: 2n ** 60n,
};

const SIZE_RE = /^([0-9]{1,30})(?:\.([0-9]{1,30}))?(k|K|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?B?$/;

/**
 * parseSize turns "512Mi" into 536870912, or returns null when the value is
 * not a size. Bounds (zero, maximum) are for the caller to check; a result
 * too large for a safe integer is returned as Infinity.
 */
export function parseSize(value: unknown): number | null {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) return null;
    return Number.isSafeInteger(value) ? value : Infinity;
  }
  if (typeof value !== 'string') return null;
  const m = SIZE_RE.exec(value.trim());
  if (!m || m[1] === undefined) return null;
  const [, whole, fraction = '', suffix = ''] = m;
  // Without a unit the number is bytes, and a fraction of a byte means a typo.
  if (suffix === '' && fraction !== '') return null;
  const multiplier = MULTIPLIERS[suffix];
  if (multiplier === undefined) return null;
  // Exact arithmetic: "0.3k" is 300 bytes, not 300.00000000000006 rounded up.
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(whole) * scale + BigInt(fraction === '' ? '0' : fraction)) * multiplier;
  const bytes = (scaled + scale - 1n) / scale;
  return bytes <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(bytes) : Infinity;
}
