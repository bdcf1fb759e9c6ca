// Deterministic pseudo-random numbers for the benchmark volume: a 32-bit hash
// for deriving independent seeds, a small sequential generator for layout
// decisions, and a fast bulk filler for incompressible data.

/** Mixes any number of 32-bit values into one well-distributed 32-bit value. */
export function mix(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** xorshift128 state initialised from a single seed (never all zero). */
function seedState(seed: number): [number, number, number, number] {
  return [mix(seed, 1) | 1, mix(seed, 2), mix(seed, 3), mix(seed, 4)];
}

/** Sequential generator for decisions (sizes, names, placement). */
export class Rng {
  private s: [number, number, number, number];

  constructor(seed: number) {
    this.s = seedState(seed);
  }

  /** Next unsigned 32-bit value. */
  u32(): number {
    const s = this.s;
    let t = s[3];
    const x = s[0];
    s[3] = s[2];
    s[2] = s[1];
    s[1] = x;
    t ^= t << 11;
    t ^= t >>> 8;
    s[0] = (t ^ x ^ (x >>> 19)) >>> 0;
    return s[0];
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from empty list');
    return item;
  }

  /** Integer in [min, max] spread log-uniformly. */
  logUniform(min: number, max: number): number {
    return Math.floor(Math.exp(Math.log(min) + this.float() * (Math.log(max) - Math.log(min))));
  }

  /** Fisher-Yates shuffle of a copy of `items`. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}

/** Fills `words` with xorshift128 output derived from `seed`. */
export function fillRandom(words: Uint32Array, seed: number): void {
  let [a, b, c, d] = seedState(seed);
  for (let i = 0; i < words.length; i++) {
    let t = d;
    d = c;
    c = b;
    b = a;
    t ^= t << 11;
    t ^= t >>> 8;
    a = t ^ a ^ (a >>> 19);
    words[i] = a;
  }
}
