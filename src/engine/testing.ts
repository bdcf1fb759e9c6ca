/**
 * testing: helpers for engine tests: describe a directory tree with every
 * attribute a snapshot must preserve, and compare two descriptions.
 * Not part of the build.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from './native.js';

export interface EntryDesc {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  /** Not compared for directories' atime-sensitive cases; exact ns. */
  mtimeNs: bigint;
  size: number;
  /** SHA-256 of the content (files), hex of the target (symlinks). */
  content?: string;
  rdev?: number;
  xattrs?: string;
  /** Index of the hardlink group among multi-link files, by first path. */
  linkGroup?: string;
  /** Allocated bytes (st_blocks × 512), for sparse-file checks. */
  allocated: number;
}

function typeName(st: fs.BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

function xattrsOf(p: Buffer): string | undefined {
  let names: Buffer[];
  try {
    names = native.listXattrs(p);
  } catch {
    return undefined;
  }
  if (names.length === 0) return undefined;
  return names
    .sort(Buffer.compare)
    .map((n) => `${n.toString('hex')}=${native.getXattr(p, n).toString('hex')}`)
    .join(',');
}

/**
 * describeTree walks `root` (without following symlinks) and returns every
 * entry keyed by its path relative to root, as hex of the raw bytes joined
 * with "/" (names need not be UTF-8). The root itself is key "".
 * It walks by absolute paths, so keep test trees under PATH_MAX deep.
 */
export function describeTree(root: string): Map<string, EntryDesc> {
  const out = new Map<string, EntryDesc>();
  const inodes = new Map<string, string>();
  const walk = (abs: Buffer, rel: string): void => {
    const st = fs.lstatSync(abs, { bigint: true });
    const d: EntryDesc = {
      type: typeName(st),
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      size: st.isFile() ? Number(st.size) : 0,
      allocated: Number(st.blocks) * 512,
    };
    if (st.isFile()) {
      d.content = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        if (!inodes.has(key)) inodes.set(key, rel);
        d.linkGroup = inodes.get(key);
      }
    }
    if (st.isSymbolicLink()) d.content = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('hex');
    if (st.isCharacterDevice() || st.isBlockDevice()) d.rdev = Number(st.rdev);
    const x = xattrsOf(abs);
    if (x) d.xattrs = x;
    out.set(rel, d);
    if (st.isDirectory()) {
      const names = fs.readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
      for (const n of names)
        walk(Buffer.concat([abs, Buffer.from('/'), n]), rel === '' ? n.toString('hex') : `${rel}/${n.toString('hex')}`);
    }
  };
  walk(Buffer.from(path.resolve(root)), '');
  return out;
}

export interface CompareOptions {
  /** Compare directory mtimes (default true). */
  readonly dirMtimes?: boolean;
  /** Compare owners (default: only when running as root). */
  readonly owners?: boolean;
}

/** compareTrees lists every difference between two descriptions (empty when equal). */
export function compareTrees(a: Map<string, EntryDesc>, b: Map<string, EntryDesc>, opts: CompareOptions = {}): string[] {
  const diffs: string[] = [];
  const owners = opts.owners ?? process.getuid?.() === 0;
  const show = (k: string): string =>
    k === ''
      ? '/'
      : k
          .split('/')
          .map((h) => JSON.stringify(Buffer.from(h, 'hex').toString()))
          .join('/');
  for (const [k, x] of a) {
    const y = b.get(k);
    if (!y) {
      diffs.push(`${show(k)}: missing`);
      continue;
    }
    const fields: Array<keyof EntryDesc> = ['type', 'mode', 'size', 'content', 'rdev', 'xattrs', 'linkGroup'];
    if (owners) fields.push('uid', 'gid');
    if (x.type !== 'dir' || opts.dirMtimes !== false) fields.push('mtimeNs');
    for (const f of fields) {
      if (x[f] !== y[f]) diffs.push(`${show(k)}: ${f} ${String(x[f])} != ${String(y[f])}`);
    }
  }
  for (const k of b.keys()) if (!a.has(k)) diffs.push(`${show(k)}: unexpected`);
  return diffs;
}

/** tempDir makes a fresh directory under the system temp dir. */
export function tempDir(prefix = 'kova-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** treeHash is a digest of a whole description, to compare many trees cheaply. */
export function treeDigest(d: Map<string, EntryDesc>): string {
  const h = createHash('sha256');
  for (const [k, v] of [...d].sort(([x], [y]) => (x < y ? -1 : 1))) {
    h.update(`${k}|${v.type}|${v.mode}|${v.size}|${v.content ?? ''}|${v.mtimeNs}|${v.linkGroup ?? ''}|${v.xattrs ?? ''}\n`);
  }
  return h.digest('hex');
}

/** prng returns deterministic pseudo-random bytes (xorshift32), so failures replay. */
export function prng(seed: number, length: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 0x2545f491;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, length);
}
