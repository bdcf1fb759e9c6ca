/**
 * compress-pool: zstd compression on worker threads, so compressing new data
 * (the costliest step of a first snapshot) uses every core and leaves the
 * main thread free to walk, read and hash.
 *
 * The first 32 MiB of a session are compressed inline (workers start only
 * when a snapshot brings more new data than that). After that, blobs under
 * 32 KiB are gathered into batches (up to 256 blobs or 256 KiB, or what
 * arrived by the next turn of the event loop): a thread hop per small blob
 * would cost more than compressing it, but the main thread compressing
 * every small file of a first snapshot was its largest single cost. Larger
 * ones are copied into a transferable buffer and compressed by the
 * least busy worker; at most `perWorker` jobs wait per worker, and
 * encode() waits for room, which bounds the memory in flight. The worker
 * hands the buffer back with the compressed bytes in it, and it is reused:
 * a fresh zeroed buffer per blob cost the main thread page faults and
 * garbage collections.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { Compression } from '../format/blob.js';
import type { BlobCodec, Encoded } from './codec.js';
import { TransferBuffers } from '../util/transfer-buffers.js';

/** Blobs below this size are compressed in batches (or on the calling thread, see encode()). */
const INLINE_BELOW = 32 * 1024;
/** A batch of small blobs is sent when it holds this many blobs or bytes, or at the next turn of the event loop. */
const BATCH_BLOBS = 256;
const BATCH_BYTES = 256 * 1024;

