/**
 * keys: users' API keys in the control plane's catalogue, with the same
 * format, hashing, cache and limits as the all-in-one's KeyService
 * (src/services/keys.ts): `kova_<prefix>.<secret>`, a scrypt hash stored,
 * a verified key remembered for a minute by this replica (by a fast hash).
 * The stored key is read on every request, so a revocation made through
 * any replica stops the key on every replica at the next request.
 *
 * Node tokens (`kova_node_…`) are never API keys: they do not have the
 * form, so they are refused before any lookup.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeysApi } from '../api/deps.js';
import type { Clock } from '../core/clock.js';
import { ConflictError, NotFoundError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { LABEL_TEXT, checkText } from '../core/text.js';
import type { ApiKey } from '../db/api-keys.js';
import { DEFAULT_MAX_KEYS_PER_USER, type HashGate, type NewKey, type Principal, checkSecret, hashSecret } from '../services/keys.js';
import type { Catalogue } from './catalogue.js';

/** The form of an API key, as src/services/keys.ts issues them. */
const TOKEN_RE = /^kova_([a-z2-7]{12})\.([A-Za-z0-9_-]{43})$/;
const CACHE_MS = 60_000;
const TOUCH_EVERY_MS = 60_000;

export class CatalogueKeys implements KeysApi {
  private readonly verified = new Map<string, { digest: Buffer; until: number }>();
  private dummyHash: Promise<string> | null = null;
  private readonly creating = new Map<string, Promise<unknown>>();

  constructor(
    private readonly catalogue: Catalogue,
    private readonly clock: Clock,
    private readonly maxKeysPerUser = DEFAULT_MAX_KEYS_PER_USER,
  ) {}

  /**
   * create issues a key. Creations for one user are serialised in this
   * process, so parallel requests cannot all pass the cap before any is
   * inserted.
   */
  create(userId: string, label: string | null): Promise<NewKey> {
    const run = (this.creating.get(userId) ?? Promise.resolve()).then(() => this.createNow(userId, label));
    const settled = run.catch(() => undefined);
    this.creating.set(userId, settled);
    void settled.then(() => {
      if (this.creating.get(userId) === settled) this.creating.delete(userId);
    });
    return run;
  }

  private async createNow(userId: string, label: string | null): Promise<NewKey> {
    const clean = label === null ? null : checkText(label, LABEL_TEXT);
    const active = (await this.catalogue.keys(userId)).filter((k) => k.revokedAt === null).length;
    if (active >= this.maxKeysPerUser) {
      throw new ConflictError('KEY_LIMIT', `a user may have at most ${this.maxKeysPerUser} active API keys; revoke one first`, {
        max: this.maxKeysPerUser,
      });
    }
    const prefix = newId('k').slice(2);
    const secret = randomBytes(32).toString('base64url');
    const key = { prefix, userId, secretHash: await hashSecret(secret), label: clean, createdAt: this.clock.now() };
    await this.catalogue.insertKey(key);
    return { token: `kova_${prefix}.${secret}`, key: { ...key, lastUsedAt: null, revokedAt: null } };
  }

  /** authenticate: as KeyService.authenticate (one scrypt per unverified check, each behind `gate`). */
  async authenticate(token: string, gate?: HashGate): Promise<Principal | null> {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    const [, prefix, secret] = m as unknown as [string, string, string];
    const key = await this.catalogue.key(prefix);
    const digest = createHash('sha256').update(secret).digest();
    const now = this.clock.now();
    const cached = key && key.revokedAt === null ? this.verified.get(prefix) : undefined;
    let ok = cached !== undefined && cached.until > now && timingSafeEqual(cached.digest, digest);
    if (!ok) {
      await gate?.(prefix);
      this.dummyHash ??= hashSecret(randomBytes(32).toString('base64url'));
      ok = await this.checkHash(secret, key?.secretHash ?? (await this.dummyHash));
      if (!key || key.revokedAt !== null) return null;
      if (ok) this.verified.set(prefix, { digest, until: now + CACHE_MS });
    }
    if (!ok || !key) return null;
    const user = await this.catalogue.user(key.userId);
    if (!user) return null;
    if (key.lastUsedAt === null || now - key.lastUsedAt > TOUCH_EVERY_MS) await this.catalogue.touchKey(prefix, now);
    return { user: { id: user.id, name: user.name, createdAt: user.createdAt }, role: user.role, keyPrefix: prefix };
  }

  /** checkHash is the slow part of authenticate: one scrypt per call. */
  checkHash(secret: string, stored: string): Promise<boolean> {
    return checkSecret(secret, stored);
  }

  list(userId: string): Promise<ApiKey[]> {
    return this.catalogue.keys(userId);
  }

  async revoke(prefixOrToken: string, userId?: string): Promise<ApiKey> {
    const prefix = prefixOrToken.replace(/^kova_/, '').split('.')[0] ?? '';
    const mine = userId === undefined ? [] : await this.catalogue.keys(userId);
    const candidates = mine.filter((k) => k.prefix.startsWith(prefix) && prefix.length >= 4);
    if (candidates.length !== 1) throw new NotFoundError('API_KEY_NOT_FOUND', `no API key with prefix ${prefix}`);
    const key = candidates[0]!;
    const now = this.clock.now();
    await this.catalogue.revokeKey(key.prefix, now);
    this.verified.delete(key.prefix);
    return { ...key, revokedAt: now };
  }
}
