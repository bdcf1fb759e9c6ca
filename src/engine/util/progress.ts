/**
 * progress: counts files and bytes done and reports them through a callback,
 * at most every PROGRESS_EVERY_MS (and once at the end), so callers can
 * update a bar or a database row without being flooded.
 */

/** Progress of a snapshot or restore. Totals are null until known. */
export interface Progress {
  readonly filesDone: number;
  readonly bytesDone: number;
  readonly filesTotal: number | null;
  readonly bytesTotal: number | null;
}

export type ProgressFn = (p: Progress) => void;

const PROGRESS_EVERY_MS = 100;

export class ProgressTracker {
  filesDone = 0;
  bytesDone = 0;
  filesTotal: number | null = null;
  bytesTotal: number | null = null;
  private last = 0;

  constructor(private readonly cb: ProgressFn | undefined) {}

  /** bytes counts bytes done (read, written, or skipped as holes). */
  bytes(n: number): void {
    this.bytesDone += n;
    this.emit(false);
  }

  /** file counts one entry done, with `bytes` not counted yet. */
  file(bytes = 0): void {
    this.filesDone++;
    this.bytesDone += bytes;
    this.emit(false);
  }

  emit(force: boolean): void {
    if (!this.cb) return;
    const now = Date.now();
    if (!force && now - this.last < PROGRESS_EVERY_MS) return;
    this.last = now;
    this.cb({ filesDone: this.filesDone, bytesDone: this.bytesDone, filesTotal: this.filesTotal, bytesTotal: this.bytesTotal });
  }
}
