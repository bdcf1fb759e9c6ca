/**
 * Damaged repositories: a real repository in a temp directory with three
 * snapshots of generated data, damaged on disk the way disks and operators
 * damage things (a flipped byte, a missing or truncated file). verify must
 * report every problem, restore must fail with REPO_CORRUPT naming what is
 * affected and must never write bytes that differ from the original, and gc
 * must refuse rather than delete.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CorruptionError, KovaError } from '../core/errors.js';
import { BlobType, type BlobLocation } from './format/blob.js';
import { PACK_FOOTER_BYTES } from './format/pack-format.js';
import type { TreeNode } from './format/tree.js';
import { packName } from './repo/master-index.js';
import { Repository } from './repo/repository.js';
import { type EntryDesc, compareTrees, describeTree, tempDir } from './testing.js';
import type { Finding } from './verify/verify.js';

/* ---- data ---------------------------------------------------------------------- */

/** A small deterministic generator (xorshift32), so failures reproduce. */
class Rng {
  constructor(private x: number) {}
  next(): number {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }
  int(lo: number, hi: number): number {
    return lo + (this.next() % (hi - lo + 1));
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE(this.next(), i);
    for (let i = n - (n % 4); i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
  text(n: number): Buffer {
    const words = ['volume', 'snapshot', 'kova', 'pack', 'index', 'tree', 'restore', 'chunk', 'lorem', 'ipsum'];
    let s = '';
    while (s.length < n) s += `${words[this.next() % words.length]}${this.next() % 7 === 0 ? '\n' : ' '}`;
    return Buffer.from(s.slice(0, n));
  }
}

function write(root: string, rel: string, data: Buffer): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}

/** S1: big and shared data, compressible docs, many small files. */
function makeSrc1(root: string): void {
  const r = new Rng(11);
  write(root, 'data/big.bin', r.bytes(900 * 1024));
  write(root, 'data/shared.bin', r.bytes(200 * 1024));
  for (let i = 0; i < 30; i++) write(root, `docs/doc${i}.txt`, r.text(r.int(2_000, 30_000)));
  for (let i = 0; i < 80; i++) write(root, `small/s${String(i).padStart(2, '0')}`, r.bytes(r.int(50, 3_000)));
  fs.symlinkSync('data/big.bin', path.join(root, 'link-to-big'));
}

/** S2: S1 with its docs rewritten and a new file (big.bin shared with S1). */
function makeSrc2(root: string, src1: string): void {
  fs.cpSync(src1, root, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const r = new Rng(22);
  for (let i = 0; i < 30; i += 2) write(root, `docs/doc${i}.txt`, r.text(r.int(2_000, 30_000)));
  write(root, 'data/new.bin', r.bytes(300 * 1024));
}

/** S3: unrelated data only. */
function makeSrc3(root: string): void {
  const r = new Rng(33);
  for (let i = 0; i < 25; i++) write(root, `other/o${i}.bin`, r.bytes(r.int(10_000, 60_000)));
  write(root, 'other/notes.txt', r.text(50_000));
}

/* ---- fixture: a template repository copied for each test ------------------------------ */

interface Snap {
  id: string;
  src: string;
  desc: Map<string, EntryDesc>;
  /** Index files this snapshot's session wrote. */
  indexFiles: string[];
}

let base: string;
let template: string;
let snaps: Snap[];

beforeAll(async () => {
  base = tempDir('kova-corrupt-');
  template = path.join(base, 'template');
  const srcs = ['src1', 'src2', 'src3'].map((n) => path.join(base, n));
  makeSrc1(srcs[0]!);
  makeSrc2(srcs[1]!, srcs[0]!);
  makeSrc3(srcs[2]!);
  const repo = await Repository.init(template, {
    packSize: 128 * 1024,
    chunker: { minSize: 4096, avgSize: 16 * 1024, maxSize: 64 * 1024 },
  });
  snaps = [];
  for (const [i, src] of srcs.entries()) {
    const before = new Set(await repo.indexFiles());
    const desc = describeTree(src);
    const rec = await repo.snapshot(src, { label: `s${i + 1}` });
    snaps.push({ id: rec.id, src, desc, indexFiles: (await repo.indexFiles()).filter((n) => !before.has(n)) });
  }
  expect((await repo.packFiles()).length).toBeGreaterThan(10);
  await repo.close();
});

afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

let dir: string;
let repo: Repository;
let n = 0;

beforeEach(async () => {
  dir = path.join(base, `case-${++n}`);
  fs.cpSync(template, path.join(dir, 'repo'), { recursive: true });
  repo = await Repository.open(path.join(dir, 'repo'));
});

afterEach(async () => {
  await repo.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const S = (i: 1 | 2 | 3): Snap => snaps[i - 1]!;
const repoPath = (name: string): string => path.join(dir, 'repo', name);

/* ---- helpers ---------------------------------------------------------------------- */

async function fileNode(r: Repository, snapId: string, rel: string): Promise<TreeNode> {
  let nodes = await r.readTree((await r.findSnapshot(snapId)).root.subtree!);
  const parts = rel.split('/');
  for (const [i, part] of parts.entries()) {
    const node = nodes.find((x) => x.name.toString() === part);
    if (!node) throw new Error(`${rel}: no ${part}`);
    if (i === parts.length - 1) return node;
    nodes = await r.readTree(node.subtree!);
  }
  throw new Error('unreachable');
}

async function locate(r: Repository, blobId: string): Promise<BlobLocation> {
  const loc = (await r.loadIndex()).get(blobId);
  if (!loc) throw new Error(`blob ${blobId} not indexed`);
  return loc;
}

/** The location of the k-th data chunk of a file in a snapshot. */
async function chunkOf(r: Repository, snapId: string, rel: string, k: number): Promise<{ id: string; loc: BlobLocation }> {
  const node = await fileNode(r, snapId, rel);
  const chunks = (node.content ?? []).filter((c) => c.id !== null);
  expect(chunks.length).toBeGreaterThan(k);
  const id = chunks[k]!.id!;
  return { id, loc: await locate(r, id) };
}

/**
 * expectNotWritten: if a failed restore left `rel` in `target`, the place of
 * its chunk `id` (damaged) holds no written byte: other chunks may have been
 * written, that one's place is still a hole or past the end.
 */
async function expectNotWritten(target: string, snapId: string, rel: string, id: string): Promise<void> {
  const file = path.join(target, rel);
  if (!fs.existsSync(file)) return;
  const got = fs.readFileSync(file);
  let at = 0;
  let seen = 0;
  for (const c of (await fileNode(repo, snapId, rel)).content ?? []) {
    if (c.id === id) {
      seen++;
      expect(
        got.subarray(at, at + c.length).some((v) => v !== 0),
        `${rel}: damaged chunk at ${at} was written`,
      ).toBe(false);
    }
    at += c.length;
  }
  expect(seen).toBeGreaterThan(0);
}

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    expect(fs.readSync(fd, b, 0, 1, offset)).toBe(1);
    b[0] = b[0]! ^ 0x5a;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Every file of the repository with its hash, to prove nothing changed. */
function repoFiles(): Map<string, string> {
  const out = new Map<string, string>();
  const root = path.join(dir, 'repo');
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else if (!child.startsWith('locks/') && !child.startsWith('tmp/')) out.set(child, sha256File(path.join(root, child)));
    }
  };
  walk('');
  return out;
}

const errors = (fs_: readonly Finding[]): Finding[] => fs_.filter((f) => f.severity === 'error');
const kinds = (fs_: readonly Finding[]): string[] => [...new Set(errors(fs_).map((f) => f.kind))].sort();

async function restoreError(r: Repository, snapId: string, target: string): Promise<CorruptionError> {
  try {
    await r.restore(snapId, target);
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as KovaError).code).toBe('REPO_CORRUPT');
    return err as CorruptionError;
  }
  throw new Error(`restore of ${snapId} succeeded on a damaged repository`);
}

