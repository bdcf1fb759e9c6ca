/**
 * keys: API keys. A key reads `kova_<prefix>.<secret>`: the prefix (public,
 * 12 base-32 characters) finds the key, the secret (32 random bytes,
 * base64url) proves it. Only a slow scrypt hash of the secret is stored, and
 * comparisons are constant-time. A verified key is remembered (by a fast
 * hash) for a minute so each request does not pay for scrypt; revoking a key
 * drops it from that cache at once. A prefix that no key has, or a revoked
 * key, costs the same scrypt as a wrong secret, so timing does not tell
 * which prefixes exist; every scrypt check first passes the caller's gate
 * (the API's sign-in rate limit). A user has at most `maxKeysPerUser`
 * active keys.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { UserRole } from '../api/contract.js';
import type { Clock } from '../core/clock.js';
import { ConflictError, KovaError, NotFoundError, ValidationError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { LABEL_TEXT, checkText } from '../core/text.js';
import type { ApiKey } from '../db/api-keys.js';
import type { Store } from '../db/store.js';
import type { User } from '../db/users.js';

const scryptAsync = promisify(scrypt) as (
  pw: Buffer,
  salt: Buffer,
  len: number,
  opts: { N: number; r: number; p: number },
) => Promise<Buffer>;
const SCRYPT = { N: 1 << 14, r: 8, p: 1 };
const TOKEN_RE = /^kova_([a-z2-7]{12})\.([A-Za-z0-9_-]{43})$/;
const CACHE_MS = 60_000;

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(Buffer.from(secret), salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function checkSecret(secret: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !hash) return false;
  const want = Buffer.from(hash, 'base64');
  const got = await scryptAsync(Buffer.from(secret), Buffer.from(salt, 'base64'), want.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Active keys a user may have unless configured otherwise. */
export const DEFAULT_MAX_KEYS_PER_USER = 20;

export interface KeyOptions {
  /** Active (unrevoked) keys a user may have. Default DEFAULT_MAX_KEYS_PER_USER. */
  readonly maxKeysPerUser?: number;
}

/** Too many attempts: wait `retryAfterSec` seconds (HTTP 429). */
export class RateLimitedError extends KovaError {
  readonly retryAfterSec: number;
  constructor(what: string, retryAfterSec: number) {
    super('RATE_LIMITED', `too many ${what}; retry in ${retryAfterSec} s`, { status: 429, details: { retryAfterSec } });
    this.retryAfterSec = retryAfterSec;
  }
}

/**
 * A gate runs before each scrypt check of `prefix` (whether or not a key has
 * it) and throws RateLimitedError to refuse it.
 */
export type HashGate = (prefix: string) => Promise<void>;

export interface NewKey {
  readonly token: string;
  readonly key: ApiKey;
}

export interface Principal {
  readonly user: User;
  /** What the user may do beyond their own deployments (admin: list the nodes, in network mode). */
  readonly role: UserRole;
  readonly keyPrefix: string;
}

/** The all-in-one's admin: the user `kova serve` creates on a fresh data dir. Every other user is a plain user. */
export const ADMIN_USER = 'admin';

export class KeyService {
  private readonly verified = new Map<string, { digest: Buffer; until: number }>();
  private readonly maxKeysPerUser: number;
  /** What secrets of unknown prefixes are checked against (made on first use). */
  private dummyHash: Promise<string> | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    opts: KeyOptions = {},
  ) {
    this.maxKeysPerUser = opts.maxKeysPerUser ?? DEFAULT_MAX_KEYS_PER_USER;
  }

  /** ensureUser returns the user with this name, creating it if needed. */
  ensureUser(name: string): User {
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
      throw new ValidationError(
        'INVALID_USER',
        'user names are 1-32 characters: lower-case letters, digits, - and _, starting with a letter',
      );
    }
    const existing = this.store.users.byName(name);
    if (existing) return existing;
    const user = { id: newId('usr'), name, createdAt: this.clock.now() };
    this.store.users.insert(user);
    return user;
  }

  async create(userId: string, label: string | null): Promise<NewKey> {
    const clean = label === null ? null : checkText(label, LABEL_TEXT);
    const prefix = newId('k').slice(2);
    const secret = randomBytes(32).toString('base64url');
    const key = { prefix, userId, secretHash: await hashSecret(secret), label: clean, createdAt: this.clock.now() };
    // Counted and inserted in one transaction, so parallel creations cannot pass the cap together.
    this.store.tx(() => {
      const active = this.store.apiKeys.list(userId).filter((k) => k.revokedAt === null).length;
      if (active >= this.maxKeysPerUser) {
        throw new ConflictError('KEY_LIMIT', `a user may have at most ${this.maxKeysPerUser} active API keys; revoke one first`, {
          max: this.maxKeysPerUser,
        });
      }
      this.store.apiKeys.insert(key);
    });
    return { token: `kova_${prefix}.${secret}`, key: { ...key, lastUsedAt: null, revokedAt: null } };
  }

  /**
   * authenticate returns who a bearer token belongs to, or null. A token
   * verified in the last minute is answered from the cache; any other one
   * of the right form passes `gate` (which may throw RateLimitedError) and
   * then costs one scrypt, whether its prefix exists, is revoked or is good.
   */
  async authenticate(token: string, gate?: HashGate): Promise<Principal | null> {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    const [, prefix, secret] = m as unknown as [string, string, string];
    const key = this.store.apiKeys.get(prefix);
    const digest = createHash('sha256').update(secret).digest();
    const now = this.clock.now();
    const cached = key && key.revokedAt === null ? this.verified.get(prefix) : undefined;
    let ok = cached !== undefined && cached.until > now && timingSafeEqual(cached.digest, digest);
    if (!ok) {
      await gate?.(prefix);
      ok = await this.checkHash(secret, key?.secretHash ?? (await this.dummy()));
      if (!key || key.revokedAt !== null) return null;
      if (ok) this.verified.set(prefix, { digest, until: now + CACHE_MS });
    }
    if (!ok || !key) return null;
    // Revocation may have happened while scrypt ran.
    const fresh = this.store.apiKeys.get(prefix);
    if (!fresh || fresh.revokedAt !== null) return null;
    const user = this.store.users.get(key.userId);
    if (!user) return null;
    if (key.lastUsedAt === null || now - key.lastUsedAt > 60_000) this.store.apiKeys.touch(prefix, now);
    return { user, role: user.name === ADMIN_USER ? 'admin' : 'user', keyPrefix: prefix };
  }

  /** checkHash is the slow part of authenticate: one scrypt per call. */
  checkHash(secret: string, stored: string): Promise<boolean> {
    return checkSecret(secret, stored);
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= hashSecret(randomBytes(32).toString('base64url'));
    return this.dummyHash;
  }

  list(userId: string): ApiKey[] {
    return this.store.apiKeys.list(userId);
  }

  /** revoke revokes a key by (a prefix of) its prefix; userId limits it to that user's keys. */
  revoke(prefixOrToken: string, userId?: string): ApiKey {
    const prefix = prefixOrToken.replace(/^kova_/, '').split('.')[0] ?? '';
    const candidates = this.store.apiKeys.list(userId).filter((k) => k.prefix.startsWith(prefix) && prefix.length >= 4);
    if (candidates.length !== 1) throw new NotFoundError('API_KEY_NOT_FOUND', `no API key with prefix ${prefix}`);
    const key = candidates[0]!;
    this.store.apiKeys.revoke(key.prefix, this.clock.now());
    this.verified.delete(key.prefix);
    return { ...key, revokedAt: this.clock.now() };
  }
}
