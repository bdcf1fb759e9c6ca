/**
 * The parallel restore pipeline through a real repository: ranges are read
 * once and in order, blobs are verified on worker threads (inline decoding
 * switched off), memory stays within the budget, and corruption, aborts,
 * many small files, hard links and sparse files behave as in a plain restore.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CorruptionError, DiskFullError, KovaError } from '../../core/errors.js';
import { asDiskFull } from '../util/disk-space.js';
import { BlobType } from '../format/blob.js';
import { Repository } from '../repo/repository.js';
import { compareTrees, describeTree, prng, tempDir } from '../testing.js';
import { BlobFetcher, type PackSource } from './blob-fetcher.js';
import { type BlobSource, Restorer } from './restorer.js';
import { DecodePool, type Decoder, type PlacedBlob, type RangeBlob, decodeInline, writeInline } from './decode-pool.js';
import { BlobCodec } from '../repo/codec.js';
import { packName } from '../repo/master-index.js';
import { Compression, type BlobLocation } from '../format/blob.js';
import { hashHex } from '../format/hash.js';

const SMALL_CHUNKS = { minSize: 4096, avgSize: 16384, maxSize: 65536 };
/** Worker threads from the first byte. */
const THREADS = { inlineBytes: 0, workers: 2 };

const cleanups: string[] = [];
const repos: Repository[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const r of repos.splice(0)) await r.close();
  for (const d of cleanups.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function workDir(): string {
  const d = tempDir('kova-pipe-');
  cleanups.push(d);
  return d;
}

function write(root: string, rel: string, data: Buffer): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}

const text = (seed: number, n: number): Buffer => Buffer.from(prng(seed, n).toString('base64').slice(0, n));

/** A volume with big files (raw and compressible), small ones, a sparse file and hard links. */
function makeVolume(root: string): void {
  for (let i = 0; i < 6; i++) write(root, `big/r${i}.bin`, prng(100 + i, 300_000 + i * 7_777));
  for (let i = 0; i < 4; i++) write(root, `big/t${i}.txt`, text(200 + i, 250_000));
  for (let i = 0; i < 300; i++) write(root, `small/d${i % 17}/f${i}`, i % 3 === 0 ? text(i, i * 5) : prng(i + 1, (i * 37) % 1500));
  const fd = fs.openSync(path.join(root, 'sparse.img'), 'w');
  fs.writeSync(fd, prng(9, 40_000), 0, 40_000, 1 << 20);
  fs.writeSync(fd, text(9, 30_000), 0, 30_000, 3 << 20);
  fs.ftruncateSync(fd, 8 << 20);
  fs.closeSync(fd);
  fs.mkdirSync(path.join(root, 'links'));
  for (let i = 0; i < 5; i++) fs.linkSync(path.join(root, `small/d${i}/f${i}`), path.join(root, `links/l${i}`));
}

async function setup(): Promise<{ dir: string; src: string; repo: Repository; id: string }> {
  const dir = workDir();
  const src = path.join(dir, 'src');
  makeVolume(src);
  const repo = await Repository.init(path.join(dir, 'repo'), { chunker: SMALL_CHUNKS, packSize: 1024 * 1024 });
  repos.push(repo);
  const snap = await repo.snapshot(src);
  return { dir, src, repo, id: snap.id };
}

/**
 * Counts storage reads of pack files during `fn`, with their offsets per
 * pack. The storage hides its local paths meanwhile, so every range is read
 * through readAt (on this thread) rather than by the workers.
 */
async function countPackReads(repo: Repository, fn: () => Promise<void>): Promise<Map<string, number[]>> {
  const reads = new Map<string, number[]>();
  vi.spyOn(repo.storage as Required<Pick<typeof repo.storage, 'localPath'>>, 'localPath').mockReturnValue(undefined);
  const orig = repo.storage.readAt.bind(repo.storage);
  vi.spyOn(repo.storage, 'readAt').mockImplementation((name, offset, length) => {
    if (name.startsWith('packs/')) reads.set(name, [...(reads.get(name) ?? []), offset]);
    return orig(name, offset, length);
  });
  await fn();
  return reads;
}

