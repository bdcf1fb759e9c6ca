/**
 * hash: content addresses. Every blob, pack, index file and snapshot record
 * is named by the SHA-256 of its bytes, written as 64 lower-case hex digits.
 */
import { createHash } from 'node:crypto';

export const HASH_BYTES = 32;

/** sha256 returns the SHA-256 digest of the concatenation of `parts`. */
export function sha256(...parts: readonly Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** sha256Hex is sha256 as a hex string. */
export function sha256Hex(...parts: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

/** isHashHex tells whether `s` is a well-formed content address. */
export function isHashHex(s: unknown): s is string {
  return typeof s === 'string' && HEX64.test(s);
}
