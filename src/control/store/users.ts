/**
 * users: the control plane's users (with their role) and their API keys,
 * stored as the node stores them (prefix, scrypt hash of the secret), so
 * the key service's format and checks apply unchanged.
 */
import { newId } from '../../core/ids.js';
import type { ApiKey } from '../../db/api-keys.js';
import type { Catalogue, CatalogueUser } from '../catalogue.js';
import type { Conn } from './connection.js';
import type { ApiKeysTable, UsersTable } from './schema.js';

type UserPart = Pick<
  Catalogue,
  | 'ensureUser'
  | 'user'
  | 'userByName'
  | 'countUsers'
  | 'insertKey'
  | 'importUser'
  | 'importKey'
  | 'key'
  | 'keys'
  | 'allKeys'
  | 'revokeKey'
  | 'touchKey'
>;

const toUser = (r: UsersTable): CatalogueUser => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at });

const toKey = (r: ApiKeysTable): ApiKey => ({
  prefix: r.prefix,
  userId: r.user_id,
  secretHash: r.secret_hash,
  label: r.label,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** keyRow is toKey's inverse: the row a key is stored as. */
const keyRow = (k: ApiKey): ApiKeysTable => ({
  prefix: k.prefix,
  user_id: k.userId,
  secret_hash: k.secretHash,
  label: k.label,
  created_at: k.createdAt,
  last_used_at: k.lastUsedAt,
  revoked_at: k.revokedAt,
});

export function users({ db }: Conn): UserPart {
  const userByName = async (name: string): Promise<CatalogueUser | undefined> => {
    const r = await db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toUser(r);
  };
  return {
    // Insert-if-absent in one statement: two replicas creating the same user at once get the same row.
    async ensureUser(name, role, at) {
      await db
        .insertInto('users')
        .values({ id: newId('usr'), name, role, created_at: at })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      const u = await userByName(name);
      if (!u) throw new Error(`user ${name} vanished right after it was ensured`);
      return u;
    },
    async user(id) {
      const r = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return r && toUser(r);
    },
    userByName,
    async countUsers() {
      const r = await db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      return Number(r.n);
    },
    async insertKey(k) {
      await db
        .insertInto('api_keys')
        .values(keyRow({ ...k, lastUsedAt: null, revokedAt: null }))
        .execute();
    },
    async importUser(u) {
      await db
        .insertInto('users')
        .values({ id: u.id, name: u.name, role: u.role, created_at: u.createdAt })
        .onConflict((oc) => oc.doNothing())
        .execute();
    },
    async importKey(k) {
      await db
        .insertInto('api_keys')
        .values(keyRow(k))
        .onConflict((oc) => oc.column('prefix').doNothing())
        .execute();
    },
    async key(prefix) {
      const r = await db.selectFrom('api_keys').selectAll().where('prefix', '=', prefix).executeTakeFirst();
      return r && toKey(r);
    },
    async keys(userId) {
      const rows = await db
        .selectFrom('api_keys')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('prefix')
        .execute();
      return rows.map(toKey);
    },
    async allKeys() {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc').orderBy('prefix').execute();
      return rows.map(toKey);
    },
    async revokeKey(prefix, at) {
      const r = await db
        .updateTable('api_keys')
        .set({ revoked_at: at })
        .where('prefix', '=', prefix)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async touchKey(prefix, at) {
      await db.updateTable('api_keys').set({ last_used_at: at }).where('prefix', '=', prefix).execute();
    },
  };
}
