/**
 * decode-pool: turns the bytes of a pack range into verified plaintext blobs,
 * off the main thread. For each blob of the range: decompress (zstd) when it
 * is stored compressed, check the length, hash the plaintext (BLAKE3, native
 * addon) and compare with the blob's id. Only blobs that pass go on; the
 * others come back as CorruptionError, so bad bytes never leave here.
 *
 * Two ways out:
 *  - decode returns the verified blobs (a buffer each) to the caller;
 *  - write (what a restore uses) writes each verified blob at its targets
 *    (a descriptor and an offset; one blob may have several) with pwrite on
 *    the thread that verified it, and returns only a status per blob:
 *    written, refused (CorruptionError, nothing written), or the write's
 *    errno error (ENOSPC…). When the range is in a local file (a path), the
 *    thread also reads it, with pread into a buffer of its own, so the
 *    range's bytes never touch the main thread.
 * The caller must keep every target descriptor open until the write's
 * promise settles; a pool that fails or closes settles its jobs only once
 * every thread has stopped, so no write can land after that.
 *
 * A restore's first `inlineBytes` of stored data are handled on the calling
 * thread (a small restore costs less than starting threads); after that,
 * `workers` threads start and each range goes, whole, to the least busy
 * one. A range given as bytes is copied once into a transfer buffer of the
 * pool's own (transferring detaches, and a storage may hand out memory it
 * keeps); decode's worker sends every verified blob back in a buffer of its
 * own and returns the transfer buffer, which is reused: a fresh buffer per
 * range cost the main thread more in page faults than the copy. The caller
 * bounds how many ranges are in flight (blob-fetcher.ts), which bounds the
 * memory here.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CorruptionError } from '../../core/errors.js';
import { Compression } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import type { BlobCodec } from '../repo/codec.js';
import { TransferBuffers } from '../util/transfer-buffers.js';

/** One blob inside a range buffer. */
export interface RangeBlob {
  readonly id: string;
  readonly pack: string;
  /** Offset of the stored bytes within the range buffer. */
  readonly at: number;
  readonly length: number;
  readonly compression: Compression;
  readonly rawLength: number;
}

/** A verified plaintext, or why the blob was refused. */
export type Decoded = Buffer | CorruptionError;

/** Where a blob's verified bytes are written: an open descriptor and a file offset. */
export interface Target {
  readonly fd: number;
  readonly offset: number;
}

/** A blob of a range and every place its bytes go. */
export interface PlacedBlob extends RangeBlob {
  readonly targets: readonly Target[];
}

/** Per blob: null once written at every target; a CorruptionError (nothing written); or the write's errno error. */
export type Written = null | CorruptionError | NodeJS.ErrnoException;

/** A range's stored bytes: in memory, or `length` bytes at `offset` of a local file. */
export type RangeBytes = Buffer | { readonly path: string; readonly offset: number; readonly length: number };

/**
 * A file a files job creates whole, below the job's directory: its chunks
 * (the index of the chunk's blob in the job, or -1 for a hole, and the
 * chunk's offset), then the length set when it ends in a hole, the owner
 * (when the job says so), mode and modification time (also the access time).
 */
export interface FileSpec extends FileMeta {
  readonly chunks: ReadonlyArray<readonly [blob: number, offset: number]>;
}

/** What a small file written whole is created with: its name below the directory, and its metadata. */
export interface FileMeta {
  readonly name: Buffer;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  readonly size: number;
}

/**
 * Small files written whole by one thread: `ranges` are read from pack
 * descriptors the caller keeps open until the job settles; `blobs` lie in
 * them in order (the first `count` in the first range, and so on), `at`
 * relative to their range.
 */
export interface FilesJob {
  readonly dirFd: number;
  readonly ranges: ReadonlyArray<{ readonly fd: number; readonly offset: number; readonly length: number; readonly count: number }>;
  readonly blobs: readonly RangeBlob[];
  readonly files: readonly FileSpec[];
  readonly chown: boolean;
}

/** Per file: null once created, written and closed; else why not ('withdrawn': not started). */
export type FileWritten = null | CorruptionError | NodeJS.ErrnoException | 'withdrawn';