/**
 * checkNoWrongBytes: every regular file a (failed or not) restore left in
 * `target` is no longer than the original, and each of its bytes is the
 * original's or a hole not written yet (zero): chunks are written as they
 * are verified, in pack order, and nothing written differs from the source.
 */
function checkNoWrongBytes(target: string, src: string): number {
  let files = 0;
  const walk = (rel: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(target, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else if (e.isFile()) {
        const got = fs.readFileSync(path.join(target, child));
        const want = fs.readFileSync(path.join(src, child));
        expect(got.length, `${child} is longer than the original`).toBeLessThanOrEqual(want.length);
        const at = got.findIndex((v, i) => v !== 0 && v !== want[i]);
        if (at >= 0) throw new Error(`${child}: restored byte at offset ${at} differs from the original`);
        files++;
      }
    }
  };
  walk('');
  return files;
}

async function restoresExactly(r: Repository, snap: Snap, target: string): Promise<void> {
  await r.restore(snap.id, target);
  expect(compareTrees(snap.desc, describeTree(target))).toEqual([]);
}

/* ---- tests ------------------------------------------------------------------------ */

describe('a clean repository', () => {
  it('verifies without any finding, with and without reading the data', async () => {
    const quick = await repo.verify();
    expect(quick.findings).toEqual([]);
    expect(quick.snapshots).toBe(3);
    const full = await repo.verify({ readData: true });
    expect(full.findings).toEqual([]);
    const packBytes = (await repo.packFiles()).reduce((sum, p) => sum + fs.statSync(repoPath(p)).size, 0);
    expect(full.bytesRead).toBe(packBytes);
    expect(full.packs).toBe((await repo.packFiles()).length);
  });

  it('restores every snapshot exactly', async () => {
    for (const i of [1, 2, 3] as const) await restoresExactly(repo, S(i), path.join(dir, `r${i}`));
  });
});