describe('parallel restore', () => {
  it('restores exactly on worker threads, reading far fewer ranges than blobs', async () => {
    const { dir, src, repo, id } = await setup();
    const index = await repo.loadIndex();
    const dataBlobs = [...index.entries()].filter(([, l]) => l.type === BlobType.Data).length;
    const target = path.join(dir, 'out');
    const reads = await countPackReads(repo, async () => {
      await repo.restore(id, target, { pipeline: THREADS });
    });
    expect(compareTrees(describeTree(src), describeTree(target))).toEqual([]);
    const total = [...reads.values()].reduce((n, r) => n + r.length, 0);
    expect(dataBlobs).toBeGreaterThan(300);
    // Each pack is read in a few ranges, not blob by blob.
    expect(total).toBeLessThan(dataBlobs / 4);
    // The sparse file stays sparse.
    expect(fs.statSync(path.join(target, 'sparse.img')).blocks * 512).toBeLessThan(1 << 20);
    // Hard links are links again.
    expect(fs.statSync(path.join(target, 'links/l3')).ino).toBe(fs.statSync(path.join(target, 'small/d3/f3')).ino);
  });

  it('stays within a small memory budget without deadlocking', async () => {
    const { dir, src, repo, id } = await setup();
    const target = path.join(dir, 'out');
    await repo.restore(id, target, { pipeline: { ...THREADS, budgetBytes: 200_000, batchBytes: 64 * 1024 } });
    expect(compareTrees(describeTree(src), describeTree(target))).toEqual([]);
  });

  it('fails on a corrupt blob in the middle, naming the snapshot and file, without writing a wrong byte', async () => {
    const { dir, src, repo, id } = await setup();
    const index = await repo.loadIndex();
    // A raw data blob of a big file, in the middle of the packs.
    const candidates = [...index.entries()].filter(
      ([, l]) => l.type === BlobType.Data && l.length > 8192 && l.compression === Compression.None,
    );
    const [blobId, loc] = candidates[Math.floor(candidates.length / 2)]!;
    const packFile = path.join(dir, 'repo', packName(loc.pack));
    const fd = fs.openSync(packFile, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, loc.offset + 100);
    b[0] = b[0]! ^ 0x40;
    fs.writeSync(fd, b, 0, 1, loc.offset + 100);
    fs.closeSync(fd);

    const target = path.join(dir, 'out');
    const err = await repo.restore(id, target, { pipeline: THREADS }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as KovaError).code).toBe('REPO_CORRUPT');
    expect((err as Error).message).toContain(id);
    expect((err as Error).message).toContain(blobId);
    expect((err as Error).message).toMatch(/: file (big\/[rt]\d\.(bin|txt)|sparse\.img): blob /);
    // Chunks are written as they are verified, not in file order: every byte
    // written is the original's, the others are still holes (zeros).
    const walk = (rel: string): void => {
      for (const e of fs.readdirSync(path.join(target, rel), { withFileTypes: true })) {
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(child);
        else if (e.isFile()) {
          const got = fs.readFileSync(path.join(target, child));
          const want = fs.readFileSync(path.join(src, child));
          expect(got.length, child).toBeLessThanOrEqual(want.length);
          expect(
            got.findIndex((v, i) => v !== 0 && v !== want[i]),
            child,
          ).toBe(-1);
        }
      }
    };
    walk('');
  });

  it('stops with ABORTED when the signal fires mid-restore, withdrawing writes not yet started', async () => {
    const { dir, repo, id } = await setup();
    const ac = new AbortController();
    const target = path.join(dir, 'out');
    const err = await repo
      .restore(id, target, {
        // One small range at a time: most writes are still queued when the signal fires.
        pipeline: { ...THREADS, readers: 1, maxRange: 64 * 1024 },
        signal: ac.signal,
        onProgress: (p) => {
          if (p.bytesDone > 500_000) ac.abort();
        },
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(KovaError);
    expect((err as KovaError).code).toBe('ABORTED');
    // Not everything was written.
    const restored = fs.readdirSync(path.join(target, 'big')).reduce((n, f) => n + fs.statSync(path.join(target, 'big', f)).size, 0);
    expect(restored).toBeLessThan(6 * 300_000);
  });

  it('restores many small files with one read per pack range', async () => {
    const dir = workDir();
    const src = path.join(dir, 'src');
    for (let i = 0; i < 2000; i++) write(src, `d${i % 40}/f${i}`, prng(i + 7, (i * 131) % 1500));
    const repo = await Repository.init(path.join(dir, 'repo'), { chunker: SMALL_CHUNKS, packSize: 1024 * 1024 });
    repos.push(repo);
    const snap = await repo.snapshot(src);
    const target = path.join(dir, 'out');
    const reads = await countPackReads(repo, async () => {
      await repo.restore(snap.id, target, { pipeline: THREADS });
    });
    expect(compareTrees(describeTree(src), describeTree(target))).toEqual([]);
    const total = [...reads.values()].reduce((n, r) => n + r.length, 0);
    expect(total).toBeLessThan(200);
  });
});

describe('chunks written by the workers', () => {
  it('restores a chunk used several times in a file and across files, small and large', async () => {
    const dir = workDir();
    const src = path.join(dir, 'src');
    const block = prng(31, 70_000);
    const small = prng(32, 3000);
    // The same content at several offsets of one file, in several files, and in small files of one batch.
    write(src, 'big/twice.bin', Buffer.concat([block, prng(33, 5000), block, block]));
    write(src, 'big/again.bin', Buffer.concat([prng(34, 1000), block, block]));
    for (let i = 0; i < 40; i++) write(src, `small/s${i}`, i % 2 === 0 ? small : Buffer.concat([small, small]));
    const repo = await Repository.init(path.join(dir, 'repo'), { chunker: SMALL_CHUNKS, packSize: 1024 * 1024 });
    repos.push(repo);
    const snap = await repo.snapshot(src);
    for (const [name, pipeline] of [
      ['threads', THREADS],
      ['inline', { inlineBytes: 1 << 30 }],
    ] as const) {
      const target = path.join(dir, `out-${name}`);
      await repo.restore(snap.id, target, { pipeline });
      expect(compareTrees(describeTree(src), describeTree(target)), name).toEqual([]);
    }
  });

  it('closes no file while a write to it is outstanding: after a failure no byte lands anywhere else', async () => {
    const dir = workDir();
    const src = path.join(dir, 'src');
    write(src, 'big.bin', prng(51, 600_000));
    const repo = await Repository.init(path.join(dir, 'repo'), { chunker: SMALL_CHUNKS, packSize: 1024 * 1024 });
    repos.push(repo);
    const snap = await repo.snapshot(src);
    const top = await repo.readTree(snap.root.subtree!);
    const ids = top[0]!.content!.map((c) => c.id!);
    // A plain source: the first chunk fails at once, the others arrive late,
    // so their writes are still outstanding when the file fails.
    const late: Array<Promise<Buffer>> = [];
    const src2: BlobSource = {
      readTree: (id) => repo.readTree(id),
      readBlob: (id) => {
        if (id === ids[0]) return Promise.reject(new CorruptionError(`blob ${id} does not match its hash`, { blob: id }));
        const p = new Promise<void>((r) => setTimeout(r, 150)).then(() => repo.readBlob(id));
        late.push(p);
        return p;
      },
    };
    const target = path.join(dir, 'out');
    const err = await new Restorer(src2, snap).run(target).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptionError);
    expect(late.length).toBeGreaterThan(3);
    // Descriptors the restore closed are the first an open reuses now.
    const scratchDir = path.join(dir, 'scratch');
    fs.mkdirSync(scratchDir);
    const scratch = Array.from({ length: 50 }, (_, i) => fs.openSync(path.join(scratchDir, `s${i}`), 'w'));
    await Promise.allSettled(late);
    await new Promise((r) => setTimeout(r, 50));
    for (const s of scratch) fs.closeSync(s);
    expect(fs.readdirSync(scratchDir).filter((n) => fs.statSync(path.join(scratchDir, n)).size > 0)).toEqual([]);
  });

  it('after a failure in a worker, no byte lands in another file', async () => {
    const dir = workDir();
    const src = path.join(dir, 'src');
    for (let i = 0; i < 8; i++) write(src, `big/r${i}.bin`, prng(300 + i, 2_000_000));
    for (let i = 0; i < 600; i++) write(src, `small/d${i % 7}/f${i}`, prng(400 + i, 1000 + ((i * 53) % 20_000)));
    const repo = await Repository.init(path.join(dir, 'repo'), { chunker: SMALL_CHUNKS, packSize: 1024 * 1024 });
    repos.push(repo);
    const snap = await repo.snapshot(src);
    // Damage the first chunk of one big file: its other chunks are in flight when it fails.
    const big = (await repo.readTree(snap.root.subtree!)).find((n) => n.name.toString() === 'big')!;
    const node = (await repo.readTree(big.subtree!)).find((n) => n.name.toString() === 'r3.bin')!;
    const loc = (await repo.loadIndex()).get(node.content![0]!.id!)!;
    const fd = fs.openSync(path.join(dir, 'repo', packName(loc.pack)), 'r+');
    fs.writeSync(fd, Buffer.from([0xa5]), 0, 1, loc.offset + 7);
    fs.closeSync(fd);
    const target = path.join(dir, 'out');
    const err = await repo.restore(snap.id, target, { pipeline: THREADS }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptionError);
    // Every byte restored is the original's or still a hole.
    const walk = (rel: string): void => {
      for (const e of fs.readdirSync(path.join(target, rel), { withFileTypes: true })) {
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(child);
        else {
          const got = fs.readFileSync(path.join(target, child));
          const want = fs.readFileSync(path.join(src, child));
          expect(got.length, child).toBeLessThanOrEqual(want.length);
          expect(
            got.findIndex((v, i) => v !== 0 && v !== want[i]),
            child,
          ).toBe(-1);
        }
      }
    };
    walk('');
  });
});

