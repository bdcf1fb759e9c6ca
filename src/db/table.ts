/**
 * table: the base of the table modules: prepared statements, compiled once
 * per SQL text and reused (better-sqlite3 statements are cheap to run and
 * comparatively costly to prepare).
 */
import type { Db, Statement } from './database.js';

export abstract class Table {
  private readonly statements = new Map<string, Statement>();

  constructor(protected readonly db: Db) {}

  /** q returns the prepared statement for `sql`. */
  protected q(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }
}
