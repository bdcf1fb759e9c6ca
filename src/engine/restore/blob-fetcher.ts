/**
 * blob-fetcher: the read side of a restore. Files ask for the blobs they
 * need; the fetcher gathers the requests made while the main thread runs
 * (everything asked for before the next turn of the event loop, or up to
 * `batchBytes`), sorts them by pack and offset, merges neighbours into
 * ranges (gaps up to `maxGap`, ranges up to `maxRange` read and
 * `maxRangePlain` decompressed), reads each range
 * once, and hands it to the decoder (decode-pool.ts), which decompresses and
 * verifies every blob off the main thread.
 *
 * Ordering: ranges are read in the order of their batch (pack, then
 * offset), at most `readers` at a time, so reads of a pack go forward; a
 * range counts as in flight until it is decoded.
 *
 * Two kinds of request: `get` gives out a blob's bytes (a Lease), `reserve`
 * then `place` has the decoder write the verified blob at a descriptor and
 * offset (a Placement) on its own thread, so the bytes never reach the
 * caller (restorer.ts). Placements of the same blob made before their batch
 * is read share one read and decode (the blob is written at each place).
 * When the storage says where a pack is on the local filesystem
 * (`localPath`), the decoder reads the range itself; otherwise the range
 * is read here (storage.readAt) and handed over.
 *
 * Verification: a blob's bytes are given out, or written, only after the
 * decoder checked that their BLAKE3 equals the id; otherwise the request
 * fails with CorruptionError, and so does every request for a blob that is
 * not indexed or whose pack is missing or short.
 *
 * Descriptors: a placement settles only after the decoder is done with it
 * (written, refused, or the decoder stopped), and close() fails only the
 * placements not yet handed to the decoder; so a caller that waits for its
 * placements before closing a descriptor never has a write land on a
 * descriptor it closed.
 *
 * Memory: a request first takes a lease of max(stored, plain) bytes from a
 * budget of `budgetBytes` (one larger blob may take it whole) and keeps it
 * until the caller releases it after writing; so plaintext in flight stays
 * under the budget, and stored bytes under `readers` × (`maxRange` + one
 * blob). A caller that holds leases must not wait for another one before
 * it has consumed them (restorer.ts acquires in file order, and only
 * tries, never waits, for its look-ahead).
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { CorruptionError, isErrno } from '../../core/errors.js';
import type { BlobLocation } from '../format/blob.js';
import { packName } from '../repo/master-index.js';
import type {
  Decoded,
  Decoder,
  FileMeta,
  FileSpec,
  FileWritten,
  FilesJob,
  PlacedBlob,
  RangeBlob,
  RangeBytes,
  Target,
  Written,
} from './decode-pool.js';

/** What the fetcher needs from a repository. */
export interface PackSource {
  /** Where a blob is stored; undefined when it is not indexed. */
  locate(id: string): BlobLocation | undefined;
  /** Exactly `length` bytes of a storage file (rejects when it is missing or short). */
  readAt(name: string, offset: number, length: number): Promise<Buffer>;
  /** The local path of a storage file holding exactly what readAt returns, if there is one (storage.ts). */
  localPath?(name: string): string | undefined;
}

export interface FetchOptions {
  /** Plaintext bytes in flight at most. Default 64 MiB. */
  readonly budgetBytes?: number;
  /** Requests gathered before a batch is sorted and read without waiting for the loop. Default 16 MiB. */
  readonly batchBytes?: number;
  /** Bytes between two blobs of a pack that are read rather than skipped. Default 256 KiB. */
  readonly maxGap?: number;
  /** Longest single read. Default 8 MiB. */
  readonly maxRange?: number;
  /**
   * Most plaintext in one range. Default 8 MiB. A range is one thread's job:
   * 8 MiB read of data that compresses 4:1 would be 32 MiB to decode, about
   * a large file's whole look-ahead, and the other threads would wait.
   */
  readonly maxRangePlain?: number;
  /** Ranges read or decoded at once. Default 4. */
  readonly readers?: number;
}

const DEFAULTS: Required<FetchOptions> = {
  budgetBytes: 64 * 1024 * 1024,
  batchBytes: 16 * 1024 * 1024,
  maxGap: 256 * 1024,
  maxRange: 8 * 1024 * 1024,
  maxRangePlain: 8 * 1024 * 1024,
  readers: 4,
};

/** A blob promised to a caller; release() once its bytes are written. */
export interface Lease {
  readonly data: Promise<Buffer>;
  release(): void;
}