/** Descriptors of this process open on files below `dir`. */
function openBelow(dir: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const to = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (to.startsWith(dir + '/')) out.push(to);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

describe('small files written whole by the workers', () => {
  /** Small files with their own modes and times, empty ones, one ending in a hole, and a name that is not UTF-8. */
  function smallVolume(root: string): void {
    for (let i = 0; i < 400; i++) {
      const p = path.join(root, `d${i % 9}`, `f${i}`);
      write(root, `d${i % 9}/f${i}`, i % 50 === 0 ? Buffer.alloc(0) : prng(600 + i, (i * 97) % 1500));
      fs.chmodSync(p, [0o644, 0o600, 0o755, 0o4755][i % 4]!);
      fs.utimesSync(p, 1_600_000_000 + i, 1_500_000_000.123456 + i);
    }
    const sparse = path.join(root, 'd1', 'tail-hole');
    fs.writeFileSync(sparse, prng(7, 9000));
    fs.truncateSync(sparse, 200_000);
    write(root, 'd2/x', prng(8, 100));
    fs.renameSync(path.join(root, 'd2/x'), Buffer.concat([Buffer.from(path.join(root, 'd2') + '/'), Buffer.from([0xff, 0x41])]));
  }

  it('creates, writes and finishes them on the threads, exactly, with the packs closed after', async () => {
    const dir = workDir();
    const src = path.join(dir, 'src');
    smallVolume(src);
    const repo = await Repository.init(path.join(dir, 'repo'), { chunker: SMALL_CHUNKS, packSize: 1024 * 1024 });
    repos.push(repo);
    const snap = await repo.snapshot(src);
    const jobs = vi.spyOn(DecodePool.prototype, 'writeFiles');
    const target = path.join(dir, 'out');
    await repo.restore(snap.id, target, { pipeline: THREADS });
    expect(compareTrees(describeTree(src), describeTree(target))).toEqual([]);
    expect(fs.statSync(path.join(target, 'd1', 'tail-hole')).blocks * 512).toBeLessThan(100_000);
    // Every small file went to a thread whole, in a job per directory batch.
    const files = jobs.mock.calls.reduce((n, [job]) => n + job.files.length, 0);
    expect(files).toBe(402);
    expect(jobs.mock.calls.length).toBeLessThan(20);
    // The storage's own read handles (trees) go with the repository; none of the restore's stays.
    await repos.pop()!.close();
    expect(openBelow(path.join(dir, 'repo'))).toEqual([]);
  });

  it('fails a small file whose blob is damaged, naming it, and writes no wrong byte', async () => {
    const dir = workDir();
    const src = path.join(dir, 'src');
    smallVolume(src);
    const repo = await Repository.init(path.join(dir, 'repo'), { chunker: SMALL_CHUNKS, packSize: 1024 * 1024 });
    repos.push(repo);
    const snap = await repo.snapshot(src);
    const d3 = (await repo.readTree(snap.root.subtree!)).find((n) => n.name.toString() === 'd3')!;
    const node = (await repo.readTree(d3.subtree!)).find((n) => n.name.toString() === 'f30')!;
    const loc = (await repo.loadIndex()).get(node.content![0]!.id!)!;
    const fd = fs.openSync(path.join(dir, 'repo', packName(loc.pack)), 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, loc.offset + 3);
    fs.closeSync(fd);
    const target = path.join(dir, 'out');
    const err = await repo.restore(snap.id, target, { pipeline: THREADS }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as KovaError).code).toBe('REPO_CORRUPT');
    expect((err as Error).message).toContain(`${snap.id}: file d3/f30: blob ${node.content![0]!.id}`);
    expect(fs.existsSync(path.join(target, 'd3', 'f30'))).toBe(false);
    for (const d of fs.readdirSync(target)) {
      for (const f of fs.readdirSync(path.join(target, d), { encoding: 'buffer' })) {
        const at = (root: string): Buffer => Buffer.concat([Buffer.from(`${root}/${d}/`), f]);
        const got = fs.readFileSync(at(target));
        expect(got.equals(fs.readFileSync(at(src)).subarray(0, got.length)), `${d}/${f.toString()}`).toBe(true);
      }
    }
    // The storage's own read handles (trees) go with the repository; none of the restore's stays.
    await repos.pop()!.close();
    expect(openBelow(path.join(dir, 'repo'))).toEqual([]);
  });

  it('withdraws the files a thread has not started once stopped', async () => {
    const dir = workDir();
    const plain = [prng(41, 1000), prng(42, 1200)];
    const { range, blobs } = encodeRange(plain, 'ab'.repeat(32));
    fs.writeFileSync(path.join(dir, 'pack'), range);
    const packFd = fs.openSync(path.join(dir, 'pack'), 'r');
    const dirFd = fs.openSync(dir, 'r');
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 1 });
    const file = (name: string, blob: number) => ({
      name: Buffer.from(name),
      mode: 0o640,
      uid: 0,
      gid: 0,
      mtimeNs: 1_234_567_890_123_456_789n,
      size: plain[blob]!.length,
      chunks: [[blob, 0]] as Array<[number, number]>,
    });
    const job = { dirFd, ranges: [{ fd: packFd, offset: 0, length: range.length, count: 2 }], blobs, chown: false };
    try {
      expect(await pool.writeFiles({ ...job, files: [file('a', 0), file('b', 1)] })).toEqual([null, null]);
      expect(fs.readFileSync(path.join(dir, 'b')).equals(plain[1]!)).toBe(true);
      const st = fs.statSync(path.join(dir, 'a'), { bigint: true });
      expect([Number(st.mode & 0o777n), st.mtimeNs]).toEqual([0o640, 1_234_567_890_123_456_789n]);
      pool.stopFiles();
      expect(await pool.writeFiles({ ...job, files: [file('c', 0), file('d', 1)] })).toEqual(['withdrawn', 'withdrawn']);
      expect(fs.existsSync(path.join(dir, 'c'))).toBe(false);
    } finally {
      await pool.close();
      fs.closeSync(packFd);
      fs.closeSync(dirFd);
    }
  });
});

