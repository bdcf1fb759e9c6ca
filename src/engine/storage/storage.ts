/**
 * storage: the narrow interface the repository needs from where it keeps its
 * files. The local implementation writes to a directory with the temp-file,
 * fsync, rename, fsync-directory discipline; the in-memory one serves tests
 * and fault injection. Names are '/'-separated paths relative to the
 * repository root ("packs/ab/ab12…", "snapshots/…").
 */

/**
 * How a write or remove is made. `durable: false` skips the syncs: the change
 * is visible to every process at once but may be lost in a crash. Only for
 * files that mean nothing after a crash (lock files: their holders die with
 * it). Storages without such a distinction ignore it.
 */
export interface WriteOptions {
  /** Default true. */
  readonly durable?: boolean;
}

export interface Storage {
  /** Where the repository is, for messages. */
  readonly location: string;
  /**
   * write durably creates or replaces `name`. When it resolves the content is
   * on stable storage under its final name; a crash before that leaves either
   * the old content or no file, never a partial one (unless `opts.durable`
   * is false: then it may leave no file or a partial one).
   */
  write(name: string, data: Buffer | readonly Buffer[], opts?: WriteOptions): Promise<void>;
  /** read returns the whole file; rejects with code ENOENT when missing. */
  read(name: string): Promise<Buffer>;
  /** readAt returns exactly `length` bytes at `offset` (or rejects). */
  readAt(name: string, offset: number, length: number): Promise<Buffer>;
  /**
   * localPath, when present, returns the path of `name` on a local
   * filesystem, whose bytes are exactly what readAt returns (so another
   * thread may read them itself); undefined when there is none. Storages
   * that are not local files, or that transform the bytes (encryption),
   * leave it out.
   */
  localPath?(name: string): string | undefined;
  /** size returns the file's length; rejects with code ENOENT when missing. */
  size(name: string): Promise<number>;
  /** list returns the names of all files below `dir`, recursively, sorted. */
  list(dir: string): Promise<string[]>;
  /** remove durably deletes `name` (unless `opts.durable` is false); a missing file is not an error. */
  remove(name: string, opts?: WriteOptions): Promise<void>;
  /** cleanTemp deletes leftovers of interrupted writes (call with a writer lock). */
  cleanTemp(): Promise<number>;
  /** close releases cached file handles. */
  close(): Promise<void>;
}

/** notFound builds the error storages reject with for a missing file. */
export function notFound(name: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`ENOENT: no such file, ${name}`);
  err.code = 'ENOENT';
  return err;
}
