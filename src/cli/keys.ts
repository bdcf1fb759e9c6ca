/**
 * keys: `kova keys …`, API key administration in this data directory's
 * catalogue (control.db, what `kova serve` checks), and `keys create
 * --database URL` for a user of a network-mode control plane.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { Catalogue, Role } from '../control/catalogue.js';
import { iso, systemClock } from '../core/clock.js';
import { InvalidInputError, NotFoundError } from '../core/errors.js';
import { DATABASE_OPTION, databaseUrl, withCatalogue } from './catalogue.js';
import { type Io, note, printJson, println, table } from './output.js';

/**
 * withLocalCatalogue opens this node's catalogue (DATA/control.db, where
 * `kova serve` checks API keys), taking over kova.db's users and keys first
 * if the server has not run since the catalogue exists; what `fn` changed
 * is copied into kova.db after it (mirrorKeys), as the server does.
 */
async function withLocalCatalogue<T>(dataDir: string | undefined, fn: (c: Catalogue, maxKeysPerUser: number) => Promise<T>): Promise<T> {
  const [{ loadConfig }, { Store }, local] = await Promise.all([
    import('../app/config.js'),
    import('../db/store.js'),
    import('../app/local-control.js'),
  ]);
  const cfg = loadConfig({ dataDir });
  const store = Store.open(path.join(cfg.dataDir, 'kova.db'));
  try {
    const c = await local.openLocalCatalogue(cfg.dataDir, systemClock);
    try {
      await local.adoptLocalNode(c, store, systemClock);
      const result = await fn(c, cfg.maxKeysPerUser);
      await local.mirrorKeys(c, store);
      return result;
    } finally {
      await c.close();
    }
  } finally {
    store.close();
  }
}

export function registerKeys(program: Command, io: Io): void {
  const keys = program.command('keys').description("manage the API keys kova serve checks (this data directory's catalogue)");
  const dataDir = ['--data-dir <dir>', 'data directory [KOVA_DATA_DIR] (default ./.kova)'] as const;

  keys
    .command('create')
    .description('create a key (and the user if new); prints the key on the last line')
    .requiredOption('--user <name>', 'the user the key belongs to')
    .option('--label <text>', 'what the key is for')
    .option('--role <role>', 'the role of a new user, admin or user (default user; admin for the user named admin)')
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
        const { maxKeysPerUser } = (await import('../app/config.js')).loadConfig();
        await withCatalogue(url, async (c) => {
          const role: Role = (o.role as Role | undefined) ?? 'user';
          const label = o.label ?? null;
          const r = await createCatalogueKey(c, { user: o.user, role, label, now: systemClock.now(), maxKeysPerUser });
          if (r.roleKept) note(io, `user ${o.user} exists with role ${r.roleKept}; its role is unchanged`);
          println(io, r.token);
        });
        return;
      }
      const { createCatalogueKey } = await import('./keys-database.js');
      await withLocalCatalogue(o.dataDir, async (c, maxKeysPerUser) => {
        // As at the upgrade: the user named admin is an admin.
        const role: Role = (o.role as Role | undefined) ?? (o.user === 'admin' ? 'admin' : 'user');
        const r = await createCatalogueKey(c, { user: o.user, role, label: o.label ?? null, now: systemClock.now(), maxKeysPerUser });
        if (r.roleKept) note(io, `user ${o.user} exists with role ${r.roleKept}; its role is unchanged`);
        println(io, r.token);
      });
    });

  keys
    .command('list')
    .description('list keys (never their secrets)')
    .option('--json', 'print JSON')
    .option(...dataDir)
    .action(async (o: { json?: boolean; dataDir?: string }) => {
      await withLocalCatalogue(o.dataDir, async (c) => {
        const names = new Map<string, string>();
        for (const key of await c.allKeys()) {
          if (!names.has(key.userId)) names.set(key.userId, (await c.user(key.userId))?.name ?? key.userId);
        }
        const rows = (await c.allKeys()).map((key) => ({
          prefix: key.prefix,
          user: names.get(key.userId) ?? key.userId,
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
      await withLocalCatalogue(o.dataDir, async (c) => {
        const p = prefix.replace(/^kova_/, '').split('.')[0] ?? '';
        const candidates = (await c.allKeys()).filter((k) => k.prefix.startsWith(p) && p.length >= 4);
        if (candidates.length !== 1) throw new NotFoundError('API_KEY_NOT_FOUND', `no API key with prefix ${p}`);
        await c.revokeKey(candidates[0]!.prefix, systemClock.now());
        println(io, `revoked key ${candidates[0]!.prefix}`);
      });
    });
}