/** A blob being written at a place; release() once done has settled. */
export interface Placement {
  /** Settles once the decoder wrote the blob there, refused it, or stopped. */
  readonly done: Promise<void>;
  /** cancel withdraws the write if the decoder does not have it yet (done then rejects); else it changes nothing. */
  cancel(): void;
  release(): void;
}

/**
 * Budget taken for some blobs, to place them without waiting: each place()
 * moves its blob's share to the Placement; release() gives back what was
 * not placed.
 */
export interface Reservation {
  place(id: string, target: Target): Placement;
  release(): void;
}

interface Entry {
  readonly id: string;
  readonly loc: BlobLocation;
  readonly data: Promise<Buffer>;
  resolve(b: Buffer): void;
  reject(err: unknown): void;
}

interface PlaceTarget extends Target {
  resolve(): void;
  reject(err: unknown): void;
  /** Handed to the decoder (no longer cancellable), or cancelled. */
  state: 'queued' | 'sent' | 'cancelled';
}

interface WriteEntry {
  readonly id: string;
  readonly loc: BlobLocation;
  readonly targets: PlaceTarget[];
}

/** A small file to write whole: its content in order (null ids are holes). */
export interface WholeFile extends FileMeta {
  readonly content?: ReadonlyArray<{ readonly id: string | null; readonly length: number }>;
}

/** Pack files kept open for files jobs, at most this many unused ones. */
const PACK_FDS = 64;

interface Range<E> {
  readonly pack: string;
  readonly start: number;
  end: number;
  /** Plaintext bytes of its entries. */
  plain: number;
  readonly entries: E[];
}

/** rangeBlob says where a blob of a range lies in the range's bytes, and how it is stored. */
function rangeBlob(
  range: { readonly pack: string; readonly start: number },
  e: { readonly id: string; readonly loc: BlobLocation },
): RangeBlob {
  const { offset, length, compression, rawLength } = e.loc;
  return { id: e.id, pack: range.pack, at: offset - range.start, length, compression, rawLength };
}

export class BlobFetcher {
  private readonly o: Required<FetchOptions>;
  private used = 0;
  private readonly waiters: Array<{ cost: number; wake: () => void }> = [];
  /** Requested, not yet settled: a second request for the same blob shares it. */
  private readonly pending = new Map<string, Entry>();
  private queued: Entry[] = [];
  /** Placements not yet read, by blob: a second one for the same blob adds a target. */
  private queuedWrites = new Map<string, WriteEntry>();
  private queuedBytes = 0;
  private flushScheduled = false;
  private readonly ranges: Array<Range<Entry>> = [];
  private readonly writeRanges: Array<Range<WriteEntry>> = [];
  private active = 0;
  private closed: Error | null = null;
  /** Open pack files by pack, with the files jobs using each; the least recently used first. */
  private readonly packFds = new Map<string, { fd: number; users: number }>();
  /** Counters, for tests and tuning. */
  readonly stats = { reads: 0, readBytes: 0, blobs: 0, peakBytes: 0 };

  constructor(
    private readonly src: PackSource,
    private readonly decoder: Decoder,
    opts: FetchOptions = {},
  ) {
    this.o = { ...DEFAULTS, ...opts };
  }

  private cost(id: string): number {
    const loc = this.src.locate(id);
    return loc ? Math.max(loc.length, loc.rawLength) : 0;
  }

  /** get waits for room in the budget, then requests the blob. */
  async get(id: string): Promise<Lease> {
    return (await this.getMany([id]))[0]!;
  }

  /** tryGet requests the blob if the budget has room now and nobody waits; else null. */
  tryGet(id: string): Lease | null {
    return this.tryGetMany([id])?.[0] ?? null;
  }

  /**
   * getMany waits until the budget has room for all of `ids` at once (or is
   * empty), then requests them together, so they are read as one batch.
   */
  async getMany(ids: readonly string[]): Promise<Lease[]> {
    const costs = ids.map((id) => this.cost(id));
    const total = costs.reduce((a, b) => a + b, 0);
    if (!this.fits(total) || this.waiters.length > 0) {
      await new Promise<void>((wake) => this.waiters.push({ cost: total, wake }));
    } else {
      this.take(total);
    }
    return ids.map((id, i) => this.lease(id, costs[i]!));
  }

  /** tryGetMany is getMany when the budget has room now and nobody waits; else null. */
  tryGetMany(ids: readonly string[]): Lease[] | null {
    const costs = ids.map((id) => this.cost(id));
    const total = costs.reduce((a, b) => a + b, 0);
    if (this.waiters.length > 0 || !this.fits(total)) return null;
    this.take(total);
    return ids.map((id, i) => this.lease(id, costs[i]!));
  }

