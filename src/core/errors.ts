/**
 * Errors with stable codes.
 *
 * Every error the product raises on purpose is a `KovaError` with a `code`
 * that never changes meaning (documented in docs/api.md and docs/format.md),
 * an HTTP status for the API layer, readonly `details` for context and the
 * native `cause`. Anything else that escapes is a bug and is reported as an
 * internal error without its message.
 */

export type ErrorDetails = Readonly<Record<string, unknown>>;

export class KovaError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: ErrorDetails;

  constructor(code: string, message: string, opts: { status?: number; details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KovaError';
    this.code = code;
    this.status = opts.status ?? 500;
    this.details = opts.details ?? {};
  }
}

/** The repository does not exist or is not a Kova repository. */
export class RepoNotFoundError extends KovaError {
  constructor(path: string) {
    super('REPO_NOT_FOUND', `no repository at ${path}`, { status: 404, details: { path } });
  }
}

/** Another process holds a conflicting repository lock. */
export class RepoLockedError extends KovaError {
  constructor(holder: string) {
    super('REPO_LOCKED', `repository is locked by ${holder}`, { status: 409, details: { holder } });
  }
}

/** No snapshot has this id (or the prefix matched none). */
export class SnapshotNotFoundError extends KovaError {
  constructor(id: string) {
    super('SNAPSHOT_NOT_FOUND', `snapshot ${id} not found`, { status: 404, details: { id } });
  }
}

/** A prefix matched more than one snapshot. */
export class AmbiguousIdError extends KovaError {
  constructor(prefix: string) {
    super('AMBIGUOUS_ID', `snapshot id prefix ${prefix} is ambiguous`, { status: 400, details: { prefix } });
  }
}

/** The restore target exists and is not an empty directory. */
export class TargetNotEmptyError extends KovaError {
  constructor(path: string) {
    super('TARGET_NOT_EMPTY', `restore target ${path} is not an empty directory`, { status: 409, details: { path } });
  }
}

/**
 * Stored data does not match its hash, a structure is malformed, or a
 * referenced object is missing. Nothing is written from corrupt data.
 */
export class CorruptionError extends KovaError {
  constructor(message: string, details: ErrorDetails = {}, cause?: unknown) {
    super('REPO_CORRUPT', message, { status: 500, details, cause });
  }
}

/** Invalid input from a caller (bad option, bad path). */
export class InvalidInputError extends KovaError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('INVALID_INPUT', message, { status: 400, details });
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends KovaError {
  constructor(what = 'operation') {
    super('ABORTED', `${what} was cancelled`, { status: 409 });
  }
}

/** Narrows an unknown error to a Node.js system error with an errno code. */
export function isErrno(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    (codes.length === 0 || codes.includes((err as NodeJS.ErrnoException).code as string))
  );
}

/** The request is malformed or a value is out of range (HTTP 400). */
export class ValidationError extends KovaError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(code, message, { status: 400, details });
  }
}

/** The thing does not exist, or belongs to someone else (HTTP 404). */
export class NotFoundError extends KovaError {
  constructor(code: string, message: string) {
    super(code, message, { status: 404 });
  }
}

/** The request conflicts with the current state (HTTP 409). */
export class ConflictError extends KovaError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(code, message, { status: 409, details });
  }
}

/** Whether an error is the kernel saying a filesystem (or a quota on it) is full. */
export function isNoSpace(err: unknown): boolean {
  return isErrno(err, 'ENOSPC', 'EDQUOT');
}

/**
 * A write failed because the filesystem holding `path` is full (ENOSPC or
 * EDQUOT). What the failed operation wrote has been removed again.
 */
export class DiskFullError extends KovaError {
  constructor(what: string, path: string, freeBytes: number | null, cause?: unknown) {
    const free = freeBytes === null ? '' : `: ${freeBytes} bytes free`;
    super('DISK_FULL', `the disk holding the ${what} is full${free}`, { status: 507, details: { path, freeBytes }, cause });
  }
}

/** An operation was refused before it started: its target filesystem lacks the room it needs. */
export class InsufficientSpaceError extends KovaError {
  /** With `inodes`, the bytes fit and the inodes (files and directories) do not. */
  constructor(what: string, path: string, neededBytes: number, freeBytes: number, inodes?: { needed: number; free: number }) {
    super(
      'INSUFFICIENT_SPACE',
      inodes
        ? `not enough free inodes for the ${what}: it creates ${inodes.needed} files and directories, the disk has ${inodes.free} inodes free`
        : `not enough free space for the ${what}: it needs ${neededBytes} bytes, the disk has ${freeBytes} bytes free`,
      {
        status: 507,
        details: inodes
          ? { path, neededBytes, freeBytes, neededInodes: inodes.needed, freeInodes: inodes.free }
          : { path, neededBytes, freeBytes },
      },
    );
  }
}

/**
 * The state database cannot write (SQLITE_FULL, SQLITE_IOERR): the request
 * changed nothing and may be retried once space is back (HTTP 503).
 */
export class StorageUnavailableError extends KovaError {
  constructor(cause?: unknown) {
    super('STORAGE_UNAVAILABLE', 'the state database cannot write right now (disk full or I/O error); retry later', { status: 503, cause });
  }
}

/** Whether an error comes from SQLite being unable to write: disk full or an I/O error. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR'));
}
