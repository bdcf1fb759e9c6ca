/**
 * compress-pool: zstd compression on worker threads, so compressing new data
 * (the costliest step of a first snapshot) uses every core and leaves the
 * main thread free to walk, read and hash.
 *
 * Small blobs are compressed inline: a thread hop costs more than they do;
 * so are the first 32 MiB of a session (workers start only when a snapshot
 * brings more new data than that). Larger ones are copied into a transferable buffer and compressed by the
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

/** Blobs below this size are compressed on the calling thread. */
const INLINE_BELOW = 32 * 1024;

// The worker's source: CommonJS, evaluated, so it runs from src/ and dist/ alike.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Compressor } = require(workerData.zstdPath);
const c = new Compressor();
c.setParameters({ compressionLevel: workerData.level });
parentPort.on('message', ({ id, buf, len }) => {
  try {
    const raw = new Uint8Array(buf, 0, len);
    const z = c.compress(raw);
    // The output goes back in the input's buffer (it is smaller when kept),
    // so no buffer is allocated per blob on either side.
    const keep = z.length <= len - (len >> 5);
    if (keep) raw.set(z);
    parentPort.postMessage({ id, buf, zlen: keep ? z.length : -1 }, [buf]);
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

export class CompressPool {
  private readonly slots: Slot[] = [];
  /** Free transfer buffers by size. */
  private readonly buffers = new TransferBuffers();
  private readonly jobs = new Map<number, Job>();
  private readonly waiters: Array<() => void> = [];
  private nextId = 0;
  private closed = false;

  private readonly zstdPath = createRequire(import.meta.url).resolve('zstd-napi');
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
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { zstdPath: this.zstdPath, level: this.level } });
      worker.unref();
      const slot: Slot = { worker, pending: 0 };
      worker.on('message', (m: { id: number; buf: ArrayBuffer; zlen?: number; error?: string }) => this.done(slot, m));
      worker.on('error', (err) => this.fail(slot, err));
      this.slots.push(slot);
    }
  }

  /** encode compresses `raw` when that pays; `raw` may be reused once this resolves. */
  async encode(raw: Buffer): Promise<Encoded> {
    if (raw.length < INLINE_BELOW || this.closed) return this.codec.encode(raw);
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

  private leastBusy(): Slot {
    return this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
  }

  private done(slot: Slot, m: { id: number; buf: ArrayBuffer; zlen?: number; error?: string }): void {
    slot.pending--;
    this.waiters.shift()?.();
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
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
