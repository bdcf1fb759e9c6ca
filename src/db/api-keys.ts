/** api-keys: API keys; only a slow hash of each secret is stored. */
import { Table } from './table.js';

export interface ApiKey {
  readonly prefix: string;
  readonly userId: string;
  readonly secretHash: string;
  readonly label: string | null;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

interface Row {
  prefix: string;
  user_id: string;
  secret_hash: string;
  label: string | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

const toKey = (r: Row): ApiKey => ({
  prefix: r.prefix,
  userId: r.user_id,
  secretHash: r.secret_hash,
  label: r.label,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

export class ApiKeys extends Table {
  insert(k: Omit<ApiKey, 'lastUsedAt' | 'revokedAt'>): void {
    this.db
      .prepare('INSERT INTO api_keys (prefix, user_id, secret_hash, label, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(k.prefix, k.userId, k.secretHash, k.label, k.createdAt);
  }

  get(prefix: string): ApiKey | undefined {
    const r = this.q('SELECT * FROM api_keys WHERE prefix = ?').get(prefix) as Row | undefined;
    return r && toKey(r);
  }

  /** list returns a user's keys (or everyone's), newest first. */
  list(userId?: string): ApiKey[] {
    const rows = (
      userId
        ? this.q('SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, prefix').all(userId)
        : this.q('SELECT * FROM api_keys ORDER BY created_at DESC, prefix').all()
    ) as Row[];
    return rows.map(toKey);
  }

  revoke(prefix: string, at: number): boolean {
    return this.q('UPDATE api_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL').run(at, prefix).changes > 0;
  }

  touch(prefix: string, at: number): void {
    this.q('UPDATE api_keys SET last_used_at = ? WHERE prefix = ?').run(at, prefix);
  }
}
