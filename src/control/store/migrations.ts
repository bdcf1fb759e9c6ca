/**
 * migrations: the catalogue's schema, applied when a catalogue opens. Never
 * edit a released entry; append a new one. Kysely's Migrator records what
 * ran (kysely_migration). On PostgreSQL the whole run holds a session
 * advisory lock, on SQLite the database's write lock (BEGIN IMMEDIATE), so
 * replicas that start together migrate one after the other and the later
 * ones find nothing left to do.
 */
import { type Kysely, type Migration, Migrator, sql } from 'kysely';
import type { DialectName } from './connection.js';

/** The advisory lock key every replica takes around migrating ('kova' in ASCII). */
const MIGRATION_LOCK = 0x6b6f7661;

// Migrations see an untyped builder: the typed schema describes the latest version only.
/* eslint-disable @typescript-eslint/no-explicit-any */
type AnyDb = Kysely<any>;

function migrations(dialect: DialectName): Record<string, Migration> {
  return {
    '0001-catalogue': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('role', 'text', (c) => c.notNull().check(sql`role IN ('admin', 'user')`))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('api_keys')
          .addColumn('prefix', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('label', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_used_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema.createIndex('api_keys_by_user').on('api_keys').columns(['user_id', 'created_at']).execute();
        await db.schema
          .createTable('nodes')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('draining', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_heartbeat_at', 'bigint')
          .addColumn('capacity', 'text')
          .addColumn('version', 'text')
          .addColumn('runtime', 'text')
          .addColumn('boot_id', 'text')
          .execute();
        // No cascade from nodes: a node with a placement cannot be deleted under it (removeNode relies on it).
        await db.schema
          .createTable('deployments')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('node_id', 'text', (c) => c.notNull().references('nodes.id'))
          .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('placed', 'active', 'closed')`))
          .addColumn('version', 'bigint')
          .addColumn('state', 'text')
          .addColumn('reserved_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('deployments_by_user').on('deployments').columns(['user_id', 'created_at']).execute();
        await db.schema.createIndex('deployments_by_node').on('deployments').columns(['node_id', 'status']).execute();
        await db.schema
          .createTable('operations')
          .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('node_id', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('deployment_id', 'text')
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('queued', 'delivered', 'done', 'failed', 'cancelled')`))
          .addColumn('result', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('delivered_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .execute();
        await db.schema.createIndex('operations_by_node').on('operations').columns(['node_id', 'status', 'seq']).execute();
        await db.schema.createIndex('operations_by_finish').on('operations').column('finished_at').execute();
        await db.schema
          .createTable('rate_counters')
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('window_start', 'bigint', (c) => c.notNull())
          .addColumn('count', 'integer', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('rate_counters_pk', ['key', 'window_start'])
          .execute();
        await db.schema.createIndex('rate_counters_by_expiry').on('rate_counters').column('expires_at').execute();
      },
    },
    '0002-offsite': {
      async up(db: AnyDb) {
        // The off-node target a node copies to (told in hello): recovery moves a deployment only between nodes naming the same.
        await db.schema.alterTable('nodes').addColumn('offsite_target', 'text').execute();
        // Where a deployment ran before a recovery moved it: that node is told to forget it, and its documents are refused.
        await db.schema.alterTable('deployments').addColumn('moved_from', 'text').execute();
      },
    },
    '0003-reads': {
      async up(db: AnyDb) {
        // Browse requests relayed to nodes (relay.ts): short-lived rows, deleted when answered or expired.
        await db.schema
          .createTable('reads')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('node_id', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('deployment_id', 'text', (c) => c.notNull())
          .addColumn('request', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('queued', 'delivered', 'answered')`))
          .addColumn('response_status', 'integer')
          .addColumn('response_meta', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('reads_by_node').on('reads').columns(['node_id', 'status']).execute();
        await db.schema.createIndex('reads_by_expiry').on('reads').column('expires_at').execute();
        // Deleting a read deletes its chunks, also one a replica is inserting at that moment (the key lock orders them).
        await db.schema
          .createTable('read_chunks')
          .addColumn('read_id', 'text', (c) => c.notNull().references('reads.id').onDelete('cascade'))
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('data', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
          .addColumn('last', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('read_chunks_pk', ['read_id', 'seq'])
          .execute();
      },
    },
    '0004-webhooks': {
      async up(db: AnyDb) {
        // Users' webhooks (src/control/webhooks.ts): the secret is kept as given, the replicas sign with it.
        await db.schema
          .createTable('webhooks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('webhooks_by_user').on('webhooks').columns(['user_id', 'created_at']).execute();
        // One row per delivery of an event to a webhook; `lease` names the claim of the replica sending it.
        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('event', 'text', (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('pending', 'delivered', 'failed')`))
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'bigint')
          .addColumn('lease', 'text')
          .addColumn('response_status', 'integer')
          .addColumn('error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_attempt_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .execute();
        await db.schema.createIndex('webhook_deliveries_by_hook').on('webhook_deliveries').columns(['webhook_id', 'seq']).execute();
        await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
        // The events the nodes reported, by the id the node chose: a resent event is recorded once.
        await db.schema
          .createTable('webhook_events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('node_id', 'text', (c) => c.notNull())
          .addColumn('deployment_id', 'text', (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('webhook_events_by_time').on('webhook_events').column('received_at').execute();
      },
    },
  };
}

/** runMigrator applies what is missing; `transactions` false when the caller already holds one. */
async function runMigrator(db: AnyDb, dialect: DialectName, transactions: boolean): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations(dialect)) },
    disableTransactions: !transactions,
  });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}

/** migrate brings the schema to the latest version (a no-op when it is). */
export async function migrate(db: AnyDb, dialect: DialectName): Promise<void> {
  if (dialect === 'sqlite') {
    // The write lock first (waiting out busy_timeout), so a second process opening the file migrates after.
    await db.connection().execute(async (conn) => {
      await sql`BEGIN IMMEDIATE`.execute(conn);
      try {
        await runMigrator(conn, dialect, false);
        await sql`COMMIT`.execute(conn);
      } catch (err) {
        await sql`ROLLBACK`.execute(conn).catch(() => undefined);
        throw err;
      }
    });
    return;
  }
  await db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`.execute(conn);
    try {
      await runMigrator(conn, dialect, true);
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`.execute(conn);
    }
  });
}

/** The number of migrations this program knows (tests compare it with what the database recorded). */
export const MIGRATION_COUNT = Object.keys(migrations('sqlite')).length;