/* ---- the fetcher on its own ------------------------------------------------------ */

/** An in-memory pack of raw blobs, with every read recorded. */
function memoryPack(
  blobs: Buffer[],
  gap = 0,
  codec?: BlobCodec,
): { src: PackSource; ids: string[]; reads: Array<[number, number]>; pack: Buffer } {
  const locs = new Map<string, BlobLocation>();
  const parts: Buffer[] = [];
  let at = 0;
  const ids = blobs.map((b) => {
    const id = hashHex(b);
    const { stored, compression } = codec ? codec.encode(b) : { stored: b, compression: Compression.None };
    locs.set(id, {
      type: BlobType.Data,
      compression,
      pack: 'aa'.repeat(32),
      offset: at,
      length: stored.length,
      rawLength: b.length,
    });
    parts.push(Buffer.from(stored), Buffer.alloc(gap));
    at += stored.length + gap;
    return id;
  });
  const pack = Buffer.concat(parts);
  const reads: Array<[number, number]> = [];
  return {
    ids,
    reads,
    pack,
    src: {
      locate: (id) => locs.get(id),
      readAt: async (name, offset, length) => {
        expect(name).toBe(packName('aa'.repeat(32)));
        reads.push([offset, length]);
        return Buffer.from(pack.subarray(offset, offset + length));
      },
    },
  };
}

