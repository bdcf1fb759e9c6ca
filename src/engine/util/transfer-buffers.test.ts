/** Transfer buffers kept for reuse stay under a byte cap, whatever the mix of sizes given back. */
import { describe, expect, it } from 'vitest';
import { TransferBuffers } from './transfer-buffers.js';

describe('TransferBuffers', () => {
  it('keeps at most 32 MiB of buffers in all, across size classes', () => {
    const pool = new TransferBuffers();
    const taken: ArrayBuffer[] = [];
    // Eight buffers of every class from 64 KiB to 16 MiB, all in flight at once, then all given back.
    for (let size = 64 * 1024; size <= 16 * 1024 * 1024; size *= 2) for (let i = 0; i < 8; i++) taken.push(pool.take(size));
    for (const b of taken) pool.give(b);
    expect(pool.keptBytes).toBeLessThanOrEqual(32 * 1024 * 1024);
    expect(pool.keptBytes).toBeGreaterThan(0);
  });

  it('hands a kept buffer out again for a job of its size class', () => {
    const pool = new TransferBuffers();
    const a = pool.take(100_000);
    expect(a.byteLength).toBe(128 * 1024);
    pool.give(a);
    expect(pool.keptBytes).toBe(128 * 1024);
    expect(pool.take(70_000)).toBe(a);
    expect(pool.keptBytes).toBe(0);
  });
});