describe('a flipped byte in a data blob', () => {
  it('is found by verify --read-data as pack-hash and blob-damaged', async () => {
    const { id, loc } = await chunkOf(repo, S(1).id, 'data/big.bin', 3);
    flipByte(repoPath(packName(loc.pack)), loc.offset + (loc.length >> 1));
    const full = await repo.verify({ readData: true });
    expect(kinds(full.findings)).toEqual(['blob-damaged', 'pack-hash']);
    const hash = errors(full.findings).filter((f) => f.kind === 'pack-hash');
    expect(hash).toHaveLength(1);
    expect(hash[0]!.message).toContain(loc.pack);
    const blob = errors(full.findings).filter((f) => f.kind === 'blob-damaged');
    expect(blob).toHaveLength(1);
    expect(blob[0]!.message).toContain(id);
    // Without reading data, verify can only check structure: nothing else is wrong.
    const quick = await repo.verify();
    expect(errors(quick.findings).every((f) => f.message.includes(loc.pack))).toBe(true);
  });

  it('fails the restore of every snapshot using it with REPO_CORRUPT naming the snapshot and file; nothing wrong is written', async () => {
    const { id, loc } = await chunkOf(repo, S(1).id, 'data/big.bin', 3);
    flipByte(repoPath(packName(loc.pack)), loc.offset + (loc.length >> 1));
    for (const i of [1, 2] as const) {
      const target = path.join(dir, `r${i}`);
      const err = await restoreError(repo, S(i).id, target);
      expect(err.message).toContain(S(i).id);
      expect(err.message).toContain('data/big.bin');
      checkNoWrongBytes(target, S(i).src);
      await expectNotWritten(target, S(i).id, 'data/big.bin', id);
    }
    // A snapshot that does not use the damaged blob restores exactly.
    await restoresExactly(repo, S(3), path.join(dir, 'r3'));
  });

  it('in a compressed blob fails the restore the same way', async () => {
    const { id, loc } = await chunkOf(repo, S(1).id, 'docs/doc1.txt', 0);
    expect(loc.compression).toBe(1);
    flipByte(repoPath(packName(loc.pack)), loc.offset + (loc.length >> 1));
    const target = path.join(dir, 'r1');
    const err = await restoreError(repo, S(1).id, target);
    expect(err.message).toContain(S(1).id);
    expect(err.message).toContain('docs/doc1.txt');
    checkNoWrongBytes(target, S(1).src);
    // The file is one or two chunks, as the repository's random chunker seed
    // falls: a second, sound chunk may have been written, never the first.
    await expectNotWritten(target, S(1).id, 'docs/doc1.txt', id);
    expect(kinds((await repo.verify({ readData: true })).findings)).toEqual(['blob-damaged', 'pack-hash']);
  });

  it('in a directory listing (tree blob) fails the restore with REPO_CORRUPT naming the snapshot and directory', async () => {
    const node = await fileNode(repo, S(3).id, 'other');
    const loc = await locate(repo, node.subtree!);
    expect(loc.type).toBe(BlobType.Tree);
    flipByte(repoPath(packName(loc.pack)), loc.offset + (loc.length >> 1));
    const fresh = await Repository.open(path.join(dir, 'repo'));
    try {
      const v = await fresh.verify();
      expect(kinds(v.findings)).toEqual(['tree-damaged']);
      expect(errors(v.findings)[0]!.message).toContain(S(3).id);
      // gc does not delete anything of a repository whose trees are damaged.
      const files = repoFiles();
      await expect(fresh.gc()).rejects.toThrow(/tree .* is damaged/);
      expect(repoFiles()).toEqual(files);

      const target = path.join(dir, 'r3');
      const err = await restoreError(fresh, S(3).id, target);
      checkNoWrongBytes(target, S(3).src);
      expect(err.message).toContain(node.subtree!);
      // Like a damaged file chunk, a damaged listing names the snapshot and where it is.
      expect(err.message).toContain(S(3).id);
      expect(err.message).toContain('other');
    } finally {
      await fresh.close();
    }
  });

  it('at many places: restores either succeed exactly or fail without writing a wrong byte', async () => {
    const rng = new Rng(4242);
    const packs = await repo.packFiles();
    const pristine = path.join(dir, 'pristine');
    fs.cpSync(path.join(dir, 'repo'), pristine, { recursive: true });
    let failed = 0;
    for (let round = 0; round < 8; round++) {
      // Reset to the undamaged repository, then damage one byte somewhere in a pack.
      fs.rmSync(path.join(dir, 'repo'), { recursive: true, force: true });
      fs.cpSync(pristine, path.join(dir, 'repo'), { recursive: true });
      const r = await Repository.open(path.join(dir, 'repo'));
      try {
        const pack = packs[rng.next() % packs.length]!;
        const entries = [...(await r.loadIndex()).entries()].filter(([, l]) => `packs/${l.pack.slice(0, 2)}/${l.pack}` === pack);
        const [, loc] = entries[rng.next() % entries.length]!;
        flipByte(repoPath(pack), loc.offset + (rng.next() % loc.length));
        const v = await r.verify({ readData: true });
        expect(errors(v.findings).length).toBeGreaterThan(0);
        for (const i of [1, 2, 3] as const) {
          const target = path.join(dir, `round${round}-r${i}`);
          try {
            await r.restore(S(i).id, target);
            expect(compareTrees(S(i).desc, describeTree(target))).toEqual([]);
          } catch (err) {
            expect(err).toBeInstanceOf(CorruptionError);
            failed++;
          }
          checkNoWrongBytes(target, S(i).src);
        }
      } finally {
        await r.close();
      }
    }
    expect(failed).toBeGreaterThan(0);
  });
});

