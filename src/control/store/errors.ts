/**
 * errors: the catalogue's errors, and the one place that turns a driver's
 * connection failure into DATABASE_UNAVAILABLE (HTTP 503), so the API
 * answers cleanly while PostgreSQL restarts and recovers once it is back.
 */
import { ConflictError, KovaError, NotFoundError, StorageUnavailableError } from '../../core/errors.js';

/** The catalogue's database cannot be reached right now; nothing was changed, retry later (HTTP 503). */
export class DatabaseUnavailableError extends KovaError {
  constructor(cause?: unknown) {
    const why = cause instanceof Error && cause.message ? `: ${cause.message}` : '';
    super('DATABASE_UNAVAILABLE', `the control plane's database is unavailable${why}; retry later`, { status: 503, cause });
  }
}

/** Another node already has this name (HTTP 409). */
export class NodeExistsError extends ConflictError {
  constructor(name: string) {
    super('NODE_EXISTS', `a node named ${name} already exists`, { name });
  }
}

/** The node still has deployments placed on it (HTTP 409). */
export class NodeInUseError extends ConflictError {
  constructor(name: string, deployments: number) {
    super(
      'NODE_IN_USE',
      `node ${name} still has ${deployments} deployment${deployments === 1 ? '' : 's'} placed on it; close or move them first`,
      { name, deployments },
    );
  }
}

/** No node has this id or name (HTTP 404). */
export class NodeNotFoundError extends NotFoundError {
  constructor(idOrName: string) {
    super('NODE_NOT_FOUND', `no node ${idOrName}`);
  }
}

/** A deployment id is already placed for another user or node (HTTP 409). */
export class DeploymentExistsError extends ConflictError {
  constructor(id: string) {
    super('DEPLOYMENT_EXISTS', `deployment ${id} is already placed elsewhere`, { id });
  }
}

/** Connection-level failures: PostgreSQL down, restarting, refusing or dropping connections; SQLite busy or failing I/O. */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);
const UNAVAILABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300']);
const UNAVAILABLE_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed)/;

export function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.has(code) || /^08...$/.test(code)) return true;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN') return true;
  }
  if (err instanceof AggregateError) return err.errors.some(isUnavailable);
  return err instanceof Error && UNAVAILABLE_MESSAGE.test(err.message);
}

/** A SQLite catalogue that cannot write: its disk is full or failing. */
function cannotWrite(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR'));
}

/**
 * toCatalogueError keeps KovaErrors, wraps connection failures, and passes
 * anything else (a bug) through. A SQLite catalogue (kova serve's
 * control.db) that cannot write is STORAGE_UNAVAILABLE, the code the
 * all-in-one has always answered for its full disk.
 */
export function toCatalogueError(err: unknown): unknown {
  if (err instanceof KovaError) return err;
  if (cannotWrite(err)) return new StorageUnavailableError(err);
  return isUnavailable(err) ? new DatabaseUnavailableError(err) : err;
}

/** Whether an error is a unique-constraint violation (PostgreSQL 23505, SQLite SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Whether an error is a foreign-key violation (PostgreSQL 23503, SQLite SQLITE_CONSTRAINT_FOREIGNKEY). */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
