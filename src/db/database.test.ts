/** database: the state database and its WAL are private to the owner (0600). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from './database.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-db-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const mode = (f: string): number => fs.statSync(f).mode & 0o777;

describe('openDatabase', () => {
  it('creates the database, its WAL and shared memory 0600, and a missing directory 0700, whatever the umask', () => {
    const old = process.umask(0o022);
    try {
      const file = path.join(dir, 'new', 'kova.db');
      const db = openDatabase(file);
      db.exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('secret')");
      expect(mode(path.dirname(file))).toBe(0o700);
      for (const f of [file, `${file}-wal`, `${file}-shm`]) expect({ f, mode: mode(f) }).toEqual({ f, mode: 0o600 });
      db.close();
    } finally {
      process.umask(old);
    }
  });

  it('narrows an existing database and its side files to 0600', () => {
    const file = path.join(dir, 'kova.db');
    openDatabase(file).close();
    // What an older version left: a database and an (empty) WAL readable by everyone.
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(`${file}-wal`, '');
    fs.chmodSync(`${file}-wal`, 0o644);
    const db = openDatabase(file);
    expect(mode(file)).toBe(0o600);
    expect(mode(`${file}-wal`)).toBe(0o600);
    expect(mode(`${file}-shm`)).toBe(0o600);
    db.close();
  });
});
