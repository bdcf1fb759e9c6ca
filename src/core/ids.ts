/**
 * ids: public identifiers: a short prefix saying what it is ("dep", "snap",
 * "rst", "job") and 12 random lower-case base-32 characters (60 bits).
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

export function newId(prefix: string): string {
  const bytes = randomBytes(12);
  let s = '';
  for (const b of bytes) s += ALPHABET[b & 31];
  return `${prefix}-${s}`;
}

/** isId tells whether `s` looks like an id with this prefix (cheap input check). */
export function isId(prefix: string, s: string): boolean {
  return s.length === prefix.length + 13 && s.startsWith(`${prefix}-`) && /^[a-z2-7]{12}$/.test(s.slice(prefix.length + 1));
}
