/**
 * tokens: node tokens. A token reads `kova_node_` + 32 random bytes
 * (base64url); the catalogue stores only its SHA-256. A fast hash is right
 * here, unlike for users' keys: the token is 256 random bits, not something
 * a person chose, so no dictionary or brute force can invert the hash, and
 * a fast hash lets the control plane look a node up by its hash on every
 * request without a per-request scrypt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { NODE_TOKEN_PREFIX } from '../../network/protocol.js';

export function newNodeToken(): string {
  return NODE_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** hashNodeToken is what nodes.token_hash holds (hex SHA-256 of the whole token). */
export function hashNodeToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** isNodeToken tells whether `s` has a node token's form (cheap check before a lookup). */
export function isNodeToken(s: string): boolean {
  return s.startsWith(NODE_TOKEN_PREFIX) && /^[A-Za-z0-9_-]{43}$/.test(s.slice(NODE_TOKEN_PREFIX.length));
}