// The worker's source: CommonJS, evaluated, so it runs from src/ and dist/ alike.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { CCtx, compressBound } = require(workerData.zstdBindingPath);
const cctx = new CCtx();
const level = workerData.level;
// Compressed bytes land in this buffer, reused (grown to the largest bound
// seen): a fresh one per blob cost a page fault per 4 KiB of it.
let out = new Uint8Array(0);
const compress = (raw) => {
  const bound = compressBound(raw.length);
  if (out.length < bound) out = new Uint8Array(new ArrayBuffer(bound));
  return cctx.compress(out, raw, level);
};
parentPort.on('message', ({ id, buf, len, sizes }) => {
  try {
    if (sizes) {
      // A batch of small blobs back to back: each kept output goes where
      // the outputs before it end (never past its own input, already read).
      const zlens = new Int32Array(sizes.length);
      let from = 0;
      let to = 0;
      for (let i = 0; i < sizes.length; i++) {
        const n = sizes[i];
        const raw = new Uint8Array(buf, from, n);
        from += n;
        zlens[i] = -1;
        if (n < 64) continue;
        const zlen = compress(raw);
        if (zlen > n - (n >> 5)) continue;
        new Uint8Array(buf, to, zlen).set(out.subarray(0, zlen));
        zlens[i] = zlen;
        to += zlen;
      }
      parentPort.postMessage({ id, buf, zlens }, [buf]);
      return;
    }
    const raw = new Uint8Array(buf, 0, len);
    const zlen = compress(raw);
    // The output goes back in the input's buffer (it is smaller when kept),
    // so no buffer is allocated per blob on either side.
    const keep = zlen <= len - (len >> 5);
    if (keep) raw.set(out.subarray(0, zlen));
    parentPort.postMessage({ id, buf, zlen: keep ? zlen : -1 }, [buf]);
  } catch (err) {
    parentPort.postMessage({ id, buf, error: String(err && err.message || err) }, [buf]);
  }
});
`;

interface Slot {
  readonly worker: Worker;
  pending: number;
}

interface Job {
  readonly raw: Buffer;
  readonly resolve: (e: Encoded) => void;
  readonly reject: (err: Error) => void;
}

/** Small blobs waiting to be sent to a worker together. */
interface Batch {
  readonly jobs: Job[];
  bytes: number;
}

export class CompressPool {
  private readonly slots: Slot[] = [];
  /** Free transfer buffers by size. */
  private readonly buffers = new TransferBuffers();
  private readonly jobs = new Map<number, Job>();
  private readonly batches = new Map<number, Job[]>();
  private batch: Batch | null = null;
  private batchesSent = 0;
  private readonly waiters: Array<() => void> = [];
  /** Small blobs waiting for a worker to have room for a new batch (all woken at once: they share one batch). */
  private readonly smallWaiters: Array<() => void> = [];
  private nextId = 0;
  private closed = false;

  private readonly zstdBindingPath = createRequire(import.meta.url).resolve('zstd-napi/binding');
  private inlineLeft: number;

  /**
   * @param workers threads to start once inline compression has used up its budget
   * @param perWorker jobs queued per worker at most
   * @param inlineBytes new data compressed on the calling thread before any
   *   worker starts: an incremental snapshot adds little, and for that little
   *   a thread hop and a copy cost more than they save
   */
  constructor(
    private readonly codec: BlobCodec,
    private readonly level: number,
    private readonly workers = Math.max(1, Math.min(4, os.availableParallelism())),
    private readonly perWorker = 2,
    inlineBytes = 32 * 1024 * 1024,
  ) {
    this.inlineLeft = inlineBytes;
  }

  private startWorkers(): void {
    for (let i = 0; i < this.workers; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { zstdBindingPath: this.zstdBindingPath, level: this.level } });
      worker.unref();
      const slot: Slot = { worker, pending: 0 };
      worker.on('message', (m: { id: number; buf: ArrayBuffer; zlen?: number; zlens?: Int32Array; error?: string }) => this.done(slot, m));
      worker.on('error', (err) => this.fail(slot, err));
      this.slots.push(slot);
    }
  }

  /** encode compresses `raw` when that pays; `raw` may be reused once this resolves. */
  async encode(raw: Buffer): Promise<Encoded> {
    if (this.closed || raw.length < 64) return this.codec.encode(raw);
    if (raw.length < INLINE_BELOW) {
      if (this.slots.length === 0) {
        if (this.inlineLeft > 0) {
          this.inlineLeft -= raw.length;
          return this.codec.encode(raw);
        }
        this.startWorkers();
      }
      // Batches wait for room as single jobs do, so the small blobs held
      // (and the buffers they point into) stay bounded; one joining a batch
      // being gathered does not wait.
      while (!this.batch && !this.closed && this.leastBusy().pending >= this.perWorker) {
        await new Promise<void>((r) => this.smallWaiters.push(r));
      }
      if (this.closed) return this.codec.encode(raw);
      return this.queueSmall(raw);
    }
    if (this.slots.length === 0) {
      if (this.inlineLeft > 0) {
        this.inlineLeft -= raw.length;
        return this.codec.encode(raw);
      }
      this.startWorkers();
    }
    let slot = this.leastBusy();
    while (slot.pending >= this.perWorker) {
      await new Promise<void>((r) => this.waiters.push(r));
      slot = this.leastBusy();
    }
    const buf = this.buffers.take(raw.length);
    new Uint8Array(buf, 0, raw.length).set(raw);
    const id = this.nextId++;
    slot.pending++;
    return new Promise<Encoded>((resolve, reject) => {
      this.jobs.set(id, { raw, resolve, reject });
      slot.worker.postMessage({ id, buf, len: raw.length }, [buf]);
    });
  }

  /**
   * queueSmall adds a small blob to the batch being gathered; a thread hop
   * per small blob would cost more than compressing it, so one is made per
   * batch. `raw` is copied when the batch is sent.
   */
  private queueSmall(raw: Buffer): Promise<Encoded> {
    return new Promise<Encoded>((resolve, reject) => {
      if (!this.batch) {
        this.batch = { jobs: [], bytes: 0 };
        setImmediate(() => this.sendBatch());
      }
      this.batch.jobs.push({ raw, resolve, reject });
      this.batch.bytes += raw.length;
      if (this.batch.jobs.length >= BATCH_BLOBS || this.batch.bytes >= BATCH_BYTES) this.sendBatch();
    });
  }

  private sendBatch(): void {
    const batch = this.batch;
    if (!batch || batch.jobs.length === 0) return;
    this.batch = null;
    if (this.closed) {
      for (const job of batch.jobs) job.resolve(this.codec.encode(job.raw));
      return;
    }
    const buf = this.buffers.take(batch.bytes);
    const bytes = new Uint8Array(buf);
    const sizes: number[] = [];
    let at = 0;
    for (const job of batch.jobs) {
      bytes.set(job.raw, at);
      at += job.raw.length;
      sizes.push(job.raw.length);
    }
    const id = this.nextId++;
    const slot = this.leastBusy();
    slot.pending++;
    this.batchesSent++;
    this.batches.set(id, batch.jobs);
    slot.worker.postMessage({ id, buf, len: at, sizes }, [buf]);
  }

  /** batchDone hands each blob of a batch its compressed bytes (in the batch's buffer, reused once all are released). */
  private batchDone(jobs: Job[], m: { buf: ArrayBuffer; zlens?: Int32Array; error?: string }): void {
    if (m.error || !m.zlens) {
      this.buffers.give(m.buf);
      for (const job of jobs) job.reject(new Error(`compression failed: ${m.error ?? 'no result'}`));
      return;
    }
    let held = 0;
    const release = (): void => {
      if (--held === 0) this.buffers.give(m.buf);
    };
    let at = 0;
    for (let i = 0; i < jobs.length; i++) {
      const zlen = m.zlens[i]!;
      if (zlen < 0) {
        jobs[i]!.resolve({ stored: jobs[i]!.raw, compression: Compression.None });
        continue;
      }
      held++;
      let released = false;
      const stored = Buffer.from(m.buf, at, zlen);
      at += zlen;
      jobs[i]!.resolve({
        stored,
        compression: Compression.Zstd,
        release: () => {
          if (released) return;
          released = true;
          release();
        },
      });
    }
    if (held === 0) this.buffers.give(m.buf);
  }

  /** Batches of small blobs sent to the workers so far. */
  get batchCount(): number {
    return this.batchesSent;
  }

  private leastBusy(): Slot {
    return this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
  }

  private done(slot: Slot, m: { id: number; buf: ArrayBuffer; zlen?: number; zlens?: Int32Array; error?: string }): void {
    slot.pending--;
    this.waiters.shift()?.();
    for (const w of this.smallWaiters.splice(0)) w();
    const batch = this.batches.get(m.id);
    if (batch) {
      this.batches.delete(m.id);
      return this.batchDone(batch, m);
    }
    const job = this.jobs.get(m.id);
    if (!job) return;
    this.jobs.delete(m.id);
    if (m.error) {
      this.buffers.give(m.buf);
      job.reject(new Error(`compression failed: ${m.error}`));
    } else if (m.zlen !== undefined && m.zlen >= 0) {
      job.resolve({ stored: Buffer.from(m.buf, 0, m.zlen), compression: Compression.Zstd, release: () => this.buffers.give(m.buf) });
    } else {
      this.buffers.give(m.buf);
      job.resolve({ stored: job.raw, compression: Compression.None });
    }
  }

  private fail(_slot: Slot, err: Error): void {
    for (const job of this.jobs.values()) job.reject(err);
    this.jobs.clear();
    for (const jobs of this.batches.values()) for (const job of jobs) job.reject(err);
    this.batches.clear();
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
    for (const w of this.smallWaiters.splice(0)) w();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
    for (const w of this.smallWaiters.splice(0)) w();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
