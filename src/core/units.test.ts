/** units: durations as people write them, read exactly or not at all. */
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './units.js';

describe('parseDuration', () => {
  it.each([
    ['30m', 1_800_000],
    ['24h', 86_400_000],
    ['365d', 31_536_000_000],
    ['999999999s', 999_999_999_000],
  ])('reads %s', (s, ms) => {
    expect(parseDuration(s)).toBe(ms);
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it('refuses a duration too long to count exactly in milliseconds', () => {
    // 999999999d is 8.64e16 ms, past Number.MAX_SAFE_INTEGER.
    expect(parseDuration('999999999d')).toBeNull();
    expect(parseDuration('104249992d')).toBeNull();
    expect(parseDuration('104249991d')).toBe(104_249_991 * 86_400_000);
  });
});
