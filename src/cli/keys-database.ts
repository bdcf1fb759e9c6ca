/**
 * keys-database: `kova keys create --database URL`, a key for a user of the
 * control plane. The key has the node's format and hash (`kova_<prefix>.
 * <secret>`, scrypt through services/keys.ts), so the API checks it the same
 * way; the user is created with `role` if new.
 */
import { randomBytes } from 'node:crypto';
import type { Catalogue, Role } from '../control/catalogue.js';
import { ConflictError, ValidationError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { LABEL_TEXT, checkText } from '../core/text.js';
import { hashSecret } from '../services/keys.js';

/** The user-name rule of KeyService.ensureUser, with the same code. */
const USER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

export interface CreatedKey {
  readonly token: string;
  /** Whether the user already existed with another role (which is left as it is). */
  readonly roleKept: Role | null;
}

export async function createCatalogueKey(
  c: Catalogue,
  opts: { user: string; role: Role; label: string | null; now: number; maxKeysPerUser: number },
): Promise<CreatedKey> {
  if (!USER_NAME.test(opts.user)) {
    throw new ValidationError(
      'INVALID_USER',
      'user names are 1-32 characters: lower-case letters, digits, - and _, starting with a letter',
    );
  }
  const label = opts.label === null ? null : checkText(opts.label, LABEL_TEXT);
  const user = await c.ensureUser(opts.user, opts.role, opts.now);
  const active = (await c.keys(user.id)).filter((k) => k.revokedAt === null).length;
  if (active >= opts.maxKeysPerUser) {
    throw new ConflictError('KEY_LIMIT', `a user may have at most ${opts.maxKeysPerUser} active API keys; revoke one first`, {
      max: opts.maxKeysPerUser,
    });
  }
  const prefix = newId('k').slice(2);
  const secret = randomBytes(32).toString('base64url');
  await c.insertKey({ prefix, userId: user.id, secretHash: await hashSecret(secret), label, createdAt: opts.now });
  return { token: `kova_${prefix}.${secret}`, roleKept: user.role === opts.role ? null : user.role };
}
