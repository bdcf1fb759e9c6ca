// The native BLAKE3 against the specification's published digests and an
// independent implementation (@noble/hashes), for every kernel this CPU can
// run, one-shot, on the thread pool, and streamed through the chunker.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blake3 } from '@noble/hashes/blake3.js';
import { describe, expect, it } from 'vitest';
import { native, hashMany } from '../native.js';
import { prng } from '../testing.js';
import { hash, hashHex, isHashHex } from './hash.js';

const reference = (b: Uint8Array): string => Buffer.from(blake3(b)).toString('hex');

/** The specification's test input: byte i is i mod 251. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

// Around every boundary the tree has: block (64), chunk (1 KiB), the wide
// kernels' 8 and 16 chunks, the subtree cap (512 KiB), and a typical data chunk.
const LENGTHS = [
  0,
  1,
  63,
  64,
  65,
  1023,
  1024,
  1025,
  2047,
  2048,
  2049,
  3072,
  3073,
  7 * 1024,
  8 * 1024,
  8 * 1024 + 1,
  16 * 1024 - 1,
  16 * 1024,
  16 * 1024 + 1,
  17 * 1024,
  31 * 1024 + 5,
  100_000,
  256 * 1024,
  256 * 1024 + 1,
  512 * 1024 - 1,
  512 * 1024,
  512 * 1024 + 1,
  1024 * 1024 + 3,
  2 * 1024 * 1024,
  3_000_001,
];

describe('hash (BLAKE3)', () => {
  it('gives the published digests of the empty input and "abc"', () => {
    expect(hashHex(Buffer.alloc(0))).toBe('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    expect(hashHex(Buffer.from('abc'))).toBe('6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  });

  it('agrees with an independent implementation at every tree boundary', () => {
    const data = pattern(LENGTHS[LENGTHS.length - 1]!);
    for (const n of LENGTHS) expect(hashHex(data.subarray(0, n)), `length ${n}`).toBe(reference(data.subarray(0, n)));
    for (let i = 1; i <= 40; i++) {
      const b = prng(i, (i * 7919 * 37) % 300_000);
      expect(hash(b).toString('hex'), `random length ${b.length}`).toBe(reference(b));
    }
  });

  it('hashes parts as their concatenation, and many buffers on the thread pool', async () => {
    const a = pattern(5000);
    const b = Buffer.from('tail');
    expect(hashHex(a, b)).toBe(reference(Buffer.concat([a, b])));
    const bufs = LENGTHS.slice(0, 12).map((n) => pattern(n));
    expect(await hashMany(bufs)).toEqual(bufs.map(reference));
  });

  it('runs the widest kernel the CPU has, and every narrower one agrees', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const addon = path.resolve(here, '..', '..', '..', 'build', 'Release', 'kova_native.node');
    const script = `
      const a = require(${JSON.stringify(addon)});
      const out = [a.hashKernel()];
      for (const n of ${JSON.stringify(LENGTHS)}) {
        const b = Buffer.allocUnsafe(n);
        for (let i = 0; i < n; i++) b[i] = i % 251;
        out.push(a.hash(b).toString('hex'));
      }
      console.log(JSON.stringify(out));`;
    const data = pattern(LENGTHS[LENGTHS.length - 1]!);
    const want = LENGTHS.map((n) => reference(data.subarray(0, n)));
    const seen = new Set<string>();
    for (const limit of ['avx512', 'avx2', 'portable']) {
      const out = JSON.parse(
        execFileSync(process.execPath, ['-e', script], { env: { ...process.env, KOVA_HASH_KERNEL: limit }, encoding: 'utf8' }),
      ) as string[];
      const [kernel, ...digests] = out;
      seen.add(kernel!);
      expect(digests, `kernel ${kernel}`).toEqual(want);
    }
    expect(seen.has('portable')).toBe(true);
    expect(native.hashKernel()).toBe([...seen][0]);
  });
});

describe('isHashHex', () => {
  it('accepts exactly 64 lower-case hex digits, as /^[0-9a-f]{64}$/ does', () => {
    const good = hashHex(Buffer.from('x'));
    expect(isHashHex(good)).toBe(true);
    expect(isHashHex('0123456789abcdef'.repeat(4))).toBe(true);
    const bad: unknown[] = [
      good.toUpperCase(),
      good.slice(1),
      `${good}0`,
      `${good.slice(0, 63)}g`,
      `${good.slice(0, 63)}/`, // the code points around the digit and letter ranges
      `${good.slice(0, 63)}:`,
      `${good.slice(0, 63)}\``,
      `${good.slice(0, 32)}\n${good.slice(33)}`,
      `${good.slice(0, 63)}\u0661`, // a digit of another script
      '',
      null,
      undefined,
      64,
      [good],
    ];
    for (const s of bad) expect(isHashHex(s), JSON.stringify(s)).toBe(false);
    for (let c = 0; c < 0x180; c++) {
      const s = `${good.slice(0, 40)}${String.fromCharCode(c)}${good.slice(41)}`;
      expect(isHashHex(s), String(c)).toBe(/^[0-9a-f]{64}$/.test(s));
    }
  });
});
