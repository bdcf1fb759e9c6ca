/**
 * store: the catalogue on PostgreSQL or SQLite. openCatalogue connects,
 * migrates (safe when several replicas start at once) and returns the
 * Catalogue whose every method turns a lost database connection into
 * DATABASE_UNAVAILABLE (HTTP 503); the pg Pool reconnects by itself once
 * PostgreSQL is back.
 */
import type { Catalogue } from '../catalogue.js';
import { type CatalogueOptions, connect } from './connection.js';
import { deployments } from './deployments.js';
import { toCatalogueError } from './errors.js';
import { migrate } from './migrations.js';
import { nodes } from './nodes.js';
import { operations } from './operations.js';
import { rates } from './rates.js';
import { reads } from './reads.js';
import { users } from './users.js';
import { webhooks } from './webhooks.js';

export type { CatalogueOptions } from './connection.js';
export { DEFAULTS, parseTarget } from './connection.js';
export { DatabaseUnavailableError, DeploymentExistsError, NodeExistsError, NodeInUseError, NodeNotFoundError } from './errors.js';
export { checkNodeName } from './nodes.js';
export { hashNodeToken, isNodeToken, newNodeToken } from './tokens.js';

/** openCatalogue opens `url` (postgres://…, postgresql://…, sqlite:PATH, a file path or :memory:). */
export async function openCatalogue(url: string, opts: CatalogueOptions = {}): Promise<Catalogue> {
  const conn = connect(url, opts);
  try {
    await migrate(conn.db, conn.dialect);
  } catch (err) {
    await conn.close();
    throw toCatalogueError(err);
  }
  const parts = {
    ...users(conn),
    ...nodes(conn),
    ...deployments(conn),
    ...operations(conn),
    ...reads(conn),
    ...rates(conn),
    ...webhooks(conn),
    close: () => conn.close(),
  };
  const guarded = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(parts) as Array<[string, (...a: unknown[]) => Promise<unknown>]>) {
    guarded[name] = async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toCatalogueError(err);
      }
    };
  }
  return guarded as unknown as Catalogue;
}
