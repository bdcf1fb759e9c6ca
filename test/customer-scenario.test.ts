/**
 * The customer's scenario, end to end through the API: a deployment keeps a
 * SQLite database in its volume; before a risky schema migration the owner
 * takes a snapshot labelled `before-migration`; the migration destroys data;
 * restoring the snapshot brings every row back exactly, and the safety
 * snapshot taken by the restore can undo the restore itself.
 *
 * The database is opened from the test process on the volume's host
 * directory (process runtime: the service itself only sleeps), in WAL mode
 * and still open while the snapshot is taken, as an application would hold it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployment, expectStatus, getDeployment, restoreCompleted, snapshotReady, volumeDir, waitRunning } from './helpers/flows.js';
import { type Harness, sdlFor, startHarness } from './helpers/harness.js';

interface Customer {
  id: number;
  name: string;
  email: string;
  balance: number;
}
interface Order {
  id: number;
  customer_id: number;
  total: number;
  note: string | null;
}

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
});

function seed(): { customers: Customer[]; orders: Order[] } {
  const customers: Customer[] = [];
  const orders: Order[] = [];
  for (let i = 1; i <= 400; i++) {
    customers.push({ id: i, name: `Customer ${i} ü`, email: `c${i}@example.test`, balance: Math.round(i * 13.37 * 100) / 100 });
    for (let j = 0; j < 3; j++)
      orders.push({ id: i * 10 + j, customer_id: i, total: i * 3 + j + 0.25, note: j === 1 ? null : `order ${j} of ${i}` });
  }
  return { customers, orders };
}

function columns(db: Database.Database, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
}

function tables(db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map(
    (t) => t.name,
  );
}

describe('customer scenario: snapshot before a destructive migration, then roll back', () => {
  it('restores every row of the SQLite database exactly, and the restore itself can be undone', async () => {
    const depId = await createDeployment(h.api, sdlFor('while true; do sleep 1; done'), 'shop');
    const dep0 = await waitRunning(h.api, depId);
    const dbFile = path.join(volumeDir(h.dataDir, depId), 'shop.db');

    // The application's data, committed, with the database still open (WAL mode).
    const { customers, orders } = seed();
    let db = new Database(dbFile);
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, balance REAL NOT NULL);
             CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total REAL NOT NULL, note TEXT);
             CREATE INDEX orders_by_customer ON orders(customer_id);`);
    const insC = db.prepare('INSERT INTO customers (id, name, email, balance) VALUES (@id, @name, @email, @balance)');
    const insO = db.prepare('INSERT INTO orders (id, customer_id, total, note) VALUES (@id, @customer_id, @total, @note)');
    db.transaction(() => {
      for (const c of customers) insC.run(c);
      for (const o of orders) insO.run(o);
    })();
    expect(fs.existsSync(`${dbFile}-wal`)).toBe(true);

    const snap = await snapshotReady(h.api, depId, 'before-migration');
    expect(snap.label).toBe('before-migration');
    expect(snap.automatic).toBe(false);
    expect(snap.size).toMatch(/^\d+(\.\d)? (B|KB|MB)$/);
    expect(snap.sizeBytes).toBeGreaterThan(0);

    const list = await h.api('GET', `/api/v1/deployments/${depId}/snapshots`);
    expectStatus(list, 200, 'list snapshots');
    expect(list.body.snapshots).toEqual([
      expect.objectContaining({
        id: snap.id,
        label: 'before-migration',
        status: 'ready',
        automatic: false,
        size: snap.size,
        createdAt: expect.any(String),
      }),
    ]);

    // The destructive migration.
    db.exec(`DROP TABLE orders;
             DELETE FROM customers WHERE id % 2 = 0;
             ALTER TABLE customers ADD COLUMN tier TEXT;
             UPDATE customers SET tier = 'gold', balance = 0;`);
    expect(tables(db)).toEqual(['customers']);
    expect((db.prepare('SELECT count(*) AS n FROM customers').get() as { n: number }).n).toBe(200);
    db.close(); // the application stops using the database before the owner restores

    const rst = await restoreCompleted(h.api, depId, snap.id);
    const dep1 = await waitRunning(h.api, depId);
    expect(dep1.services[0].startedAt).not.toBe(dep0.services[0].startedAt);

    db = new Database(dbFile, { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(tables(db)).toEqual(['customers', 'orders']);
      expect(columns(db, 'customers')).toEqual(['id', 'name', 'email', 'balance']);
      expect(db.prepare('SELECT id, name, email, balance FROM customers ORDER BY id').all()).toEqual(customers);
      expect(db.prepare('SELECT id, customer_id, total, note FROM orders ORDER BY id').all()).toEqual(orders);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'orders_by_customer'").get()).toBeTruthy();
    } finally {
      db.close();
    }

    // The restore took a safety snapshot of the migrated state: restoring it undoes the restore.
    expect(rst.safetySnapshotId).toMatch(/^snap-/);
    const all = await h.api('GET', `/api/v1/deployments/${depId}/snapshots`);
    const safety = all.body.snapshots.find((s: { id: string }) => s.id === rst.safetySnapshotId);
    expect(safety).toMatchObject({ status: 'ready', label: `before-restore-${snap.id}`, automatic: false });
    await restoreCompleted(h.api, depId, rst.safetySnapshotId, { safetySnapshot: false });
    db = new Database(dbFile, { readonly: true });
    try {
      expect(tables(db)).toEqual(['customers']);
      expect(columns(db, 'customers')).toEqual(['id', 'name', 'email', 'balance', 'tier']);
      expect((db.prepare("SELECT count(*) AS n FROM customers WHERE tier = 'gold' AND id % 2 = 1").get() as { n: number }).n).toBe(200);
    } finally {
      db.close();
    }

    // And back once more to before the migration: the snapshot is still there, unchanged.
    await restoreCompleted(h.api, depId, snap.id, { safetySnapshot: false });
    db = new Database(dbFile, { readonly: true });
    try {
      expect(db.prepare('SELECT id, name, email, balance FROM customers ORDER BY id').all()).toEqual(customers);
      expect(db.prepare('SELECT count(*) AS n FROM orders').get()).toEqual({ n: orders.length });
    } finally {
      db.close();
    }
    expect((await getDeployment(h.api, depId)).status).toBe('active');
  });
});
