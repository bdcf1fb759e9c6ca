/**
 * data-dir: the server's data directory is private to the user Kova runs
 * as (mode 0700): it holds the database (SDL environment values), the
 * bootstrap admin key, every tenant's volumes and repositories.
 *
 * At start, a missing directory is created 0700. An existing one that
 * group or others can reach is narrowed to 0700, with a warning, when it is
 * clearly Kova's (it holds kova.db) or empty; any other such directory, or
 * one owned by another user, is refused (DATA_DIR_UNSAFE): changing the
 * mode of a directory other programs share, or trusting one another user
 * controls, is not Kova's call.
 */
import fs from 'node:fs';
import type { Logger } from 'pino';
import { KovaError } from '../core/errors.js';

/** The data directory cannot be made private. */
export class DataDirUnsafeError extends KovaError {
  constructor(message: string, dir: string) {
    super('DATA_DIR_UNSAFE', message, { status: 500, details: { dir } });
  }
}

const octal = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/** ensurePrivateDataDir creates or checks the data directory as the file comment says; returns whether it changed the mode. */
export function ensurePrivateDataDir(dir: string, log: Pick<Logger, 'warn'>): boolean {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new DataDirUnsafeError(`data directory ${dir} is not a directory`, dir);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new DataDirUnsafeError(
      `data directory ${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}); chown it or choose another --data-dir`,
      dir,
    );
  }
  if ((st.mode & 0o077) === 0) return false;
  const entries = fs.readdirSync(dir);
  if (entries.length > 0 && !entries.includes('kova.db')) {
    throw new DataDirUnsafeError(
      `data directory ${dir} is mode ${octal(st.mode)} (group or others can enter it) and is not a Kova data directory; run "chmod 700 ${dir}" or choose another --data-dir`,
      dir,
    );
  }
  fs.chmodSync(dir, 0o700);
  log.warn(
    { dataDir: dir, was: octal(st.mode) },
    `data directory was mode ${octal(st.mode)}; changed to 0700 so only its owner can read it`,
  );
  return true;
}
