/**
 * database: the service's state in SQLite (better-sqlite3): WAL mode,
 * foreign keys on, versioned migrations applied at open. Statements are
 * synchronous, so a transaction is a plain function call: nothing else
 * runs in between on this process.
 *
 * The database holds SDL environment values and key hashes: the file, its
 * WAL and shared-memory files are mode 0600 (SQLite gives the -wal and -shm
 * files the mode of the database file), and a new parent directory 0700.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;
export type Statement = Database.Statement;

/** The companions SQLite keeps next to a database in WAL mode. */
const SIDE_FILES = ['-wal', '-shm', '-journal'] as const;

export function openDatabase(file: string): Db {
  if (file !== ':memory:') {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    makePrivate(file);
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/**
 * makePrivate creates the database file 0600 if it is missing (before
 * SQLite can create it under the process umask) and narrows an existing
 * one, and its side files, to 0600.
 */
function makePrivate(file: string): void {
  fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
  for (const f of [file, ...SIDE_FILES.map((s) => file + s)]) {
    try {
      if ((fs.statSync(f).mode & 0o777) !== 0o600) fs.chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** migrate applies every migration newer than the database's user_version, each in a transaction. */
export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this program (${MIGRATIONS.length}); upgrade kova`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