const inline: Decoder = {
  decode: async (range, blobs) => decodeInline(new BlobCodec(3), range, blobs),
  write: async (range, blobs) => writeInline(new BlobCodec(3), range, blobs),
  close: async () => undefined,
};

describe('BlobFetcher', () => {
  it('reads blobs asked for together as one forward range each', async () => {
    const blobs = Array.from({ length: 50 }, (_, i) => prng(i + 1, 1000 + i));
    const { src, ids, reads } = memoryPack(blobs, 100);
    const f = new BlobFetcher(src, inline, { maxRange: 20_000, maxGap: 1000 });
    // Asked for in reverse order: still read forward.
    const leases = [...ids].reverse().map((id) => f.tryGet(id)!);
    const got = await Promise.all(leases.map((l) => l.data));
    expect(got.reverse().map((b) => b.equals(blobs[got.indexOf(b)]!))).toEqual(blobs.map(() => true));
    expect(reads.length).toBe(Math.ceil((50 * 1125) / 20_000) + 0);
    for (let i = 1; i < reads.length; i++) expect(reads[i]![0]).toBeGreaterThan(reads[i - 1]![0]);
  });

  it('ends a range at maxRangePlain of plaintext, however well the blobs compress', async () => {
    const blobs = Array.from({ length: 20 }, (_, i) => Buffer.from(`row ${String(i).padStart(3, '0')} `.repeat(1250)));
    const { src, ids, reads } = memoryPack(blobs, 0, new BlobCodec(3));
    const stored = ids.map((id) => src.locate(id)!.length).reduce((a, b) => a + b, 0);
    expect(stored).toBeLessThan(20 * 1000); // they do compress: a 1 MiB range would hold them all
    const f = new BlobFetcher(src, inline, { maxRange: 1 << 20, maxRangePlain: 3 * blobs[0]!.length });
    const got = await Promise.all(ids.map((id) => f.tryGet(id)!.data));
    expect(got.every((b, i) => b.equals(blobs[i]!))).toBe(true);
    expect(reads.length).toBe(Math.ceil(20 / 3));
    for (let i = 1; i < reads.length; i++) expect(reads[i]![0]).toBe(reads[i - 1]![0] + reads[i - 1]![1]);
  });

  it('skips gaps wider than maxGap', async () => {
    const blobs = Array.from({ length: 4 }, (_, i) => prng(i + 1, 1000));
    const { src, ids, reads } = memoryPack(blobs, 5000);
    const f = new BlobFetcher(src, inline, { maxGap: 4096 });
    await Promise.all(ids.map((id) => f.tryGet(id)!.data));
    expect(reads).toEqual([
      [0, 1000],
      [6000, 1000],
      [12000, 1000],
      [18000, 1000],
    ]);
  });

  it('holds plaintext in flight within the budget; get waits until a lease is released', async () => {
    const blobs = Array.from({ length: 10 }, (_, i) => prng(i + 1, 1000));
    const { src, ids } = memoryPack(blobs);
    const f = new BlobFetcher(src, inline, { budgetBytes: 3000 });
    const held = ids.slice(0, 3).map((id) => f.tryGet(id)!);
    expect(f.tryGet(ids[3]!)).toBeNull();
    let granted = false;
    const waiting = f.get(ids[3]!).then((l) => {
      granted = true;
      return l;
    });
    await new Promise((r) => setImmediate(r));
    expect(granted).toBe(false);
    held[0]!.release();
    const lease = await waiting;
    expect((await lease.data).equals(blobs[3]!)).toBe(true);
    expect(f.stats.peakBytes).toBeLessThanOrEqual(3000);
  });

  it('refuses a blob whose bytes do not match its id, and gives out its neighbours', async () => {
    const blobs = Array.from({ length: 3 }, (_, i) => prng(i + 1, 1000));
    const { src, ids, pack } = memoryPack(blobs);
    pack[1500] = pack[1500]! ^ 1;
    const f = new BlobFetcher(src, inline);
    const [a, b, c] = ids.map((id) => f.tryGet(id)!.data);
    await expect(b).rejects.toThrow(/does not match its hash/);
    expect((await a!).equals(blobs[0]!)).toBe(true);
    expect((await c!).equals(blobs[2]!)).toBe(true);
  });
});

