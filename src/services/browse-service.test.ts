/** browse-service: the pure parts: Range headers, shown paths, nanosecond times, names that are not UTF-8. */
import { describe, expect, it } from 'vitest';
import { RangeNotSatisfiableError, isoNs, parsePath, parseRange, shownName } from './browse-service.js';

describe('parseRange', () => {
  it('reads one range of the three forms, clamped to the file', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 10 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRange('bytes=-500', 100)).toEqual({ start: 0, end: 100 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ start: 50, end: 100 });
  });

  it('ignores what it cannot read (the whole file is sent)', () => {
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange('bytes=0-1,5-6', 100)).toBeNull();
    expect(parseRange('items=0-1', 100)).toBeNull();
    expect(parseRange('bytes=9-3', 100)).toBeNull();
  });

  it('refuses ranges no byte satisfies', () => {
    expect(() => parseRange('bytes=100-', 100)).toThrow(RangeNotSatisfiableError);
    expect(() => parseRange('bytes=-0', 100)).toThrow(RangeNotSatisfiableError);
    expect(() => parseRange('bytes=0-', 0)).toThrow(RangeNotSatisfiableError);
  });
});

describe('parsePath', () => {
  it('splits at slashes, ignoring leading and trailing ones', () => {
    expect(parsePath('/app/data/x/').map(String)).toEqual(['app', 'data', 'x']);
    expect(parsePath('')).toEqual([]);
    expect(parsePath(undefined)).toEqual([]);
  });

  it('takes raw bytes from base64', () => {
    const p = parsePath(undefined, Buffer.from([0x61, 0x2f, 0xff]).toString('base64'));
    expect(p).toEqual([Buffer.from('a'), Buffer.from([0xff])]);
  });

  it('refuses empty, "." and ".." components, and both forms at once', () => {
    for (const bad of ['a//b', 'a/./b', '../a', 'a/..']) expect(() => parsePath(bad), bad).toThrow(/INVALID_PATH|components/);
    expect(() => parsePath('a', 'YQ==')).toThrow(/not both/);
  });
});

describe('isoNs and shownName', () => {
  it('keeps nanoseconds, before the epoch too', () => {
    expect(isoNs(1_700_000_000_123_456_789n)).toBe('2023-11-14T22:13:20.123456789Z');
    expect(isoNs(-1n)).toBe('1969-12-31T23:59:59.999999999Z');
  });

  it('renders every time as the plain bigint arithmetic does, whole seconds and repeated seconds included', () => {
    const reference = (ns: bigint): string => {
      const NS = 1_000_000_000n;
      let sec = ns / NS;
      let frac = ns % NS;
      if (frac < 0n) {
        frac += NS;
        sec -= 1n;
      }
      return `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
    };
    const samples = [0n, 1n, 999_999_999n, 1_000_000_000n, 1_000_000_001n, -1_000_000_000n, -999_999_999n, 253_402_300_799_999_999_999n];
    let x = 0x2545f4914f6cdd1dn;
    for (let i = 0; i < 2000; i++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
      const ns = x % 4_000_000_000_000_000_000n; // up to year 2096
      samples.push(ns, ns - (ns % 1_000_000_000n), -ns / 7n, ns + 1n);
    }
    for (const ns of samples) expect(isoNs(ns), String(ns)).toBe(reference(ns));
  });

  it('gives base64 only for names that are not UTF-8', () => {
    expect(shownName(Buffer.from('héllo'))).toEqual({ text: 'héllo', base64: null });
    expect(shownName(Buffer.from([0x61, 0xff]))).toEqual({ text: 'a\uFFFD', base64: 'Yf8=' });
    // Overlong, surrogate, truncated and out-of-range sequences are not UTF-8; four-byte characters are.
    for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80]]) {
      expect(shownName(Buffer.from(bad)).base64, String(bad)).toBe(Buffer.from(bad).toString('base64'));
    }
    expect(shownName(Buffer.from('😀-日本'))).toEqual({ text: '😀-日本', base64: null });
  });
});