  /** reserve waits until the budget has room for all of `ids` at once (or is empty). */
  async reserve(ids: readonly string[]): Promise<Reservation> {
    const total = ids.reduce((n, id) => n + this.cost(id), 0);
    if (!this.fits(total) || this.waiters.length > 0) {
      await new Promise<void>((wake) => this.waiters.push({ cost: total, wake }));
    } else {
      this.take(total);
    }
    return this.reservation(total);
  }

  /** tryReserve is reserve when the budget has room now and nobody waits; else null. */
  tryReserve(ids: readonly string[]): Reservation | null {
    const total = ids.reduce((n, id) => n + this.cost(id), 0);
    if (this.waiters.length > 0 || !this.fits(total)) return null;
    this.take(total);
    return this.reservation(total);
  }

  private reservation(total: number): Reservation {
    let left = total;
    return {
      place: (id, target) => {
        const cost = Math.min(left, this.cost(id));
        left -= cost;
        let released = false;
        const { done, cancel } = this.requestWrite(id, target);
        done.catch(() => undefined); // the caller sees the error when it awaits
        return {
          done,
          cancel,
          release: () => {
            if (released) return;
            released = true;
            this.give(cost);
          },
        };
      },
      release: () => {
        const rest = left;
        left = 0;
        if (rest > 0) this.give(rest);
      },
    };
  }

  private fits(cost: number): boolean {
    return this.used === 0 || this.used + cost <= this.o.budgetBytes;
  }

