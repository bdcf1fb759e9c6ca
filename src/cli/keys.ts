/**
 * keys: `kova keys …`, API key administration on this node's database, and
 * `keys create --database URL` for a user of the control plane.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../app/config.js';
import type { Role } from '../control/catalogue.js';
import { iso, systemClock } from '../core/clock.js';
import { InvalidInputError } from '../core/errors.js';
import type { Store } from '../db/store.js';
import type { KeyService } from '../services/keys.js';
import { DATABASE_OPTION, databaseUrl, withCatalogue } from './catalogue.js';
import { type Io, note, printJson, println, table } from './output.js';

async function withKeys<T>(dataDir: string | undefined, fn: (keys: KeyService, store: Store) => Promise<T> | T): Promise<T> {
  const cfg = loadConfig({ dataDir });
  const [{ Store }, { KeyService }] = await Promise.all([import('../db/store.js'), import('../services/keys.js')]);
  const store = Store.open(path.join(cfg.dataDir, 'kova.db'));
  try {
    return await fn(new KeyService(store, systemClock, { maxKeysPerUser: cfg.maxKeysPerUser }), store);
  } finally {
    store.close();
  }
}

export function registerKeys(program: Command, io: Io): void {
  const keys = program.command('keys').description("manage API keys in this node's database");
  const dataDir = ['--data-dir <dir>', 'data directory [KOVA_DATA_DIR] (default ./.kova)'] as const;

  keys
    .command('create')
    .description('create a key (and the user if new); prints the key on the last line')
    .requiredOption('--user <name>', 'the user the key belongs to')
    .option('--label <text>', 'what the key is for')
    .option('--role <role>', 'with --database: the role of a new user, admin or user (default user)')
    .option(...dataDir)
    .option(...DATABASE_OPTION)
    .action(async (o: { user: string; label?: string; role?: string; dataDir?: string; database?: string }) => {
      // --database wins, then --data-dir, then KOVA_DATABASE_URL, then this node's default data directory.
      if (o.database !== undefined && o.dataDir !== undefined) throw new InvalidInputError('give --database or --data-dir, not both');
      const url = o.dataDir === undefined ? databaseUrl(o.database) : undefined;
      if (o.role !== undefined && o.role !== 'admin' && o.role !== 'user') {
        throw new InvalidInputError(`--role ${o.role}: use admin or user`);
      }
      if (url !== undefined) {
        const { createCatalogueKey } = await import('./keys-database.js');
        const { maxKeysPerUser } = loadConfig();
        await withCatalogue(url, async (c) => {
          const role: Role = (o.role as Role | undefined) ?? 'user';
          const label = o.label ?? null;
          const r = await createCatalogueKey(c, { user: o.user, role, label, now: systemClock.now(), maxKeysPerUser });
          if (r.roleKept) note(io, `user ${o.user} exists with role ${r.roleKept}; its role is unchanged`);
          println(io, r.token);
        });
        return;
      }
      if (o.role !== undefined) throw new InvalidInputError("--role needs --database: this node's database has no roles");
      await withKeys(o.dataDir, async (k) => {
        const user = k.ensureUser(o.user);
        const { token } = await k.create(user.id, o.label ?? null);
        println(io, token);
      });
    });

  keys
    .command('list')
    .description('list keys (never their secrets)')
    .option('--json', 'print JSON')
    .option(...dataDir)
    .action(async (o: { json?: boolean; dataDir?: string }) => {
      await withKeys(o.dataDir, (_k, store) => {
        const rows = store.apiKeys.list().map((key) => ({
          prefix: key.prefix,
          user: store.users.get(key.userId)?.name ?? key.userId,
          label: key.label,
          createdAt: iso(key.createdAt),
          lastUsedAt: key.lastUsedAt === null ? null : iso(key.lastUsedAt),
          revoked: key.revokedAt !== null,
        }));
        if (o.json) return printJson(io, rows);
        if (rows.length === 0) return println(io, 'no keys');
        table(
          io,
          ['PREFIX', 'USER', 'LABEL', 'CREATED', 'LAST USED', 'STATE'],
          rows.map((r) => [r.prefix, r.user, r.label ?? '', r.createdAt, r.lastUsedAt ?? 'never', r.revoked ? 'revoked' : 'active']),
        );
      });
    });

  keys
    .command('revoke')
    .description('revoke a key at once, by its prefix (or the whole key)')
    .argument('<prefix>', 'the key prefix shown by "keys list"')
    .option(...dataDir)
    .action(async (prefix: string, o: { dataDir?: string }) => {
      await withKeys(o.dataDir, (k) => {
        const key = k.revoke(prefix);
        println(io, `revoked key ${key.prefix}`);
      });
    });
}
