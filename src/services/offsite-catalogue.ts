/**
 * offsite-catalogue: the all-in-one's catalogue as one JSON document, for
 * the encrypted copy in the bucket (offsite-service.ts writes it,
 * offsite-recovery.ts reads it back on a fresh machine).
 *
 * The document holds, read in one transaction (so it is consistent): users,
 * API keys (hashes only, as stored), active deployments with their SDL,
 * their snapshot and off-node settings, webhooks, and the ready snapshots'
 * rows. Rows are kept column by column as the database holds them, with the
 * database's schema version: a newer program can load an older catalogue
 * (its columns are a subset), an older program refuses a newer one.
 * Columns that change on every request (a key's last use) are left out, so
 * an unchanged catalogue is not written again.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../core/errors.js';
import type { Store } from '../db/store.js';
import { MIGRATIONS } from '../db/migrations.js';

export const CATALOGUE_OBJECT = 'catalogue.json';
const FORMAT = 'kova-catalogue';

type Row = Record<string, unknown>;

export interface CatalogueDocument {
  readonly kova: typeof FORMAT;
  readonly version: 1;
  readonly schemaVersion: number;
  readonly tables: Readonly<Record<string, readonly Row[]>>;
}

/** The tables, in an order that satisfies their foreign keys, and the rows of each the catalogue keeps. */
const TABLES: ReadonlyArray<{ readonly name: string; readonly where: string; readonly omit?: readonly string[] }> = [
  { name: 'users', where: '1' },
  { name: 'api_keys', where: 'revoked_at IS NULL', omit: ['last_used_at'] },
  { name: 'deployments', where: "status = 'active'" },
  { name: 'snapshot_settings', where: "deployment_id IN (SELECT id FROM deployments WHERE status = 'active')" },
  { name: 'offsite_settings', where: "deployment_id IN (SELECT id FROM deployments WHERE status = 'active')" },
  { name: 'webhooks', where: '1' },
  {
    name: 'snapshots',
    where: "status = 'ready' AND deployment_id IN (SELECT id FROM deployments WHERE status = 'active')",
    omit: ['progress_done', 'progress_total'],
  },
];

/** dumpCatalogue reads the catalogue in one transaction. */
export function dumpCatalogue(store: Store): CatalogueDocument {
  return store.tx(() => {
    const tables: Record<string, Row[]> = {};
    for (const t of TABLES) {
      const rows = store.db.prepare(`SELECT * FROM ${t.name} WHERE ${t.where} ORDER BY rowid`).all() as Row[];
      tables[t.name] = rows.map((r) => {
        const out: Row = { ...r };
        for (const c of t.omit ?? []) delete out[c];
        return out;
      });
    }
    return { kova: FORMAT, version: 1, schemaVersion: MIGRATIONS.length, tables };
  });
}

export function encodeCatalogue(doc: CatalogueDocument): Buffer {
  return Buffer.from(JSON.stringify(doc));
}

/** catalogueDigest identifies a catalogue's content (to skip writing an unchanged one). */
export function catalogueDigest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** decodeCatalogue parses and checks a catalogue document. */
export function decodeCatalogue(bytes: Buffer): CatalogueDocument {
  let doc: Partial<CatalogueDocument>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Partial<CatalogueDocument>;
  } catch {
    throw new ValidationError('INVALID_CATALOGUE', 'the catalogue in the bucket is not valid JSON');
  }
  if (doc.kova !== FORMAT || doc.version !== 1 || typeof doc.schemaVersion !== 'number' || typeof doc.tables !== 'object' || !doc.tables) {
    throw new ValidationError('INVALID_CATALOGUE', 'the object in the bucket is not a kova catalogue');
  }
  if (doc.schemaVersion > MIGRATIONS.length) {
    throw new ValidationError(
      'INVALID_CATALOGUE',
      `the catalogue was written by a newer kova (schema ${doc.schemaVersion}, this program knows ${MIGRATIONS.length}): upgrade kova`,
    );
  }
  return doc as CatalogueDocument;
}

/** insertRows inserts a table's rows as they were dumped (call inside a transaction). */
export function insertRows(store: Store, table: string, rows: readonly Row[]): void {
  if (!TABLES.some((t) => t.name === table)) throw new Error(`not a catalogue table: ${table}`);
  for (const r of rows) {
    const cols = Object.keys(r);
    if (cols.some((c) => !/^[a-z_]+$/.test(c))) throw new ValidationError('INVALID_CATALOGUE', `bad column name in table ${table}`);
    store.db.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((c) => r[c]));
  }
}