describe('a missing pack', () => {
  it('is reported as pack-missing, and restore fails naming the pack, the snapshot and the file', async () => {
    // A pack holding file data only, so the files whose data it holds are known.
    const index = await repo.loadIndex();
    const node = await fileNode(repo, S(1).id, 'data/big.bin');
    let pack: string | null = null;
    for (const c of node.content ?? []) {
      const p = index.get(c.id!)!.pack;
      if (![...index.entries()].some(([, l]) => l.pack === p && l.type === BlobType.Tree)) pack = p;
    }
    expect(pack).not.toBeNull();
    const users = new Set<string>();
    const walk = async (treeId: string, rel: string): Promise<void> => {
      for (const x of await repo.readTree(treeId)) {
        const child = rel ? `${rel}/${x.name.toString()}` : x.name.toString();
        if (x.subtree) await walk(x.subtree, child);
        if ((x.content ?? []).some((c) => c.id !== null && index.get(c.id)!.pack === pack)) users.add(child);
      }
    };
    await walk((await repo.findSnapshot(S(1).id)).root.subtree!, '');
    expect(users).toContain('data/big.bin');
    fs.rmSync(repoPath(packName(pack!)));

    const quick = await repo.verify();
    const missing = errors(quick.findings).filter((f) => f.kind === 'pack-missing');
    expect(missing).toHaveLength(1);
    expect(missing[0]!.message).toContain(pack!);
    expect(kinds((await repo.verify({ readData: true })).findings)).toContain('pack-missing');

    const target = path.join(dir, 'r1');
    const err = await restoreError(repo, S(1).id, target);
    expect(err.message).toContain(pack!);
    expect(err.message).toMatch(/missing/);
    expect(err.message).toContain(S(1).id);
    expect(
      [...users].some((u) => err.message.includes(`file ${u}:`)),
      `${err.message} names none of ${[...users].join(', ')}`,
    ).toBe(true);
    checkNoWrongBytes(target, S(1).src);
    // gc refuses to work on a repository with missing data, and deletes nothing.
    const files = repoFiles();
    await expect(repo.gc()).rejects.toBeInstanceOf(KovaError);
    expect(repoFiles()).toEqual(files);
  });

  it('two missing packs are two findings', async () => {
    const a = (await chunkOf(repo, S(1).id, 'data/big.bin', 0)).loc.pack;
    const b = (await chunkOf(repo, S(3).id, 'other/o5.bin', 0)).loc.pack;
    expect(a).not.toBe(b);
    fs.rmSync(repoPath(packName(a)));
    fs.rmSync(repoPath(packName(b)));
    const missing = errors((await repo.verify()).findings).filter((f) => f.kind === 'pack-missing');
    expect(missing.map((f) => f.message.includes(a) || f.message.includes(b))).toEqual([true, true]);
    expect(missing.some((f) => f.message.includes(a))).toBe(true);
    expect(missing.some((f) => f.message.includes(b))).toBe(true);
  });
});

