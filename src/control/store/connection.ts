/**
 * connection: which database a catalogue URL names, and the query builder
 * over it. `postgres://…` and `postgresql://…` are PostgreSQL (a pg Pool,
 * which opens fresh connections after PostgreSQL restarts); `sqlite:PATH`,
 * a plain file path or `:memory:` is SQLite (better-sqlite3, WAL, foreign
 * keys on, file mode 0600). Options and their defaults live here.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { type Clock, systemClock } from '../../core/clock.js';
import { InvalidInputError } from '../../core/errors.js';
import type { Schema } from './schema.js';
import { type Wakeup, localWakeup, pgWakeup } from './wake.js';

export type DialectName = 'postgres' | 'sqlite';

export interface CatalogueOptions {
  /** Where the times the catalogue records itself (delivery) come from. Default the system clock. */
  readonly clock?: Clock;
  /** How often a waiting long poll re-reads the database without a wake. Default 1 s (PostgreSQL), 100 ms (SQLite). */
  readonly pollMs?: number;
  /** PostgreSQL connections per catalogue (besides the LISTEN one). Default 10. */
  readonly poolSize?: number;
  /** How long a query waits for a PostgreSQL connection before DATABASE_UNAVAILABLE. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** How long finished operations and expired rate windows are kept. Default a day. */
  readonly retainFinishedMs?: number;
}

export const DEFAULTS = {
  pollMsPostgres: 1_000,
  pollMsSqlite: 100,
  poolSize: 10,
  connectTimeoutMs: 5_000,
  reconnectMaxMs: 2_000,
  retainFinishedMs: 24 * 3600_000,
  /** Parsed deployment documents a catalogue keeps (deployments.ts). */
  cachedDocuments: 500,
  /** Housekeeping (pruning) runs at most this often per catalogue. */
  pruneEveryMs: 60_000,
} as const;

export type Target = { readonly dialect: 'postgres'; readonly url: string } | { readonly dialect: 'sqlite'; readonly file: string };

export function parseTarget(url: string): Target {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', url };
  const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
  if (file === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(file)) {
    throw new InvalidInputError(`unsupported database URL ${url}: use postgres://…, sqlite:PATH, a file path or :memory:`, { url });
  }
  return { dialect: 'sqlite', file: file === ':memory:' ? file : path.resolve(file) };
}

/** Everything a part of the catalogue needs: the query builder and how to wake other replicas. */
export interface Conn {
  readonly db: Kysely<Schema>;
  readonly dialect: DialectName;
  readonly wake: Wakeup;
  readonly clock: Clock;
  readonly pollMs: number;
  readonly retainFinishedMs: number;
  close(): Promise<void>;
}

/** BIGINT (times, counts) arrive as strings from pg; the catalogue's values all fit in a double. */
const INT8_OID = 20;
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export function connect(url: string, opts: CatalogueOptions = {}): Conn {
  const target = parseTarget(url);
  const clock = opts.clock ?? systemClock;
  const retainFinishedMs = opts.retainFinishedMs ?? DEFAULTS.retainFinishedMs;
  if (target.dialect === 'postgres') {
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    const pool = new pg.Pool({
      connectionString: target.url,
      max: opts.poolSize ?? DEFAULTS.poolSize,
      connectionTimeoutMillis: connectTimeoutMs,
      types: pgTypes,
    });
    // An idle connection that PostgreSQL closes (restart, admin shutdown) is dropped by the pool; not a crash.
    pool.on('error', () => undefined);
    // A connection PostgreSQL closes while it is checked out (between two statements of a transaction)
    // emits 'error' on its client, which nothing else listens to: without this the process dies. The
    // statement in flight, or the next one, fails with the connection error (DATABASE_UNAVAILABLE).
    pool.on('connect', (client) => client.on('error', () => undefined));
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    const wake = pgWakeup({
      connectionString: target.url,
      connectTimeoutMs,
      reconnectMaxMs: DEFAULTS.reconnectMaxMs,
      send: async (channel, payload) => {
        await sql`SELECT pg_notify(${channel}, ${payload})`.execute(db);
      },
    });
    return {
      db,
      dialect: 'postgres',
      wake,
      clock,
      pollMs: opts.pollMs ?? DEFAULTS.pollMsPostgres,
      retainFinishedMs,
      close: async () => {
        await wake.close();
        await db.destroy();
      },
    };
  }
  const shared = openSqlite(target.file);
  return {
    db: shared.db,
    dialect: 'sqlite',
    wake: shared.wake,
    clock,
    pollMs: opts.pollMs ?? DEFAULTS.pollMsSqlite,
    retainFinishedMs,
    close: () => shared.release(),
  };
}

/**
 * Catalogues on one SQLite file in one process share its connection: the
 * driver serialises its queries and transactions, where two connections in
 * one thread would deadlock (a synchronous busy wait blocks the event loop
 * the other connection's transaction needs to finish).
 */
const sqliteFiles = new Map<string, { db: Kysely<Schema>; wake: Wakeup; users: number }>();

function openSqlite(file: string): { db: Kysely<Schema>; wake: Wakeup; release(): Promise<void> } {
  let entry = file === ':memory:' ? undefined : sqliteFiles.get(file);
  if (!entry) {
    if (file !== ':memory:') {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // Created 0600 before SQLite creates it under the umask: the file holds key and token hashes.
      fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
    }
    const database = new Database(file);
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
    entry = { db: new Kysely<Schema>({ dialect: new SqliteDialect({ database }) }), wake: localWakeup(), users: 0 };
    if (file !== ':memory:') sqliteFiles.set(file, entry);
  }
  const e = entry;
  e.users++;
  let released = false;
  return {
    db: e.db,
    wake: e.wake,
    release: async () => {
      if (released || --e.users > 0) return;
      released = true;
      if (sqliteFiles.get(file) === e) sqliteFiles.delete(file);
      await e.wake.close();
      await e.db.destroy();
    },
  };
}
