/**
 * decode-pool: turns the bytes of a pack range into verified plaintext blobs,
 * off the main thread. For each blob of the range: decompress (zstd) when it
 * is stored compressed, check the length, hash the plaintext (BLAKE3, native
 * addon) and compare with the blob's id. Only blobs that pass are returned;
 * the others come back as CorruptionError, so bad bytes never leave here.
 *
 * A restore's first `inlineBytes` of stored data are decoded on the calling
 * thread (a small restore costs less than starting threads); after that,
 * `workers` threads start and each range goes, whole, to the least busy
 * one. The range is copied once into a transfer buffer of the pool's own
 * (transferring detaches, and a storage may hand out memory it keeps); the
 * worker sends every verified blob back in a buffer of its own and returns
 * the transfer buffer, which is reused: a fresh buffer per range cost the
 * main thread more in page faults than the copy. The caller bounds how many
 * ranges are in flight (blob-fetcher.ts), which bounds the memory here.
 */
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

export interface Decoder {
  decode(range: Buffer, blobs: readonly RangeBlob[]): Promise<Decoded[]>;
  close(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// src/engine/restore and dist/engine/restore sit three levels below the package root.
const ADDON_PATH = path.resolve(here, '..', '..', '..', 'build', 'Release', 'kova_native.node');

// The worker's source: CommonJS, evaluated, so it runs from src/ and dist/ alike.
// Results: {data} with the verified plaintext in a buffer of its own (the
// range buffer goes back to be reused), or {fail, message} for a refused blob.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Decompressor } = require(workerData.zstdPath);
const native = require(workerData.addonPath);
const d = new Decompressor();
const own = (u8) => {
  if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && !(u8.buffer instanceof SharedArrayBuffer)) return u8.buffer;
  const c = new ArrayBuffer(u8.length);
  new Uint8Array(c).set(u8);
  return c;
};
parentPort.on('message', ({ job, buf, len, blobs }) => {
  const range = Buffer.from(buf, 0, len);
  const results = [];
  const transfer = [buf];
  for (const b of blobs) {
    let raw = range.subarray(b.at, b.at + b.length);
    if (b.compression !== ${Compression.None}) {
      try {
        raw = d.decompress(raw);
      } catch (err) {
        results.push({ fail: 'damaged', message: String((err && err.message) || err) });
        continue;
      }
      if (raw.length !== b.rawLength) {
        results.push({ fail: 'length', message: String(raw.length) });
        continue;
      }
    }
    if (native.hash(raw).toString('hex') !== b.id) {
      results.push({ fail: 'hash' });
      continue;
    }
    const data = raw.buffer === buf ? own(new Uint8Array(raw)) : own(raw);
    if (!transfer.includes(data)) transfer.push(data);
    results.push({ data, length: raw.length });
  }
  parentPort.postMessage({ job, buf, results }, transfer);
});
`;

type WorkerResult = { data: ArrayBuffer; length: number } | { fail: 'damaged' | 'length' | 'hash'; message?: string };

function refusal(b: RangeBlob, kind: 'damaged' | 'length' | 'hash', message?: string): CorruptionError {
  const details = { blob: b.id, pack: b.pack };
  if (kind === 'damaged') return new CorruptionError(`blob ${b.id}: compressed data is damaged (${message ?? ''})`, details);
  if (kind === 'length')
    return new CorruptionError(`blob ${b.id}: decompressed to ${message ?? '?'} bytes, expected ${b.rawLength}`, details);
  return new CorruptionError(`blob ${b.id} in pack ${b.pack} does not match its hash`, details);
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
  readonly resolve: (d: Decoded[]) => void;
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

  decode(range: Buffer, blobs: readonly RangeBlob[]): Promise<Decoded[]> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.slots.length === 0 && this.inlineLeft > 0) {
      this.inlineLeft -= range.length;
      try {
        return Promise.resolve(decodeInline(this.codec, range, blobs));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    if (this.slots.length === 0) this.start();
    const slot = this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    const buf = this.buffers.take(range.length);
    new Uint8Array(buf, 0, range.length).set(range);
    const job = this.nextJob++;
    slot.pending++;
    const plain = blobs.map((b) => ({ id: b.id, at: b.at, length: b.length, compression: b.compression, rawLength: b.rawLength }));
    return new Promise<Decoded[]>((resolve, reject) => {
      this.jobs.set(job, { blobs, resolve, reject });
      slot.worker.postMessage({ job, buf, len: range.length, blobs: plain }, [buf]);
    });
  }

  private start(): void {
    const zstdPath = createRequire(import.meta.url).resolve('zstd-napi');
    for (let i = 0; i < this.workers; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { zstdPath, addonPath: ADDON_PATH } });
      worker.unref();
      const slot: Slot = { worker, pending: 0 };
      worker.on('message', (m: { job: number; buf: ArrayBuffer; results: WorkerResult[] }) => this.done(slot, m));
      worker.on('error', (err) => this.fail(err));
      this.slots.push(slot);
    }
  }

  private done(slot: Slot, m: { job: number; buf: ArrayBuffer; results: WorkerResult[] }): void {
    slot.pending--;
    this.buffers.give(m.buf);
    const job = this.jobs.get(m.job);
    if (!job) return;
    this.jobs.delete(m.job);
    job.resolve(
      m.results.map((r, i) => {
        const b = job.blobs[i]!;
        if ('fail' in r) return refusal(b, r.fail, r.message);
        return Buffer.from(r.data, 0, r.length);
      }),
    );
  }

  private fail(err: Error): void {
    this.failed = err;
    for (const job of this.jobs.values()) job.reject(err);
    this.jobs.clear();
  }

  async close(): Promise<void> {
    this.fail(new Error('the restore decode pool is closed'));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