describe('a truncated pack', () => {
  it('is reported as pack-size, and restore of its blobs fails', async () => {
    // A pack of file data only (no directory listings), so the restore fails on a file.
    const index = await repo.loadIndex();
    let loc: BlobLocation | null = null;
    for (let i = 0; i < 25 && !loc; i++) {
      const c = await chunkOf(repo, S(3).id, `other/o${i}.bin`, 0);
      if (![...index.entries()].some(([, l]) => l.pack === c.loc.pack && l.type === BlobType.Tree)) loc = c.loc;
    }
    if (!loc) throw new Error('no data-only pack');
    const file = repoPath(packName(loc.pack));
    fs.truncateSync(file, loc.offset + 10);
    const v = await repo.verify();
    const size = errors(v.findings).filter((f) => f.kind === 'pack-size');
    expect(size).toHaveLength(1);
    expect(size[0]!.message).toContain(loc.pack);
    const target = path.join(dir, 'r3');
    const err = await restoreError(repo, S(3).id, target);
    expect(err.message).toContain(S(3).id);
    checkNoWrongBytes(target, S(3).src);
  });
});

describe('a truncated index file', () => {
  it('is reported as index-damaged plus the blobs it listed', async () => {
    const idx = S(1).indexFiles;
    expect(idx).toHaveLength(1);
    const file = repoPath(idx[0]!);
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    const v = await repo.verify();
    const damaged = errors(v.findings).filter((f) => f.kind === 'index-damaged');
    expect(damaged).toHaveLength(1);
    expect(damaged[0]!.message).toContain(idx[0]!);
    // S1's trees were listed only there; S2 reuses S1's data blobs.
    expect(kinds(v.findings)).toEqual(expect.arrayContaining(['index-damaged', 'tree-missing', 'blob-missing']));
    expect(errors(v.findings).some((f) => f.kind === 'tree-missing' && f.message.includes(S(1).id))).toBe(true);
    expect(errors(v.findings).some((f) => f.kind === 'blob-missing' && f.message.includes(S(2).id))).toBe(true);
    // S1's packs are now listed by no readable index.
    expect(v.findings.some((f) => f.severity === 'warning' && f.kind === 'pack-unindexed')).toBe(true);
    // S3 is unaffected.
    expect(errors(v.findings).some((f) => f.message.includes(S(3).id))).toBe(false);
  });

  it('makes restores of the affected snapshots fail clearly', async () => {
    const file = repoPath(S(1).indexFiles[0]!);
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    const e1 = await restoreError(repo, S(1).id, path.join(dir, 'r1'));
    expect(e1.message).toMatch(/not in the index/);
    checkNoWrongBytes(path.join(dir, 'r1'), S(1).src);
    const e2 = await restoreError(repo, S(2).id, path.join(dir, 'r2'));
    expect(e2.message).toContain(S(2).id);
    expect(e2.message).toMatch(/not in the index/);
    checkNoWrongBytes(path.join(dir, 'r2'), S(2).src);
    await restoresExactly(repo, S(3), path.join(dir, 'r3'));
  });

  it('is repaired by gc from the packs themselves: afterwards verify is clean and everything restores', async () => {
    const file = repoPath(S(1).indexFiles[0]!);
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    await repo.gc();
    const v = await repo.verify({ readData: true });
    expect(v.findings).toEqual([]);
    for (const i of [1, 2, 3] as const) await restoresExactly(repo, S(i), path.join(dir, `r${i}`));
  });
});