  private take(cost: number): void {
    this.used += cost;
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.used);
  }

  private give(cost: number): void {
    this.used -= cost;
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.cost)) {
      const w = this.waiters.shift()!;
      this.take(w.cost);
      w.wake();
    }
  }

  private lease(id: string, cost: number): Lease {
    let released = false;
    const data = this.request(id);
    data.catch(() => undefined); // the caller sees the error when it awaits
    return {
      data,
      release: () => {
        if (released) return;
        released = true;
        this.give(cost);
      },
    };
  }

  private request(id: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.closed);
    const shared = this.pending.get(id);
    if (shared) return shared.data;
    const loc = this.src.locate(id);
    if (!loc) return Promise.reject(new CorruptionError(`blob ${id} is not in the index`, { blob: id }));
    let resolve!: (b: Buffer) => void;
    let reject!: (err: unknown) => void;
    const data = new Promise<Buffer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry: Entry = { id, loc, data, resolve, reject };
    this.pending.set(id, entry);
    this.queued.push(entry);
    this.queue(loc.length);
    return data;
  }

  private requestWrite(id: string, target: Target): { done: Promise<void>; cancel(): void } {
    const none = { cancel: () => undefined };
    if (this.closed) return { done: Promise.reject(this.closed), ...none };
    const loc = this.src.locate(id);
    if (!loc) return { done: Promise.reject(new CorruptionError(`blob ${id} is not in the index`, { blob: id })), ...none };
    let entry = this.queuedWrites.get(id);
    let t!: PlaceTarget;
    const done = new Promise<void>((resolve, reject) => {
      t = { fd: target.fd, offset: target.offset, resolve, reject, state: 'queued' };
    });
    if (entry) entry.targets.push(t);
    else {
      entry = { id, loc, targets: [t] };
      this.queuedWrites.set(id, entry);
      this.queue(loc.length);
    }
    const cancel = (): void => {
      if (t.state !== 'queued') return;
      t.state = 'cancelled';
      t.reject(new Error('the write of this blob was withdrawn'));
    };
    return { done, cancel };
  }

  /** queue counts a request's stored bytes and has the batch read now when full, else on the next turn. */
  private queue(bytes: number): void {
    this.queuedBytes += bytes;
    if (this.queuedBytes >= this.o.batchBytes) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** flush sorts the gathered requests by pack and offset and merges them into ranges. */
  private flush(): void {
    const batch = this.queued;
    const writes = [...this.queuedWrites.values()];
    this.queued = [];
    this.queuedWrites = new Map();
    this.queuedBytes = 0;
    this.ranges.push(...this.merge(batch));
    this.writeRanges.push(...this.merge(writes));
    this.pump();
  }

  private merge<E extends { readonly loc: BlobLocation }>(batch: E[]): Array<Range<E>> {
    const out: Array<Range<E>> = [];
    batch.sort((a, b) => (a.loc.pack < b.loc.pack ? -1 : a.loc.pack > b.loc.pack ? 1 : a.loc.offset - b.loc.offset));
    let cur: Range<E> | null = null;
    for (const e of batch) {
      const end = e.loc.offset + e.loc.length;
      if (
        cur &&
        cur.pack === e.loc.pack &&
        e.loc.offset >= cur.end &&
        e.loc.offset - cur.end <= this.o.maxGap &&
        end - cur.start <= this.o.maxRange &&
        cur.plain + e.loc.rawLength <= this.o.maxRangePlain
      ) {
        cur.end = end;
        cur.plain += e.loc.rawLength;
        cur.entries.push(e);
      } else {
        cur = { pack: e.loc.pack, start: e.loc.offset, end, plain: e.loc.rawLength, entries: [e] };
        out.push(cur);
      }
    }
    return out;
  }

  private pump(): void {
    while (this.active < this.o.readers && this.writeRanges.length > 0) {
      const range = this.writeRanges.shift()!;
      this.active++;
      this.writeRange(range)
        .catch((err: unknown) => {
          for (const e of range.entries) for (const t of e.targets) t.reject(err);
        })
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
    while (this.active < this.o.readers && this.ranges.length > 0) {
      const range = this.ranges.shift()!;
      this.active++;
      this.readRange(range)
        .catch((err: unknown) => {
          for (const e of range.entries) e.reject(err);
        })
        .finally(() => {
          for (const e of range.entries) if (this.pending.get(e.id) === e) this.pending.delete(e.id);
          this.active--;
          this.pump();
        });
    }
  }

  /** missing turns a missing pack into the CorruptionError naming it. */
  private missing(err: unknown, range: Range<{ readonly id: string }>): unknown {
    if (!isErrno(err, 'ENOENT')) return err;
    return new CorruptionError(
      `pack ${range.pack} holding blob ${range.entries[0]!.id} is missing`,
      { blob: range.entries[0]!.id, pack: range.pack },
      err,
    );
  }

  private async writeRange(whole: Range<WriteEntry>): Promise<void> {
    if (this.closed) throw this.closed;
    // Withdrawn targets are dropped, and so are blobs left with none.
    const entries: WriteEntry[] = [];
    for (const e of whole.entries) {
      const targets = e.targets.filter((t) => t.state === 'queued');
      for (const t of targets) t.state = 'sent';
      if (targets.length > 0) entries.push({ ...e, targets });
    }
    if (entries.length === 0) return;
    const range = { ...whole, start: entries[0]!.loc.offset, entries };
    range.end = entries[entries.length - 1]!.loc.offset + entries[entries.length - 1]!.loc.length;
    const name = packName(range.pack);
    const length = range.end - range.start;
    const local = this.src.localPath?.(name);
    let bytes: RangeBytes;
    if (local !== undefined) {
      bytes = { path: local, offset: range.start, length };
    } else {
      try {
        bytes = await this.src.readAt(name, range.start, length);
      } catch (err) {
        throw this.missing(err, range);
      }
    }
    const blobs: PlacedBlob[] = range.entries.map((e) => ({ ...rangeBlob(range, e), targets: e.targets }));
    let written: Written[];
    try {
      written = await this.decoder.write(bytes, blobs);
    } catch (err) {
      throw this.missing(err, range);
    }
    this.stats.reads++;
    this.stats.readBytes += length;
    range.entries.forEach((e, i) => {
      const w = written[i]!;
      this.stats.blobs++;
      for (const t of e.targets) {
        if (w === null) t.resolve();
        else t.reject(w);
      }
    });
  }

  private async readRange(range: Range<Entry>): Promise<void> {
    if (this.closed) throw this.closed;
    let buf: Buffer;
    try {
      buf = await this.src.readAt(packName(range.pack), range.start, range.end - range.start);
    } catch (err) {
      throw this.missing(err, range);
    }
    this.stats.reads++;
    this.stats.readBytes += buf.length;
    const blobs: RangeBlob[] = range.entries.map((e) => rangeBlob(range, e));
    const decoded: Decoded[] = await this.decoder.decode(buf, blobs);
    range.entries.forEach((e, i) => {
      const d = decoded[i]!;
      this.stats.blobs++;
      if (d instanceof CorruptionError) e.reject(d);
      else e.resolve(d);
    });
  }

  /**
   * writeFiles has the decoder create, write and finish small files whole,
   * below `dirFd`, on one of its threads: their blobs are read as merged
   * ranges of pack files held open here, verified, and only then written.
   * The caller keeps `dirFd` open until the promise settles. Null when that
   * cannot be done (the decoder runs no threads yet, or a pack is not a
   * local file): the caller places the chunks instead. A blob that is not
   * indexed, or a pack that cannot be opened, fails the files that need it
   * and withdraws the others. It takes no budget: the caller reserves it.
   */
  writeFiles(dirFd: number, files: readonly WholeFile[], chown: boolean): Promise<FileWritten[]> | null {
    if (!this.decoder.writeFiles || !this.src.localPath || this.closed) return null;
    const slot = new Map<string, number>();
    const entries: Array<{ readonly id: string; readonly loc: BlobLocation }> = [];
    const bad = new Map<string, CorruptionError>();
    for (const f of files) {
      for (const c of f.content ?? []) {
        if (c.id === null || slot.has(c.id) || bad.has(c.id)) continue;
        const loc = this.src.locate(c.id);
        if (!loc) bad.set(c.id, new CorruptionError(`blob ${c.id} is not in the index`, { blob: c.id }));
        else {
          slot.set(c.id, -1);
          entries.push({ id: c.id, loc });
        }
      }
    }
    const ranges = this.merge(entries);
    const paths = new Map<string, string>();
    for (const r of ranges) {
      if (paths.has(r.pack)) continue;
      const local = this.src.localPath(packName(r.pack));
      if (local === undefined) return null;
      paths.set(r.pack, local);
    }
    const held: string[] = [];
    const jobRanges: Array<FilesJob['ranges'][number]> = [];
    const blobs: RangeBlob[] = [];
    for (const r of ranges) {
      let fd: number;
      try {
        fd = this.openPack(r.pack, paths.get(r.pack)!);
      } catch (err) {
        for (const e of r.entries) bad.set(e.id, this.missing(err, { ...r, entries: [e] }) as CorruptionError);
        continue;
      }
      held.push(r.pack);
      jobRanges.push({ fd, offset: r.start, length: r.end - r.start, count: r.entries.length });
      for (const e of r.entries) {
        slot.set(e.id, blobs.length);
        blobs.push(rangeBlob(r, e));
      }
    }
    const release = (): void => {
      for (const pack of held) this.releasePack(pack);
    };
    if (bad.size > 0) {
      release();
      const fail = (f: WholeFile): FileWritten => {
        for (const c of f.content ?? []) if (c.id !== null && bad.has(c.id)) return bad.get(c.id)!;
        return 'withdrawn';
      };
      return Promise.resolve(files.map(fail));
    }
    const specs: FileSpec[] = files.map((f) => {
      const chunks: Array<[number, number]> = [];
      let offset = 0;
      for (const c of f.content ?? []) {
        chunks.push([c.id === null ? -1 : slot.get(c.id)!, offset]);
        offset += c.length;
      }
      return { name: f.name, mode: f.mode, uid: f.uid, gid: f.gid, mtimeNs: f.mtimeNs, size: f.size, chunks };
    });
    const job = this.decoder.writeFiles({ dirFd, ranges: jobRanges, blobs, files: specs, chown });
    if (job === null) {
      release();
      return null;
    }
    return job.finally(() => {
      this.stats.reads += jobRanges.length;
      this.stats.blobs += blobs.length;
      for (const r of jobRanges) this.stats.readBytes += r.length;
      release();
    });
  }

  /** openPack returns the open descriptor of a pack, opening it if need be; releasePack when done with it. */
  private openPack(pack: string, file: string): number {
    let e = this.packFds.get(pack);
    if (e) this.packFds.delete(pack);
    else e = { fd: openSync(file, fsConstants.O_RDONLY), users: 0 };
    e.users++;
    this.packFds.set(pack, e); // the most recently used last
    return e.fd;
  }

  private releasePack(pack: string): void {
    const e = this.packFds.get(pack)!;
    e.users--;
    let unused = 0;
    for (const v of this.packFds.values()) if (v.users === 0) unused++;
    for (const [k, v] of this.packFds) {
      if (unused <= (this.closed ? 0 : PACK_FDS)) break;
      if (v.users > 0) continue;
      closeSync(v.fd);
      this.packFds.delete(k);
      unused--;
    }
  }

  /**
   * close fails every request not yet handed to the decoder (those handed
   * over settle when it answers or stops); later requests fail at once.
   */
  close(): void {
    this.closed = new Error('the restore stopped before this blob was read');
    for (const e of this.queued.splice(0)) e.reject(this.closed);
    for (const r of this.ranges.splice(0)) for (const e of r.entries) e.reject(this.closed);
    for (const e of this.queuedWrites.values()) for (const t of e.targets) t.reject(this.closed);
    this.queuedWrites.clear();
    for (const r of this.writeRanges.splice(0)) for (const e of r.entries) for (const t of e.targets) t.reject(this.closed);
    for (const w of this.waiters.splice(0)) w.wake();
    // Packs still in use by a files job are closed when it settles.
    for (const [k, v] of this.packFds) {
      if (v.users > 0) continue;
      closeSync(v.fd);
      this.packFds.delete(k);
    }
  }
}
