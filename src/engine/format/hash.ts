/**
 * hash: content addresses. Every blob, pack, index file and snapshot record
 * is named by the BLAKE3 (32-byte output) of its bytes, written as 64
 * lower-case hex digits. BLAKE3 is computed by the native addon (its wide
 * kernels hash 8 or 16 pieces of an input at once), several times faster
 * than SHA-256 on the same core.
 */
import { native } from '../native.js';

export const HASH_BYTES = 32;

function joined(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** hash returns the BLAKE3 digest of the concatenation of `parts`. */
export function hash(...parts: readonly Uint8Array[]): Buffer {
  return native.hash(joined(parts));
}

/** hashHex is hash as a hex string. */
export function hashHex(...parts: readonly Uint8Array[]): string {
  return native.hash(joined(parts)).toString('hex');
}

/** isHashHex tells whether `s` is a well-formed content address (64 lower-case hex digits). */
export function isHashHex(s: unknown): s is string {
  // A loop over the char codes: decoding a tree checks one id per chunk, and a regex costs several times more.
  if (typeof s !== 'string' || s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}