describe('a damaged snapshot record', () => {
  it('is reported as snapshot-damaged; gc refuses and deletes nothing', async () => {
    const rec = repoPath(`snapshots/${S(2).id}`);
    flipByte(rec, Math.floor(fs.statSync(rec).size / 2));
    const v = await repo.verify();
    expect(kinds(v.findings)).toEqual(['snapshot-damaged']);
    expect(errors(v.findings)[0]!.message).toContain(S(2).id);
    expect(v.snapshots).toBe(2);

    // Make some garbage gc would otherwise collect.
    await repo.deleteSnapshot(S(3).id);
    const before = repoFiles();
    const packsBefore = await repo.packFiles();
    let err: unknown;
    try {
      await repo.gc({ repackBelow: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KovaError);
    expect((err as KovaError).code).toBe('GC_REFUSED');
    expect((err as Error).message).toContain(S(2).id);
    expect(await repo.packFiles()).toEqual(packsBefore);
    expect(repoFiles()).toEqual(before);
    // The lock was released: other operations still work.
    await restoresExactly(repo, S(1), path.join(dir, 'r1'));
  });

  it('cannot be restored, and the others still can', async () => {
    const rec = repoPath(`snapshots/${S(1).id}`);
    fs.truncateSync(rec, 100);
    await expect(repo.restore(S(1).id, path.join(dir, 'r1'))).rejects.toMatchObject({ code: 'REPO_CORRUPT' });
    expect(fs.existsSync(path.join(dir, 'r1')) ? fs.readdirSync(path.join(dir, 'r1')) : []).toEqual([]);
    expect((await repo.listSnapshots()).map((s) => s.id).sort()).toEqual([S(2).id, S(3).id].sort());
    await restoresExactly(repo, S(2), path.join(dir, 'r2'));
    expect(kinds((await repo.verify()).findings)).toEqual(['snapshot-damaged']);
  });
});

describe('a flipped byte in a pack trailer', () => {
  it('is reported by verify (also without reading data), and gc refuses', async () => {
    const { loc } = await chunkOf(repo, S(3).id, 'other/o2.bin', 0);
    const file = repoPath(packName(loc.pack));
    // The last byte of the last trailer entry (part of a blob id).
    flipByte(file, fs.statSync(file).size - PACK_FOOTER_BYTES - 1);
    const quick = await repo.verify();
    expect(kinds(quick.findings)).toEqual(['pack-damaged']);
    expect(errors(quick.findings)[0]!.message).toContain(loc.pack);
    expect(errors(quick.findings)[0]!.message).toMatch(/trailer/);
    const full = await repo.verify({ readData: true });
    expect(errors(full.findings).some((f) => f.kind === 'pack-hash' && f.message.includes(loc.pack))).toBe(true);
    const files = repoFiles();
    await expect(repo.gc()).rejects.toThrow(/trailer/);
    expect(repoFiles()).toEqual(files);
    // The index still describes the blobs correctly: the data itself restores.
    await restoresExactly(repo, S(3), path.join(dir, 'r3'));
  });

  it('in the footer magic is reported too', async () => {
    const { loc } = await chunkOf(repo, S(1).id, 'data/shared.bin', 0);
    const file = repoPath(packName(loc.pack));
    flipByte(file, fs.statSync(file).size - 1);
    const quick = await repo.verify();
    expect(kinds(quick.findings)).toEqual(['pack-damaged']);
    expect(errors(quick.findings)[0]!.message).toContain(loc.pack);
  });
});

describe('several problems', () => {
  it('are all reported, not just the first', async () => {
    const a = await chunkOf(repo, S(1).id, 'data/big.bin', 0);
    const b = await chunkOf(repo, S(3).id, 'other/o7.bin', 0);
    expect(a.loc.pack).not.toBe(b.loc.pack);
    flipByte(repoPath(packName(a.loc.pack)), a.loc.offset + 5);
    flipByte(repoPath(packName(b.loc.pack)), b.loc.offset + 5);
    const full = await repo.verify({ readData: true });
    const hash = errors(full.findings).filter((f) => f.kind === 'pack-hash');
    expect(hash).toHaveLength(2);
    expect(hash.some((f) => f.message.includes(a.loc.pack))).toBe(true);
    expect(hash.some((f) => f.message.includes(b.loc.pack))).toBe(true);
    const blob = errors(full.findings).filter((f) => f.kind === 'blob-damaged');
    expect(blob.some((f) => f.message.includes(a.id))).toBe(true);
    expect(blob.some((f) => f.message.includes(b.id))).toBe(true);
  });

  it('of different kinds are all reported in one run', async () => {
    const a = await chunkOf(repo, S(1).id, 'data/big.bin', 0);
    const b = await chunkOf(repo, S(3).id, 'other/o9.bin', 0);
    expect(a.loc.pack).not.toBe(b.loc.pack);
    fs.rmSync(repoPath(packName(a.loc.pack)));
    const bf = repoPath(packName(b.loc.pack));
    flipByte(bf, fs.statSync(bf).size - PACK_FOOTER_BYTES - 2);
    const rec = repoPath(`snapshots/${S(2).id}`);
    fs.writeFileSync(rec, '{}');
    const v = await repo.verify();
    expect(kinds(v.findings)).toEqual(expect.arrayContaining(['pack-damaged', 'pack-missing', 'snapshot-damaged']));
    // Anything else is a consequence of the missing pack (a directory listing it held).
    for (const f of errors(v.findings)) {
      if (!['pack-damaged', 'pack-missing', 'snapshot-damaged'].includes(f.kind)) expect(f.message).toContain(a.loc.pack);
    }
    expect(errors(v.findings).find((f) => f.kind === 'pack-missing')!.message).toContain(a.loc.pack);
    expect(errors(v.findings).find((f) => f.kind === 'pack-damaged')!.message).toContain(b.loc.pack);
    expect(errors(v.findings).find((f) => f.kind === 'snapshot-damaged')!.message).toContain(S(2).id);
  });
});