/** encodeRange stores `plain` as one pack range (compressed where that pays) and describes its blobs. */
function encodeRange(plain: readonly Buffer[], pack: string): { range: Buffer; blobs: RangeBlob[] } {
  const codec = new BlobCodec(3);
  const stored = plain.map((p) => codec.encode(p));
  let at = 0;
  const blobs = plain.map((p, i) => {
    const b = { id: hashHex(p), pack, at, length: stored[i]!.stored.length, compression: stored[i]!.compression, rawLength: p.length };
    at += b.length;
    return b;
  });
  return { range: Buffer.concat(stored.map((s) => s.stored)), blobs };
}

describe('DecodePool', () => {
  it('verifies on worker threads: good blobs come back, damaged ones are refused', async () => {
    const codec = new BlobCodec(3);
    const plain = [text(1, 50_000), prng(2, 20_000), text(3, 40_000), prng(4, 10_000)];
    const { range, blobs } = encodeRange(plain, 'bb'.repeat(32));
    expect(blobs[0]!.compression).toBe(Compression.Zstd);
    expect(blobs[1]!.compression).toBe(Compression.None);
    // Damage the second (raw) and the third (compressed) blob.
    range[blobs[1]!.at + 10] = range[blobs[1]!.at + 10]! ^ 1;
    range[blobs[2]!.at + blobs[2]!.length - 20] = range[blobs[2]!.at + blobs[2]!.length - 20]! ^ 0xff;
    const pool = new DecodePool(codec, { inlineBytes: 0, workers: 1 });
    try {
      const out = await pool.decode(range, blobs);
      expect(pool.threads).toBe(1);
      expect((out[0] as Buffer).equals(plain[0]!)).toBe(true);
      expect(out[1]).toBeInstanceOf(CorruptionError);
      expect((out[1] as Error).message).toContain(blobs[1]!.id);
      expect(out[2]).toBeInstanceOf(CorruptionError);
      expect((out[3] as Buffer).equals(plain[3]!)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it("leaves the caller's range buffer intact (a storage may keep what it hands out)", async () => {
    const plain = prng(5, 40_000);
    const range = Buffer.from(new ArrayBuffer(plain.length));
    plain.copy(range);
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 1 });
    try {
      const [out] = await pool.decode(range, [
        { id: hashHex(plain), pack: 'cc'.repeat(32), at: 0, length: plain.length, compression: Compression.None, rawLength: plain.length },
      ]);
      expect((out as Buffer).equals(plain)).toBe(true);
      expect(range.length).toBe(plain.length);
      expect(range.equals(plain)).toBe(true);
    } finally {
      await pool.close();
    }
  });
});

describe('DecodePool.write', () => {
  /** Two raw blobs and a compressed one in a range, the second damaged. */
  function damagedRange(): { range: Buffer; plain: Buffer[]; blobs: Array<Omit<PlacedBlob, 'targets'>> } {
    const plain = [prng(11, 30_000), prng(12, 20_000), text(13, 40_000)];
    const { range, blobs } = encodeRange(plain, 'dd'.repeat(32));
    range[blobs[1]!.at + 5] = range[blobs[1]!.at + 5]! ^ 0x21;
    return { range, plain, blobs };
  }

  it.each([
    ['the range in memory', false],
    ['the range read by the worker from its file', true],
  ])('writes verified blobs at every target and never a refused one (%s)', async (_what, fromFile) => {
    const dir = workDir();
    const { range, plain, blobs } = damagedRange();
    const packFile = path.join(dir, 'pack');
    fs.writeFileSync(packFile, Buffer.concat([Buffer.alloc(100), range]));
    const out = path.join(dir, 'out');
    const fd = fs.openSync(out, 'w');
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 1 });
    try {
      // Blob 0 twice, blob 1 (damaged) between them, blob 2 at the end.
      const placed: PlacedBlob[] = [
        {
          ...blobs[0]!,
          targets: [
            { fd, offset: 0 },
            { fd, offset: 80_000 },
          ],
        },
        { ...blobs[1]!, targets: [{ fd, offset: 30_000 }] },
        { ...blobs[2]!, targets: [{ fd, offset: 110_000 }] },
      ];
      const written = await pool.write(fromFile ? { path: packFile, offset: 100, length: range.length } : range, placed);
      expect(pool.threads).toBe(1);
      expect(written[0]).toBeNull();
      expect(written[1]).toBeInstanceOf(CorruptionError);
      expect((written[1] as Error).message).toContain(blobs[1]!.id);
      expect(written[2]).toBeNull();
    } finally {
      await pool.close();
      fs.closeSync(fd);
    }
    const got = fs.readFileSync(out);
    expect(got.length).toBe(150_000);
    expect(got.subarray(0, 30_000).equals(plain[0]!)).toBe(true);
    expect(got.subarray(80_000, 110_000).equals(plain[0]!)).toBe(true);
    expect(got.subarray(110_000).equals(plain[2]!)).toBe(true);
    // The damaged blob's place is still a hole.
    expect(got.subarray(30_000, 80_000).every((v) => v === 0)).toBe(true);
  });

  it('reads a large range at any offset of its file, to the byte, and one cut short as short', async () => {
    // At least 256 KiB: the worker reads it with O_DIRECT, from the page before its start.
    const plain = [prng(31, 150_001), text(32, 200_003), prng(33, 120_007)];
    const { range, blobs } = encodeRange(plain, 'cc'.repeat(32));
    expect(range.length).toBeGreaterThan(256 * 1024);
    const dir = workDir();
    const packFile = path.join(dir, 'pack');
    const offset = 4096 * 3 + 1234;
    fs.writeFileSync(packFile, Buffer.concat([prng(34, offset), range, prng(35, 777)]));
    const cutFile = path.join(dir, 'cut');
    fs.writeFileSync(cutFile, Buffer.concat([prng(34, offset), range.subarray(0, range.length - 10)]));
    const out = path.join(dir, 'out');
    const fd = fs.openSync(out, 'w');
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 1 });
    try {
      let at = 0;
      const placed = blobs.map((b, i) => {
        const p = { ...b, targets: [{ fd, offset: at }] };
        at += plain[i]!.length;
        return p;
      });
      // Twice: the second read reuses the thread's buffer.
      for (let round = 0; round < 2; round++) {
        const written = await pool.write({ path: packFile, offset, length: range.length }, placed);
        expect(written).toEqual([null, null, null]);
      }
      const short = await pool.write({ path: cutFile, offset, length: range.length }, placed).catch((e: unknown) => e);
      expect(short).toBeInstanceOf(CorruptionError);
      expect((short as Error).message).toContain('shorter than expected');
    } finally {
      await pool.close();
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(out).equals(Buffer.concat(plain))).toBe(true);
  });

  /**
   * expectFewCachedPages checks, where the file system takes O_DIRECT (and
   * is not itself the page cache), that fewer than 16 pages of `file` are
   * cached: its stretches were written around the page cache.
   */
  function expectFewCachedPages(file: string): void {
    let direct = true;
    try {
      fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT));
    } catch {
      direct = false;
    }
    const TMPFS_MAGIC = 0x01021994;
    if (direct && fs.statfsSync(path.dirname(file)).type !== TMPFS_MAGIC) {
      const cached = Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
      expect(cached).toBeLessThan(16 * 4096);
    } else {
      console.log(`no O_DIRECT on ${path.dirname(file)}: the page cache check is skipped`);
    }
  }

  it('writes the whole pages of a stretch around the page cache, two threads into one file, never a refused blob', async () => {
    const dir = workDir();
    const plain = [prng(41, 300_001), text(42, 500_003), prng(43, 400_007), prng(44, 200_000), text(45, 600_011)];
    const first = encodeRange(plain.slice(0, 2), 'e1'.repeat(32));
    const second = encodeRange(plain.slice(2), 'e2'.repeat(32));
    // The second range's middle blob (plain[3]) is damaged.
    const bad = second.blobs[1]!;
    second.range[bad.at + 7] = second.range[bad.at + 7]! ^ 0x10;
    const start = 1234; // no stretch begins or ends on a page boundary
    const offsets: number[] = [];
    let at = start;
    for (const p of plain) {
      offsets.push(at);
      at += p.length;
    }
    const out = path.join(dir, 'out');
    const fd = fs.openSync(out, 'w');
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 2 });
    try {
      const place = (blobs: RangeBlob[], from: number): PlacedBlob[] =>
        blobs.map((b, i) => ({ ...b, targets: [{ fd, offset: offsets[from + i]! }] }));
      // Both at once: the threads write next to each other, sharing the page where the ranges meet.
      const [a, b] = await Promise.all([pool.write(first.range, place(first.blobs, 0)), pool.write(second.range, place(second.blobs, 2))]);
      expect(pool.threads).toBe(2);
      expect(a).toEqual([null, null]);
      expect(b[0]).toBeNull();
      expect(b[1]).toBeInstanceOf(CorruptionError);
      expect(b[2]).toBeNull();
    } finally {
      await pool.close();
      fs.closeSync(fd);
    }
    // Only the partial pages at the stretches' ends are cached (checked
    // before reading the file back, which fills the cache).
    expectFewCachedPages(out);
    const got = fs.readFileSync(out);
    expect(got.length).toBe(at);
    expect(got.subarray(0, start).every((v) => v === 0)).toBe(true);
    for (const i of [0, 1, 2, 4]) expect(got.subarray(offsets[i]!, offsets[i]! + plain[i]!.length).equals(plain[i]!)).toBe(true);
    expect(got.subarray(offsets[3]!, offsets[4]!).every((v) => v === 0)).toBe(true);
  });

  it('writes a stretch whose blobs the range holds out of file order as one stretch', async () => {
    // Eight blobs of a file, each too small for O_DIRECT on its own, stored
    // in the order a snapshot's threads might have finished them.
    const plain = Array.from({ length: 8 }, (_, i) => (i % 2 ? text(50 + i, 60_000 + 1_001 * i) : prng(50 + i, 70_000 + 997 * i)));
    const stored = [2, 0, 3, 1, 5, 4, 7, 6];
    const { range, blobs } = encodeRange(
      stored.map((i) => plain[i]!),
      'f0'.repeat(32),
    );
    const start = 777;
    const offsets: number[] = [];
    let at = start;
    for (const p of plain) {
      offsets.push(at);
      at += p.length;
    }
    const dir = workDir();
    const out = path.join(dir, 'out');
    const fd = fs.openSync(out, 'w');
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 1 });
    try {
      const placed = blobs.map((b, k) => ({ ...b, targets: [{ fd, offset: offsets[stored[k]!]! }] }));
      expect(await pool.write(range, placed)).toEqual(placed.map(() => null));
    } finally {
      await pool.close();
      fs.closeSync(fd);
    }
    expectFewCachedPages(out);
    const got = fs.readFileSync(out);
    expect(got.subarray(0, start).every((v) => v === 0)).toBe(true);
    expect(got.subarray(start).equals(Buffer.concat(plain))).toBe(true);
  });

  it('fails a range whose file is short or missing without writing anything', async () => {
    const dir = workDir();
    const { range, blobs } = damagedRange();
    const packFile = path.join(dir, 'pack');
    fs.writeFileSync(packFile, range.subarray(0, 1000));
    const out = path.join(dir, 'out');
    const fd = fs.openSync(out, 'w');
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 1 });
    try {
      const placed = [{ ...blobs[0]!, targets: [{ fd, offset: 0 }] }];
      await expect(pool.write({ path: packFile, offset: 0, length: range.length }, placed)).rejects.toBeInstanceOf(CorruptionError);
      const missing = await pool.write({ path: path.join(dir, 'gone'), offset: 0, length: 10 }, placed).catch((e: unknown) => e);
      expect((missing as NodeJS.ErrnoException).code).toBe('ENOENT');
    } finally {
      await pool.close();
      fs.closeSync(fd);
    }
    expect(fs.statSync(out).size).toBe(0);
  });

  it('reports a full disk as ENOSPC, which the restore turns into DISK_FULL', async () => {
    const plain = prng(21, 50_000);
    const fd = fs.openSync('/dev/full', 'w');
    const pool = new DecodePool(new BlobCodec(3), { inlineBytes: 0, workers: 1 });
    try {
      const id = hashHex(plain);
      const loc = {
        type: BlobType.Data,
        compression: Compression.None,
        pack: 'ee'.repeat(32),
        offset: 0,
        length: plain.length,
        rawLength: plain.length,
      };
      const fetcher = new BlobFetcher({ locate: () => loc, readAt: async () => Buffer.from(plain) }, pool);
      const placement = (await fetcher.reserve([id])).place(id, { fd, offset: 0 });
      const err = await placement.done.then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      expect(pool.threads).toBe(1);
      const full = await asDiskFull(err, 'restore target', workDir());
      expect(full).toBeInstanceOf(DiskFullError);
      expect((full as KovaError).code).toBe('DISK_FULL');
    } finally {
      await pool.close();
      fs.closeSync(fd);
    }
  });
});