export interface Decoder {
  decode(range: Buffer, blobs: readonly RangeBlob[]): Promise<Decoded[]>;
  /**
   * write verifies each blob and writes it at its targets. Rejects (nothing
   * written) when a range in a file cannot be read: with the errno error, or
   * a CorruptionError when the file is shorter than the range.
   */
  write(range: RangeBytes, blobs: readonly PlacedBlob[]): Promise<Written[]>;
  /** writeFiles runs a files job on a thread; null when this decoder has none running. */
  writeFiles?(job: FilesJob): Promise<FileWritten[]> | null;
  close(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// src/engine/restore and dist/engine/restore sit three levels below the package root.
const ADDON_PATH = path.resolve(here, '..', '..', '..', 'build', 'Release', 'kova_native.node');

// The worker's source: CommonJS, evaluated, so it runs from src/ and dist/ alike.
// decode results: {data} with the verified plaintext in a buffer of its own
// (the range buffer goes back to be reused), or {fail, message} for a
// refused blob. write results: null (written), {fail, message}, or {errno}
// for a failed write; {readErr} or {short} when the range could not be read.
const WORKER_SOURCE = `
const fs = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const { Decompressor } = require(workerData.zstdPath);
const native = require(workerData.addonPath);
const d = new Decompressor();
// Write jobs decompress into one buffer of the thread's, reused (its bytes
// are written before the next blob): fresh memory per blob cost more in
// page faults than the decompression.
const { DCtx } = require(workerData.zstdBindingPath);
const dctx = new DCtx();
let out = Buffer.alloc(0);
const inflateInto = (src, rawLength) => {
  if (out.length < rawLength) out = Buffer.allocUnsafeSlow(Math.max(rawLength, 2 * out.length));
  return out.subarray(0, dctx.decompress(out.subarray(0, rawLength), src));
};
// Read buffers, reused: a job's range is read (asynchronously, so the next
// job's read overlaps this one's decoding) into one of them.
const spare = [];
const own = (u8) => {
  if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && !(u8.buffer instanceof SharedArrayBuffer)) return u8.buffer;
  const c = new ArrayBuffer(u8.length);
  new Uint8Array(c).set(u8);
  return c;
};
// verify returns a blob's checked plaintext (or why it was refused): in a
// fresh buffer, in the thread's reused one (reuse), or in dst (rawLength
// bytes), where an uncompressed blob is copied too.
const verify = (range, b, reuse, dst) => {
  let raw = range.subarray(b.at, b.at + b.length);
  if (b.compression !== ${Compression.None}) {
    try {
      raw = dst ? dst.subarray(0, dctx.decompress(dst, raw)) : reuse ? inflateInto(raw, b.rawLength) : d.decompress(raw);
    } catch (err) {
      return { fail: 'damaged', message: String((err && err.message) || err) };
    }
    if (raw.length !== b.rawLength) return { fail: 'length', message: String(raw.length) };
  } else if (dst) {
    if (raw.length !== b.rawLength) return { fail: 'length', message: String(raw.length) };
    raw = dst.subarray(0, raw.copy(dst));
  }
  const h = native.hash(raw);
  if (typeof b.id === 'string' ? h.toString('hex') !== b.id : !h.equals(b.id)) return { fail: 'hash' };
  return raw;
};
// A range of at least DIRECT_MIN bytes is read with O_DIRECT where the file
// system allows it (as a snapshot reads large files): the pages around it,
// to whole pages, into the buffer from an aligned address on. The kernel
// then reads into the buffer itself, without filling the page cache with
// packs a restore reads once and copying out of it.
const DIRECT_ALIGN = 4096;
const DIRECT_MIN = 256 * 1024;
let direct = typeof fs.constants.O_DIRECT === 'number';
const readSpan = async (fh, buf, at, len, pos, aligned) => {
  let done = 0;
  while (done < len) {
    const { bytesRead } = await fh.read(buf, at + done, len - done, pos + done);
    if (bytesRead === 0) break;
    done += bytesRead;
    if (aligned && bytesRead % DIRECT_ALIGN !== 0) break; // the end of the file
  }
  return done;
};
const readDirect = async (buf, file, offset, len) => {
  const start = offset - (offset % DIRECT_ALIGN);
  const span = Math.ceil((offset + len - start) / DIRECT_ALIGN) * DIRECT_ALIGN;
  if (buf.length < span + DIRECT_ALIGN) return undefined;
  let fh;
  try {
    fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  } catch (err) {
    if (err.code !== 'EINVAL') throw err;
    direct = false; // not on this file system: read through the cache from now on
    return undefined;
  }
  try {
    const at = native.alignOffset(buf);
    let done;
    try {
      done = await readSpan(fh, buf, at, span, start, true);
    } catch (err) {
      if (err.code !== 'EINVAL') throw err;
      direct = false;
      return undefined;
    }
    const from = at + (offset - start);
    return done < offset - start + len ? null : buf.subarray(from, from + len);
  } finally {
    await fh.close();
  }
};
const readRange = async (buf, file, offset, len) => {
  if (direct && len >= DIRECT_MIN) {
    const got = await readDirect(buf, file, offset, len);
    if (got !== undefined) return got;
  }
  const fh = await fs.promises.open(file, 'r');
  try {
    if ((await readSpan(fh, buf, 0, len, offset, false)) < len) return null;
  } finally {
    await fh.close();
  }
  return buf.subarray(0, len);
};
const writeAll = (fd, data, pos) => {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, pos + done);
};
const errnoOf = (err) => ({ errno: String(err.code), message: String(err.message), syscall: err.syscall });
// A write job's blobs, packed (see packWrite): per blob at, length,
// compression, rawLength, target count, then fd and offset per target;
// the ids as 32 bytes each.
const unpack = (meta, ids) => {
  const blobs = [];
  for (let k = 0, i = 0; k < meta.length; i++) {
    const b = { id: ids.subarray(i * 32, i * 32 + 32), at: meta[k], length: meta[k + 1], compression: meta[k + 2], rawLength: meta[k + 3], targets: [] };
    const n = meta[k + 4];
    k += 5;
    for (let t = 0; t < n; t++, k += 2) b.targets.push({ fd: meta[k], offset: meta[k + 1] });
    blobs.push(b);
  }
  return blobs;
};
// Large stretches are written with O_DIRECT where the file system allows it.
// Buffered writes to one file are serialized by its inode lock, and copying
// into the page cache was most of a large file's restore: one thread copied
// while the other spun on the lock. A write job's blobs that follow each
// other in one file are verified into one buffer (placed so that file
// offsets and addresses agree modulo DIRECT_ALIGN). The whole pages inside
// that stretch go through a second descriptor of the file opened with
// O_DIRECT; the partial pages at its ends, which a neighbouring stretch
// shares, go through the page cache like any other write. Every blob is
// verified before any of its bytes are written, as before.
const RUN_MAX = 8 * 1024 * 1024;
const DIRECT_WRITE_MIN = 256 * 1024;
let directWrite = direct;
let runBuf = Buffer.alloc(0);
let runBase = 0;
const runRoom = (bytes) => {
  if (runBuf.length - runBase >= bytes + 2 * DIRECT_ALIGN) return;
  runBuf = Buffer.allocUnsafeSlow(Math.max(bytes, RUN_MAX) + 3 * DIRECT_ALIGN);
  runBase = native.alignOffset(runBuf);
};
const writeRun = (run, directFds) => {
  const data = runBuf.subarray(runBase + (run.pos % DIRECT_ALIGN), runBase + (run.pos % DIRECT_ALIGN) + run.len);
  const end = run.pos + run.len;
  const a = Math.ceil(run.pos / DIRECT_ALIGN) * DIRECT_ALIGN;
  const z = Math.floor(end / DIRECT_ALIGN) * DIRECT_ALIGN;
  if (directWrite && z - a >= DIRECT_WRITE_MIN) {
    let dfd = directFds.get(run.fd);
    if (dfd === undefined) {
      try {
        dfd = fs.openSync('/proc/self/fd/' + run.fd, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
        directFds.set(run.fd, dfd);
      } catch {
        directWrite = false; // not on this file system (or no /proc): through the page cache from now on
      }
    }
    if (dfd !== undefined) {
      try {
        writeAll(dfd, data.subarray(a - run.pos, z - run.pos), a);
      } catch (err) {
        if (err.code !== 'EINVAL') throw err;
        directWrite = false;
        writeAll(run.fd, data, run.pos);
        return;
      }
      if (a > run.pos) writeAll(run.fd, data.subarray(0, a - run.pos), run.pos);
      if (end > z) writeAll(run.fd, data.subarray(z - run.pos), z);
      return;
    }
  }
  writeAll(run.fd, data, run.pos);
};
// fileOrder lists a write job's blobs by where they go, by descriptor and
// offset, blobs with several targets last. A pack holds a file's blobs only
// roughly in file order (the snapshot's threads finish them out of order),
// so in pack order neighbours in the file seldom follow each other: runs
// were a blob or two long, too short for O_DIRECT (a third of an 8 GiB
// file's bytes went through the page cache).
const fileOrder = (blobs) => {
  const key = (i) => (blobs[i].targets.length === 1 ? blobs[i].targets[0] : null);
  return blobs
    .map((_, i) => i)
    .sort((x, y) => {
      const a = key(x);
      const b = key(y);
      if (a === null || b === null) return (a === null) - (b === null) || x - y;
      return a.fd - b.fd || a.offset - b.offset;
    });
};
const write = (m, range) => {
    const results = new Array(m.blobs.length).fill(null);
    const directFds = new Map();
    let run = null;
    const flush = () => {
      if (run === null) return;
      try {
        writeRun(run, directFds);
      } catch (err) {
        const e = errnoOf(err);
        for (const i of run.blobs) results[i] = e;
      }
      run = null;
    };
    try {
      for (const i of fileOrder(m.blobs)) {
        const b = m.blobs[i];
        const t = b.targets.length === 1 ? b.targets[0] : null;
        if (t === null) {
          flush();
          const raw = verify(range, b, true);
          if (!Buffer.isBuffer(raw)) results[i] = raw;
          else
            for (const x of b.targets) {
              try {
                writeAll(x.fd, raw, x.offset);
              } catch (err) {
                results[i] = errnoOf(err);
                break;
              }
            }
          continue;
        }
        if (run !== null && (run.fd !== t.fd || run.pos + run.len !== t.offset || run.len + b.rawLength > RUN_MAX)) flush();
        if (run === null) {
          runRoom(b.rawLength);
          run = { fd: t.fd, pos: t.offset, len: 0, blobs: [] };
        }
        const at = runBase + (run.pos % DIRECT_ALIGN) + run.len;
        const raw = verify(range, b, true, runBuf.subarray(at, at + b.rawLength));
        if (!Buffer.isBuffer(raw)) {
          results[i] = raw;
          flush();
          continue;
        }
        run.len += b.rawLength;
        run.blobs.push(i);
      }
      flush();
    } finally {
      for (const dfd of directFds.values()) fs.closeSync(dfd);
    }
    parentPort.postMessage({ job: m.job, buf: m.buf, results }, m.buf ? [m.buf] : []);
};
// A files job (see packFiles): read its ranges from pack descriptors the
// caller holds open, verify every blob into one plaintext buffer, then
// create each file below the directory descriptor, write it, set its owner,
// mode and times, and close it. A file with a refused blob is not created;
// after a failed call, or once the caller raised the stop flag, the files
// left are withdrawn.
const stopFlag = workerData.stop ? new Int32Array(workerData.stop) : null;
const C = fs.constants;
const OPEN_CREATE = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;
let readBuf = Buffer.alloc(0);
let plainBuf = Buffer.alloc(0);
const files = (m) => {
  const rm = new Float64Array(m.ranges);
  const bm = new Float64Array(m.blobMeta);
  const ids = new Uint8Array(m.ids);
  const nBlobs = bm.length / 5;
  if (plainBuf.length < m.plainBytes) plainBuf = Buffer.allocUnsafeSlow(Math.max(m.plainBytes, 2 * plainBuf.length));
  const plain = new Array(nBlobs);
  for (let r = 0, bi = 0; r < rm.length; r += 4) {
    const fd = rm[r], start = rm[r + 1], len = rm[r + 2], n = rm[r + 3];
    if (readBuf.length < len) readBuf = Buffer.allocUnsafeSlow(Math.max(len, 2 * readBuf.length));
    let bad = null;
    try {
      let done = 0;
      while (done < len) {
        const got = fs.readSync(fd, readBuf, done, len - done, start + done);
        if (got === 0) break;
        done += got;
      }
      if (done < len) bad = { fail: 'short', message: String(done) };
    } catch (err) {
      bad = errnoOf(err);
    }
    for (let k = 0; k < n; k++, bi++) {
      if (bad) {
        plain[bi] = bad;
        continue;
      }
      const o = bi * 5;
      const b = { id: ids.subarray(bi * 32, bi * 32 + 32), at: bm[o], length: bm[o + 1], compression: bm[o + 2], rawLength: bm[o + 3] };
      const raw = verify(readBuf, b, true);
      if (!Buffer.isBuffer(raw)) plain[bi] = raw;
      else {
        const dst = plainBuf.subarray(bm[o + 4], bm[o + 4] + raw.length);
        raw.copy(dst);
        plain[bi] = dst;
      }
    }
  }
  const fm = new Float64Array(m.files);
  const names = Buffer.from(m.names);
  const prefix = Buffer.from('/proc/self/fd/' + m.dirFd + '/');
  const results = [];
  let stopped = false;
  for (let k = 0; k < fm.length; ) {
    const nameAt = fm[k], nameLen = fm[k + 1], mode = fm[k + 2], uid = fm[k + 3], gid = fm[k + 4];
    const ms = fm[k + 5], mns = fm[k + 6], size = fm[k + 7], truncate = fm[k + 8], nChunks = fm[k + 9];
    const chunks = k + 10;
    k = chunks + 2 * nChunks;
    if (stopped || (stopFlag && Atomics.load(stopFlag, 0) !== 0)) {
      stopped = true;
      results.push({ withdrawn: true });
      continue;
    }
    let refused = null;
    for (let c = 0; c < nChunks && !refused; c++) {
      const bi = fm[chunks + 2 * c];
      if (bi >= 0 && !Buffer.isBuffer(plain[bi])) refused = { ...plain[bi], blob: bi };
    }
    if (refused) {
      results.push(refused);
      continue;
    }
    let fd;
    try {
      fd = fs.openSync(Buffer.concat([prefix, names.subarray(nameAt, nameAt + nameLen)]), OPEN_CREATE, 0o600);
    } catch (err) {
      stopped = true;
      results.push(errnoOf(err));
      continue;
    }
    try {
      for (let c = 0; c < nChunks; c++) {
        const bi = fm[chunks + 2 * c];
        if (bi >= 0) writeAll(fd, plain[bi], fm[chunks + 2 * c + 1]);
      }
      if (truncate) fs.ftruncateSync(fd, size);
      if (m.chown) fs.fchownSync(fd, uid, gid);
      fs.fchmodSync(fd, mode);
      native.setTimes(fd, ms, mns, ms, mns);
      results.push(null);
    } catch (err) {
      stopped = true;
      results.push(errnoOf(err));
    } finally {
      fs.closeSync(fd);
    }
  }
  parentPort.postMessage({ job: m.job, files: results });
};
parentPort.on('message', (m) => {
  if (m.kind === 'files') return files(m);
  if (m.kind === 'write') {
    m.blobs = unpack(new Float64Array(m.meta), new Uint8Array(m.ids));
    if (m.buf) return write(m, Buffer.from(m.buf, 0, m.len));
    let buf = spare.pop();
    // Room for a direct read: the range's pages and an aligned start.
    const room = m.len + 3 * DIRECT_ALIGN;
    if (!buf || buf.length < room) buf = Buffer.allocUnsafeSlow(Math.max(room, buf ? buf.length : 0));
    readRange(buf, m.path, m.offset, m.len).then(
      (range) => {
        if (range === null) parentPort.postMessage({ job: m.job, short: true });
        else write(m, range);
        spare.push(buf);
      },
      (err) => {
        spare.push(buf);
        parentPort.postMessage({ job: m.job, readErr: errnoOf(err) });
      },
    );
    return;
  }
  const { job, buf, len, blobs } = m;
  const range = Buffer.from(buf, 0, len);
  const results = [];
  const transfer = [buf];
  for (const b of blobs) {
    const raw = verify(range, b);
    if (!Buffer.isBuffer(raw)) {
      results.push(raw);
      continue;
    }
    const data = raw.buffer === buf ? own(new Uint8Array(raw)) : own(raw);
    if (!transfer.includes(data)) transfer.push(data);
    results.push({ data, length: raw.length });
  }
  parentPort.postMessage({ job, buf, results }, transfer);
});
`;

type Refused = { fail: 'damaged' | 'length' | 'hash' | 'short'; message?: string; blob?: number };
type ErrnoResult = { errno: string; message: string; syscall?: string };
type WorkerResult = { data: ArrayBuffer; length: number } | Refused | ErrnoResult | null;
interface WorkerReply {
  job: number;
  buf?: ArrayBuffer;
  results?: WorkerResult[];
  readErr?: ErrnoResult;
  short?: true;
  files?: Array<Refused | (ErrnoResult & { blob?: number }) | { withdrawn: true } | null>;
}

function refusal(b: RangeBlob, kind: Refused['fail'], message?: string): CorruptionError {
  const details = { blob: b.id, pack: b.pack };
  if (kind === 'short') return new CorruptionError(`pack ${b.pack} holding blob ${b.id} is shorter than its index says`, details);
  if (kind === 'damaged') return new CorruptionError(`blob ${b.id}: compressed data is damaged (${message ?? ''})`, details);
  if (kind === 'length')
    return new CorruptionError(`blob ${b.id}: decompressed to ${message ?? '?'} bytes, expected ${b.rawLength}`, details);
  return new CorruptionError(`blob ${b.id} in pack ${b.pack} does not match its hash`, details);
}

/** errnoError rebuilds a worker's errno error, so callers can tell ENOSPC and the like by `code`. */
function errnoError(r: ErrnoResult): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(r.message);
  err.code = r.errno;
  if (r.syscall !== undefined) err.syscall = r.syscall;
  return err;
}

function shortRange(range: { path: string; offset: number; length: number }): CorruptionError {
  return new CorruptionError(`${range.path} is shorter than expected (wanted ${range.length} bytes at ${range.offset})`, {
    file: range.path,
  });
}

/** decodeInline does the work on the calling thread. */
export function decodeInline(codec: BlobCodec, range: Buffer, blobs: readonly RangeBlob[]): Decoded[] {
  return blobs.map((b) => {
    let raw: Buffer;
    try {
      raw = codec.decode(range.subarray(b.at, b.at + b.length), b.compression, b.rawLength, `blob ${b.id}`);
    } catch (err) {
      if (err instanceof CorruptionError) return new CorruptionError(err.message, { blob: b.id, pack: b.pack }, err);
      throw err;
    }
    return hashHex(raw) === b.id ? raw : refusal(b, 'hash');
  });
}

/** writeInline reads (when given a file), verifies and writes on the calling thread. */
export function writeInline(codec: BlobCodec, range: RangeBytes, blobs: readonly PlacedBlob[]): Written[] {
  let bytes: Buffer;
  if (Buffer.isBuffer(range)) {
    bytes = range;
  } else {
    bytes = Buffer.allocUnsafe(range.length);
    const fd = fs.openSync(range.path, 'r');
    try {
      let done = 0;
      while (done < range.length) {
        const n = fs.readSync(fd, bytes, done, range.length - done, range.offset + done);
        if (n === 0) throw shortRange(range);
        done += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  const decoded = decodeInline(codec, bytes, blobs);
  return blobs.map((b, i) => {
    const d = decoded[i]!;
    if (d instanceof CorruptionError) return d;
    for (const t of b.targets) {
      try {
        let done = 0;
        while (done < d.length) done += fs.writeSync(t.fd, d, done, d.length - done, t.offset + done);
      } catch (err) {
        return err as NodeJS.ErrnoException;
      }
    }
    return null;
  });
}

/**
 * packWrite lays a write job's blobs out in two transferable buffers rather
 * than as objects, which cost the main thread more to clone: numbers per
 * blob (at, length, compression, rawLength, target count, then fd and
 * offset per target) and the ids, 32 bytes each.
 */
function packWrite(blobs: readonly PlacedBlob[]): { kind: 'write'; meta: ArrayBuffer; ids: ArrayBuffer } {
  let n = 0;
  for (const b of blobs) n += 5 + 2 * b.targets.length;
  const meta = new Float64Array(n);
  const ids = Buffer.from(new ArrayBuffer(32 * blobs.length));
  let k = 0;
  blobs.forEach((b, i) => {
    ids.write(b.id, i * 32, 'hex');
    meta[k++] = b.at;
    meta[k++] = b.length;
    meta[k++] = b.compression;
    meta[k++] = b.rawLength;
    meta[k++] = b.targets.length;
    for (const t of b.targets) {
      meta[k++] = t.fd;
      meta[k++] = t.offset;
    }
  });
  return { kind: 'write', meta: meta.buffer, ids: ids.buffer as ArrayBuffer };
}

const NS = 1_000_000_000n;

/**
 * packFiles lays a files job out in transferable buffers: per range fd,
 * offset, length and blob count; per blob at, length, compression,
 * rawLength and its place in the job's plaintext buffer, and the ids;
 * per file where its name is in `names`, mode, uid, gid, mtime (seconds,
 * nanoseconds), size, whether it ends in a hole, the chunk count, then blob
 * index and offset per chunk.
 */
function packFiles(job: FilesJob): Record<string, unknown> & { transfer: ArrayBuffer[] } {
  const ranges = new Float64Array(job.ranges.length * 4);
  job.ranges.forEach((r, i) => ranges.set([r.fd, r.offset, r.length, r.count], i * 4));
  const blobMeta = new Float64Array(job.blobs.length * 5);
  const ids = Buffer.from(new ArrayBuffer(32 * job.blobs.length));
  let plainBytes = 0;
  job.blobs.forEach((b, i) => {
    ids.write(b.id, i * 32, 'hex');
    blobMeta.set([b.at, b.length, b.compression, b.rawLength, plainBytes], i * 5);
    plainBytes += b.rawLength;
  });
  let n = 0;
  let nameBytes = 0;
  for (const f of job.files) {
    n += 10 + 2 * f.chunks.length;
    nameBytes += f.name.length;
  }
  const files = new Float64Array(n);
  const names = Buffer.from(new ArrayBuffer(nameBytes));
  let k = 0;
  let at = 0;
  for (const f of job.files) {
    let s = f.mtimeNs / NS;
    let ns = f.mtimeNs % NS;
    if (ns < 0n) {
      ns += NS;
      s -= 1n;
    }
    const last = f.chunks[f.chunks.length - 1];
    f.name.copy(names, at);
    files.set([at, f.name.length, f.mode, f.uid, f.gid, Number(s), Number(ns), f.size, last && last[0] < 0 ? 1 : 0, f.chunks.length], k);
    at += f.name.length;
    k += 10;
    for (const [blob, offset] of f.chunks) {
      files[k++] = blob;
      files[k++] = offset;
    }
  }
  const transfer = [ranges.buffer, blobMeta.buffer, ids.buffer as ArrayBuffer, files.buffer, names.buffer as ArrayBuffer];
  return {
    kind: 'files',
    dirFd: job.dirFd,
    chown: job.chown,
    plainBytes,
    ranges: ranges.buffer,
    blobMeta: blobMeta.buffer,
    ids: ids.buffer,
    files: files.buffer,
    names: names.buffer,
    transfer,
  };
}

export interface DecodePoolOptions {
  /** Threads started once inline decoding has used up its budget. Default: cores, at most 4. */
  readonly workers?: number;
  /** Stored bytes decoded on the calling thread before any worker starts. Default 8 MiB. */
  readonly inlineBytes?: number;
}

interface Slot {
  readonly worker: Worker;
  pending: number;
}

interface Job {
  readonly blobs: readonly RangeBlob[];
  readonly files?: true;
  readonly range?: { path: string; offset: number; length: number };
  readonly resolve: (d: Decoded[] | Written[] | FileWritten[]) => void;
  readonly reject: (err: Error) => void;
}

export class DecodePool implements Decoder {
  private readonly slots: Slot[] = [];
  private readonly jobs = new Map<number, Job>();
  /** Free transfer buffers by size. */
  private readonly buffers = new TransferBuffers();
  private nextJob = 0;
  private inlineLeft: number;
  private readonly workers: number;
  private failed: Error | null = null;
  /** Set once the threads are being stopped; jobs settle when it resolves. */
  private stopping: Promise<void> | null = null;
  /** Raised by stopFiles: threads start no further file of a files job. */
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly codec: BlobCodec,
    opts: DecodePoolOptions = {},
  ) {
    this.workers = Math.max(1, opts.workers ?? Math.min(4, os.availableParallelism()));
    this.inlineLeft = opts.inlineBytes ?? 8 * 1024 * 1024;
  }

  /** Threads running (0 until inline decoding has used up its budget). */
  get threads(): number {
    return this.slots.length;
  }

  /** inline says whether the next `bytes` are handled on the calling thread (and counts them). */
  private inline(bytes: number): boolean {
    if (this.slots.length > 0 || this.inlineLeft <= 0) return false;
    this.inlineLeft -= bytes;
    return true;
  }

  decode(range: Buffer, blobs: readonly RangeBlob[]): Promise<Decoded[]> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.inline(range.length)) {
      try {
        return Promise.resolve(decodeInline(this.codec, range, blobs));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    const plain = blobs.map((b) => ({ id: b.id, at: b.at, length: b.length, compression: b.compression, rawLength: b.rawLength }));
    return this.post(blobs, range, { kind: 'decode', blobs: plain }, []) as Promise<Decoded[]>;
  }

  write(range: RangeBytes, blobs: readonly PlacedBlob[]): Promise<Written[]> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.inline(range.length)) {
      try {
        return Promise.resolve(writeInline(this.codec, range, blobs));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    const packed = packWrite(blobs);
    if (Buffer.isBuffer(range)) return this.post(blobs, range, packed, [packed.meta, packed.ids]) as Promise<Written[]>;
    const where = { path: range.path, offset: range.offset, length: range.length };
    const message = { ...packed, path: where.path, offset: where.offset, len: where.length };
    return this.post(blobs, null, message, [packed.meta, packed.ids], where) as Promise<Written[]>;
  }

  /**
   * writeFiles sends a files job to the least busy thread, once threads run
   * (before that, null: the caller writes those files another way).
   */
  writeFiles(job: FilesJob): Promise<FileWritten[]> | null {
    if (this.failed) return Promise.reject(this.failed);
    if (this.slots.length === 0 && this.inlineLeft > 0) return null;
    if (this.slots.length === 0) this.start();
    const slot = this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    const id = this.nextJob++;
    const { transfer, ...message } = packFiles(job);
    slot.pending++;
    return new Promise<FileWritten[]>((resolve, reject) => {
      this.jobs.set(id, { blobs: job.blobs, files: true, resolve: resolve as Job['resolve'], reject });
      slot.worker.postMessage({ ...message, job: id }, transfer);
    });
  }

  /** stopFiles has the threads withdraw every file of a files job they have not started. */
  stopFiles(): void {
    Atomics.store(this.stopFlag, 0, 1);
  }

  /** post sends a job to the least busy thread; a range in memory goes in a transfer buffer. */
  private post(
    blobs: readonly RangeBlob[],
    range: Buffer | null,
    message: Record<string, unknown>,
    transfer: ArrayBuffer[],
    file?: { path: string; offset: number; length: number },
  ): Promise<Decoded[] | Written[]> {
    if (this.slots.length === 0) this.start();
    const slot = this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    const job = this.nextJob++;
    if (range) {
      const buf = this.buffers.take(range.length);
      new Uint8Array(buf, 0, range.length).set(range);
      Object.assign(message, { buf, len: range.length });
      transfer.push(buf);
    }
    slot.pending++;
    return new Promise<Decoded[] | Written[]>((resolve, reject) => {
      this.jobs.set(job, { blobs, ...(file ? { range: file } : {}), resolve: resolve as Job['resolve'], reject });
      slot.worker.postMessage({ ...message, job }, transfer);
    });
  }

  private start(): void {
    const req = createRequire(import.meta.url);
    const zstdPath = req.resolve('zstd-napi');
    const zstdBindingPath = req.resolve('zstd-napi/binding');
    for (let i = 0; i < this.workers; i++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { zstdPath, zstdBindingPath, addonPath: ADDON_PATH, stop: this.stopFlag.buffer },
      });
      worker.unref();
      const slot: Slot = { worker, pending: 0 };
      worker.on('message', (m: WorkerReply) => this.done(slot, m));
      worker.on('error', (err) => void this.fail(err));
      this.slots.push(slot);
    }
  }

  private done(slot: Slot, m: WorkerReply): void {
    slot.pending--;
    if (m.buf) this.buffers.give(m.buf);
    const job = this.jobs.get(m.job);
    if (!job || this.stopping) return;
    this.jobs.delete(m.job);
    if (m.readErr) return job.reject(errnoError(m.readErr));
    if (m.short) return job.reject(shortRange(job.range!));
    if (m.files) {
      return job.resolve(
        m.files.map((r): FileWritten => {
          if (r === null) return null;
          if ('withdrawn' in r) return 'withdrawn';
          if ('fail' in r) return refusal(job.blobs[r.blob!]!, r.fail, r.message);
          return errnoError(r);
        }),
      );
    }
    job.resolve(
      m.results!.map((r, i) => {
        const b = job.blobs[i]!;
        if (r === null) return null;
        if ('fail' in r) return refusal(b, r.fail, r.message);
        if ('errno' in r) return errnoError(r);
        return Buffer.from(r.data, 0, r.length);
      }) as Decoded[] | Written[],
    );
  }

  /**
   * fail stops every thread and only then fails the jobs still out, so that
   * a caller waiting for its writes knows none can happen any more.
   */
  private fail(err: Error): Promise<void> {
    this.failed ??= err;
    this.stopping ??= Promise.all(this.slots.map((s) => s.worker.terminate())).then(() => {
      for (const job of this.jobs.values()) job.reject(this.failed!);
      this.jobs.clear();
    });
    return this.stopping;
  }

  async close(): Promise<void> {
    await this.fail(new Error('the restore decode pool is closed'));
    this.slots.splice(0);
  }
}
