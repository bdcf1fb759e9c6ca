/**
 * Hostile trees: what a tenant can put in a volume (symlinks out of it, odd
 * names, deep nesting, FIFOs, files that grow while read, entries swapped for
 * symlinks mid-walk) must be captured verbatim, never followed, never hang a
 * snapshot; and a hostile repository must never make a restore write outside
 * its target.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptionError, TargetNotEmptyError } from '../core/errors.js';
import { BlobType, Compression } from './format/blob.js';
import { hashHex } from './format/hash.js';
import { type IndexedPack, encodeIndex } from './format/index-format.js';
import { encodeSnapshotRecord } from './format/snapshot-record.js';
import { type TreeNode, nodeToJson } from './format/tree.js';
import { S_IFIFO } from './fsx/fsx.js';
import { native, setTimesNs } from './native.js';
import { PackWriter } from './repo/pack-writer.js';
import { Repository } from './repo/repository.js';
import { type EntryDesc, compareTrees, describeTree, prng, tempDir } from './testing.js';

const SMALL_CHUNKS = { minSize: 4096, avgSize: 16384, maxSize: 65536 };
const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'kova_native.node');

const cleanups: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((resolve) => c.once('exit', resolve));
    }
  }
  // rm copes with trees deeper than PATH_MAX; fs.rmSync does not.
  for (const d of cleanups.splice(0)) execFileSync('rm', ['-rf', '--', d]);
});

function workDir(): string {
  const d = tempDir('kova-hostile-');
  cleanups.push(d);
  return d;
}

function initRepo(dir: string): Promise<Repository> {
  return Repository.init(dir, { chunker: SMALL_CHUNKS, packSize: 256 * 1024 });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const hexKey = (...names: Array<string | Buffer>): string => names.map((n) => Buffer.from(n).toString('hex')).join('/');
const bjoin = (...parts: Array<string | Buffer>): Buffer =>
  Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])));

const PASSWD = fs.readFileSync('/etc/passwd');
const HOSTNAME = fs.readFileSync('/etc/hostname');

/** Every blob of the repository, raw. */
async function allBlobs(repo: Repository): Promise<Buffer[]> {
  const index = await repo.reloadIndex();
  const out: Buffer[] = [];
  for (const [id] of index.entries()) out.push(await repo.readBlob(id));
  return out;
}

/** Asserts that nothing of /etc/passwd or /etc/hostname got into the repository. */
async function expectNoEtcContent(repo: Repository): Promise<void> {
  const blobs = await allBlobs(repo);
  expect(blobs.length).toBeGreaterThan(0);
  for (const b of blobs) {
    expect(b.equals(PASSWD), 'a blob holds /etc/passwd').toBe(false);
    expect(b.equals(HOSTNAME), 'a blob holds /etc/hostname').toBe(false);
    expect(b.includes(PASSWD), 'a blob contains /etc/passwd').toBe(false);
  }
}

function expectNoEtcFiles(desc: Map<string, EntryDesc>): void {
  const bad = new Set([sha(PASSWD), sha(HOSTNAME)]);
  for (const [k, d] of desc) if (d.type === 'file') expect(bad.has(d.content!), `restored file ${k} holds /etc content`).toBe(false);
}

/** Runs a small Node.js program as a child process (killed after the test if still running). */
function startChild(code: string, args: string[]): ChildProcess {
  const c = spawn(process.execPath, ['-e', code, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(c);
  return c;
}

async function stopChild(c: ChildProcess, stopFile: string): Promise<void> {
  fs.writeFileSync(stopFile, '');
  if (c.exitCode === null && c.signalCode === null) await new Promise((resolve) => c.once('exit', resolve));
  expect(c.exitCode).toBe(0);
}

async function catchError(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the operation to fail');
}

/** Lists every path below `root` (relative, sorted), never following symlinks; skips `exclude`. */
function listAll(root: string, exclude: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (exclude.includes(r)) continue;
      out.push(r);
      if (fs.lstatSync(path.join(root, r)).isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/* ---- symlinks ----------------------------------------------------------------- */

describe('symlinks are captured verbatim and never followed', () => {
  it('keeps targets out of the tree (/etc, .., absolute, dangling, long, non-UTF-8) as they are', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'sub/deeper'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub/deeper/real'), 'real content\n');
    const links: Array<[string, string | Buffer]> = [
      ['etc', '/etc'],
      ['passwd', '/etc/passwd'],
      ['hostname', '/etc/hostname'],
      ['up', '..'],
      ['upup', '../../../../../../../../etc'],
      ['root', '/'],
      ['self', '.'],
      ['dangling', 'does/not/exist'],
      ['dangling-abs', '/nonexistent-kova/x'],
      ['sub/back', '../sub'],
      ['sub/deeper/escape', '../../../../../../etc/passwd'],
      ['loop', 'loop'],
      ['newline', 'a\nb'],
      ['long', `/${'x/'.repeat(2046)}yz`],
      ['raw', Buffer.from([0x2f, 0x65, 0x74, 0x63, 0x2f, 0xff, 0xfe])],
    ];
    for (const [name, target] of links) fs.symlinkSync(target, path.join(src, name));
    expect(fs.readlinkSync(path.join(src, 'long')).length).toBe(4095);
    native.setXattr(path.join(src, 'etc'), 'trusted.on-link', Buffer.from('v'));
    fs.lchownSync(path.join(src, 'passwd'), 123, 456);
    setTimesNs(path.join(src, 'up'), 1n, 1_500_000_000_000_000_123n);
    const before = describeTree(src);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.symlinks).toBe(links.length);
      expect(snap.stats.files).toBe(1);
      expect(snap.stats.skipped).toBe(0);
      const nodes = await repo.readTree(snap.root.subtree!);
      expect(nodes.find((n) => n.name.toString() === 'etc')).toMatchObject({ type: 'symlink', target: Buffer.from('/etc') });
      expect(nodes.find((n) => n.name.toString() === 'raw')!.target).toEqual(Buffer.from([0x2f, 0x65, 0x74, 0x63, 0x2f, 0xff, 0xfe]));
      await expectNoEtcContent(repo);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      const after = describeTree(dst);
      expect(compareTrees(before, after)).toEqual([]);
      expectNoEtcFiles(after);
      for (const [name, target] of links)
        expect(fs.readlinkSync(path.join(dst, name), { encoding: 'buffer' })).toEqual(Buffer.from(target));
    } finally {
      await repo.close();
    }
  });
});

/* ---- names ---------------------------------------------------------------------- */

describe('names', () => {
  it('round-trips newlines, invalid UTF-8, 255-byte names and other odd names', async () => {
    const work = workDir();
    const src = Buffer.from(path.join(work, 'src'));
    fs.mkdirSync(src);
    const names: Buffer[] = [
      Buffer.from('line\nbreak'),
      Buffer.from('\n'),
      Buffer.from('\r\n\t'),
      Buffer.from([0xff]),
      Buffer.from([0xc3, 0x28]),
      Buffer.from([0x80, 0x80, 0x2e]),
      Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate: not UTF-8
      Buffer.from('...'),
      Buffer.from('.hidden'),
      Buffer.from('-rf'),
      Buffer.from(' '),
      Buffer.from('back\\slash'),
      Buffer.from('%s%n'),
      Buffer.from('ünïcødé ✓'),
      Buffer.alloc(255, 0x61),
      Buffer.alloc(255, 0xff),
      Buffer.concat([Buffer.from('é'.repeat(127)), Buffer.from('x')]),
    ];
    names.forEach((n, i) => fs.writeFileSync(bjoin(src, n), `content ${i}\n`));
    // A 255-byte directory holding a 255-byte file, and directories with odd names.
    const longDir = bjoin(src, Buffer.alloc(255, 0x64));
    fs.mkdirSync(longDir);
    fs.writeFileSync(bjoin(longDir, Buffer.alloc(255, 0xfe)), 'deep');
    const nlDir = bjoin(src, Buffer.from('dir\nwith\nnewlines'));
    fs.mkdirSync(nlDir);
    fs.symlinkSync(Buffer.from([0xff, 0x0a]), bjoin(nlDir, Buffer.from([0xfe, 0x0a])));
    const before = describeTree(src.toString());
    // describeTree saw what we made (it reads raw names too).
    for (const n of names) expect(before.has(n.toString('hex'))).toBe(true);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src.toString());
      expect(snap.stats.files).toBe(names.length + 1);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      expect(compareTrees(before, describeTree(dst))).toEqual([]);
      // Non-UTF-8 names are stored as bytes, not mangled into U+FFFD.
      const nodes = await repo.readTree(snap.root.subtree!);
      expect(nodes.some((n) => n.name.equals(Buffer.from([0xff])))).toBe(true);
      expect(nodes.some((n) => n.name.equals(Buffer.alloc(255, 0xff)))).toBe(true);
    } finally {
      await repo.close();
    }
  });
});

/* ---- depth ---------------------------------------------------------------------- */

const O_DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;
const procPath = (fd: number, name?: string | Buffer): Buffer =>
  name === undefined ? Buffer.from(`/proc/self/fd/${fd}`) : bjoin(`/proc/self/fd/${fd}`, name);

/**
 * describeTreeAt is describeTree for trees deeper than PATH_MAX: it walks by
 * open directory descriptors, so no path it uses is long.
 */
function describeTreeAt(root: string): Map<string, EntryDesc> {
  const out = new Map<string, EntryDesc>();
  const inodes = new Map<string, string>();
  const xattrsOf = (p: Buffer): string | undefined => {
    const names = native.listXattrs(p);
    if (names.length === 0) return undefined;
    return names
      .sort(Buffer.compare)
      .map((n) => `${n.toString('hex')}=${native.getXattr(p, n).toString('hex')}`)
      .join(',');
  };
  const describe = (p: Buffer, rel: string): EntryDesc => {
    const st = fs.lstatSync(p, { bigint: true });
    const d: EntryDesc = {
      type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : 'other',
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      size: st.isFile() ? Number(st.size) : 0,
      allocated: Number(st.blocks) * 512,
    };
    if (st.isFile()) {
      d.content = sha(fs.readFileSync(p));
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        if (!inodes.has(key)) inodes.set(key, rel);
        d.linkGroup = inodes.get(key);
      }
    }
    if (st.isSymbolicLink()) d.content = fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex');
    const x = xattrsOf(p);
    if (x) d.xattrs = x;
    return d;
  };
  const walk = (dirFd: number, rel: string): void => {
    const names = fs.readdirSync(procPath(dirFd), { encoding: 'buffer' }).sort(Buffer.compare);
    for (const n of names) {
      const childRel = rel === '' ? n.toString('hex') : `${rel}/${n.toString('hex')}`;
      const d = describe(procPath(dirFd, n), childRel);
      out.set(childRel, d);
      if (d.type === 'dir') {
        const fd = fs.openSync(procPath(dirFd, n), O_DIR);
        try {
          walk(fd, childRel);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
  };
  const rootFd = fs.openSync(root, O_DIR);
  try {
    out.set('', describe(Buffer.from(root), ''));
    walk(rootFd, '');
  } finally {
    fs.closeSync(rootFd);
  }
  return out;
}

describe('deep trees', () => {
  it('round-trips 200 levels of nesting', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    const levels = Array.from({ length: 200 }, () => 'd');
    const bottom = path.join(src, ...levels);
    fs.mkdirSync(bottom, { recursive: true });
    fs.writeFileSync(path.join(bottom, 'f'), 'at the bottom');
    const middle = path.join(src, ...levels.slice(0, 100));
    fs.writeFileSync(path.join(middle, 'm'), prng(1, 70_000));
    fs.symlinkSync('../../../..', path.join(middle, 'up'));
    fs.linkSync(path.join(bottom, 'f'), path.join(src, 'top-link'));
    native.mknod(path.join(middle, 'fifo'), S_IFIFO | 0o600, 0, 0);
    const before = describeTree(src);
    expect(before.size).toBe(1 + 200 + 5);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.dirs).toBe(201);
      expect(snap.stats.files).toBe(3);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      expect(compareTrees(before, describeTree(dst))).toEqual([]);
      expect(fs.lstatSync(path.join(dst, 'top-link')).ino).toBe(fs.lstatSync(path.join(dst, ...levels, 'f')).ino);
    } finally {
      await repo.close();
    }
  });

  it('round-trips a tree whose paths are longer than PATH_MAX, hardlinks included', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    const LEVELS = 40;
    const fds: number[] = [fs.openSync(src, O_DIR)];
    try {
      for (let i = 0; i < LEVELS; i++) {
        const name = `${'n'.repeat(200)}${i}`;
        fs.mkdirSync(procPath(fds[i]!, name));
        fds.push(fs.openSync(procPath(fds[i]!, name), O_DIR));
      }
      const bottom = fds[LEVELS]!;
      fs.writeFileSync(procPath(bottom, 'file'), prng(5, 30_000));
      fs.symlinkSync('../'.repeat(45), procPath(bottom, 'escape'));
      // Two names of one inode, both deeper than PATH_MAX from the root.
      fs.linkSync(procPath(bottom, 'file'), procPath(fds[30]!, 'deep-link'));
      // Two names of another: one deep, one near the top.
      fs.writeFileSync(procPath(fds[25]!, 'mid'), 'middle');
      fs.linkSync(procPath(fds[25]!, 'mid'), procPath(fds[1]!, 'shallow-link'));
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    const before = describeTreeAt(src);
    expect(before.size).toBe(1 + LEVELS + 5);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.dirs).toBe(LEVELS + 1);
      expect(snap.stats.files).toBe(4);
      expect(snap.stats.skipped).toBe(0);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      // Both names of each inode must be one inode again, however long their paths.
      const inoAt = (levels: number, name: string): number => {
        const fds = [fs.openSync(dst, O_DIR)];
        try {
          for (let i = 0; i < levels; i++) fds.push(fs.openSync(procPath(fds[i]!, `${'n'.repeat(200)}${i}`), O_DIR));
          return fs.lstatSync(procPath(fds[levels]!, name)).ino;
        } finally {
          for (const fd of fds) fs.closeSync(fd);
        }
      };
      expect(inoAt(1, 'shallow-link'), 'mid and shallow-link are one inode').toBe(inoAt(25, 'mid'));
      expect(inoAt(30, 'deep-link'), 'file and deep-link (both deeper than PATH_MAX) are one inode').toBe(inoAt(LEVELS, 'file'));
      expect(compareTrees(before, describeTreeAt(dst))).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});

/* ---- FIFOs and hardlinks ---------------------------------------------------------- */

describe('special files and links', () => {
  it('does not hang on FIFOs and restores them', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'run'), { recursive: true });
    for (const [p, mode] of [
      ['fifo', 0o644],
      ['run/pipe', 0o600],
      ['run/setgid-pipe', 0o2660],
    ] as const) {
      native.mknod(path.join(src, p), S_IFIFO | 0o600, 0, 0);
      fs.chmodSync(path.join(src, p), mode);
    }
    fs.lchownSync(path.join(src, 'run/pipe'), 33, 33);
    native.setXattr(path.join(src, 'fifo'), 'trusted.fifo', Buffer.from('1'));
    fs.writeFileSync(path.join(src, 'run/regular'), 'x');
    setTimesNs(path.join(src, 'run/pipe'), 1n, 1_600_000_000_000_000_007n);
    const before = describeTree(src);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('snapshot hung on a FIFO')), 15_000);
      });
      const snap = await Promise.race([repo.snapshot(src), hang]).finally(() => clearTimeout(timer));
      expect(snap.stats.specials).toBe(3);
      expect(snap.stats.files).toBe(1);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      const after = describeTree(dst);
      expect(compareTrees(before, after)).toEqual([]);
      expect(after.get(hexKey('run', 'pipe'))!.type).toBe('fifo');
    } finally {
      await repo.close();
    }
  });

  it('restores hardlinks across directories as links to one inode', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    for (const d of ['a', 'b/c', 'z']) fs.mkdirSync(path.join(src, d), { recursive: true });
    fs.writeFileSync(path.join(src, 'a/one'), prng(1, 150_000));
    fs.linkSync(path.join(src, 'a/one'), path.join(src, 'b/c/one-again'));
    fs.linkSync(path.join(src, 'a/one'), path.join(src, 'z/one-more'));
    fs.writeFileSync(path.join(src, 'b/two'), 'two');
    fs.linkSync(path.join(src, 'b/two'), path.join(src, 'b/two-again'));
    fs.linkSync(path.join(src, 'b/two'), path.join(src, 'a/\n\xff'));
    fs.chmodSync(path.join(src, 'a/one'), 0o2751);
    native.setXattr(path.join(src, 'b/two'), 'user.linked', Buffer.from('yes'));
    const before = describeTree(src);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.files).toBe(6);
      // Each inode is read once.
      expect(snap.stats.bytesRead).toBe(150_000 + 3);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      expect(compareTrees(before, describeTree(dst))).toEqual([]);
      const ino = (p: string): number => fs.lstatSync(path.join(dst, p)).ino;
      expect(new Set([ino('a/one'), ino('b/c/one-again'), ino('z/one-more')]).size).toBe(1);
      expect(new Set([ino('b/two'), ino('b/two-again'), ino('a/\n\xff')]).size).toBe(1);
      expect(ino('a/one')).not.toBe(ino('b/two'));
      expect(fs.lstatSync(path.join(dst, 'b/two')).nlink).toBe(3);
    } finally {
      await repo.close();
    }
  });
});

/* ---- a file that grows while it is read --------------------------------------------- */

const APPENDER = `
const fs = require('fs');
const [file, stop] = process.argv.slice(1);
const fd = fs.openSync(file, 'a');
const buf = Buffer.alloc(65536);
const pause = new Int32Array(new SharedArrayBuffer(4));
let x = 987654321;
while (!fs.existsSync(stop)) {
  for (let i = 0; i < buf.length; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; buf.writeInt32LE(x | 0, i); }
  fs.writeSync(fd, buf);
  Atomics.wait(pause, 0, 0, 2);
}
fs.closeSync(fd);
`;

describe('a file appended to during the snapshot', () => {
  it('is captured as a prefix of what the file finally holds, at least as long as at the start', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    const file = path.join(src, 'growing.log');
    fs.writeFileSync(file, prng(77, 50 * 1024 * 1024));
    fs.writeFileSync(path.join(src, 'other'), 'other');
    const stop = path.join(work, 'stop');
    const writer = startChild(APPENDER, [file, stop]);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const initial = 50 * 1024 * 1024;
      // Wait until the writer is really appending.
      for (let i = 0; i < 500 && fs.statSync(file).size <= initial + 65536; i++) await sleep(10);
      const atStart = fs.statSync(file).size;
      expect(atStart).toBeGreaterThan(initial);
      const snap = await repo.snapshot(src);
      const grewDuring = fs.statSync(file).size;
      await stopChild(writer, stop);
      const final = fs.readFileSync(file);
      expect(final.length).toBeGreaterThanOrEqual(grewDuring);

      const node = (await repo.readTree(snap.root.subtree!)).find((n) => n.name.toString() === 'growing.log')!;
      expect(node.size).toBeGreaterThanOrEqual(atStart);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      const restored = fs.readFileSync(path.join(dst, 'growing.log'));
      expect(restored.length).toBe(node.size);
      expect(restored.length).toBeGreaterThanOrEqual(atStart);
      expect(restored.length).toBeLessThanOrEqual(final.length);
      expect(restored.equals(final.subarray(0, restored.length))).toBe(true);
      expect(fs.readFileSync(path.join(dst, 'other'), 'utf8')).toBe('other');
    } finally {
      await repo.close();
    }
  });
});

/* ---- hostile repositories ------------------------------------------------------------ */

const HASH_OF_NOTHING = hashHex(Buffer.alloc(0));

function node(name: string | Buffer, type: TreeNode['type'], extra: Partial<TreeNode> = {}): TreeNode {
  return {
    name: Buffer.from(name),
    type,
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    mtimeNs: 1_000_000_000_000_000_000n,
    ctimeNs: 1_000_000_000_000_000_000n,
    ino: 1n,
    nlink: 1,
    size: 0,
    ...extra,
  };
}

interface Crafted {
  /** Tree blobs (raw JSON), in any order; the last is the root's listing. */
  readonly trees: readonly Buffer[];
  readonly data?: readonly Buffer[];
  /** Overrides for the root node of the snapshot record. */
  readonly root?: Partial<TreeNode>;
}

/** rawTree writes a tree blob by hand, in the given order, nothing checked. */
const rawTree = (nodes: readonly TreeNode[]): Buffer => Buffer.from(JSON.stringify({ v: 1, nodes: nodes.map(nodeToJson) }));

/** craftSnapshot stores blobs and a snapshot record as a (hostile) writer would. */
async function craftSnapshot(repo: Repository, c: Crafted): Promise<string> {
  const written: IndexedPack[] = [];
  const writer = new PackWriter(repo.storage, repo.config.packSize, (p) => void written.push(p));
  for (const raw of c.data ?? []) await writer.add(BlobType.Data, hashHex(raw), raw, Compression.None, raw.length);
  for (const raw of c.trees) await writer.add(BlobType.Tree, hashHex(raw), raw, Compression.None, raw.length);
  await writer.flush();
  const idx = encodeIndex(written);
  await repo.storage.write(`index/${hashHex(idx)}`, idx);
  const rootTree = c.trees[c.trees.length - 1]!;
  const { id, bytes } = encodeSnapshotRecord({
    time: new Date().toISOString(),
    label: 'crafted',
    tags: [],
    parent: null,
    hostname: 'attacker',
    sources: ['/x'],
    root: node(Buffer.alloc(0), 'dir', { subtree: hashHex(rootTree), ...c.root }),
    scanStartNs: 0n,
    stats: {
      files: 0,
      dirs: 0,
      symlinks: 0,
      specials: 0,
      skipped: 0,
      bytes: 0,
      bytesRead: 0,
      filesReused: 0,
      newBlobs: 0,
      newBytes: 0,
      storedBytes: 0,
      durationMs: 0,
    },
    skippedEntries: [],
  });
  await repo.storage.write(`snapshots/${id}`, bytes);
  await repo.reloadIndex();
  return id;
}

describe('restore of a hostile repository never writes outside its target', () => {
  const EVIL = Buffer.from('evil payload\n');
  const evilFile = (name: string | Buffer): TreeNode =>
    node(name, 'file', { size: EVIL.length, content: [{ id: hashHex(EVIL), length: EVIL.length }] });

  /** Each case gets `outside` (an absolute directory path) and returns the blobs. */
  const cases: Array<[string, (outside: string) => Crafted]> = [
    ['a symlink named ".."', (outside) => ({ trees: [rawTree([node('..', 'symlink', { target: Buffer.from(outside) })])] })],
    ['a file named ".."', () => ({ trees: [rawTree([evilFile('..')])] })],
    [
      'a directory named "." holding a file',
      () => {
        const inner = rawTree([evilFile('evil')]);
        return { trees: [inner, rawTree([node('.', 'dir', { subtree: hashHex(inner) })])] };
      },
    ],
    [
      'a directory named ".." holding a file',
      () => {
        const inner = rawTree([evilFile('evil')]);
        return { trees: [inner, rawTree([node('..', 'dir', { subtree: hashHex(inner) })])] };
      },
    ],
    [
      'a name with "/" next to a directory of that prefix',
      () => {
        const empty = rawTree([]);
        return { trees: [empty, rawTree([node('a', 'dir', { subtree: hashHex(empty) }), evilFile('a/b')])] };
      },
    ],
    ['a name "../../evil"', () => ({ trees: [rawTree([evilFile(Buffer.from('../../evil'))])] })],
    ['an absolute name', (outside) => ({ trees: [rawTree([evilFile(`${outside}/evil`)])] })],
    ['a name with NUL', () => ({ trees: [rawTree([evilFile(Buffer.from('evil\0x'))])] })],
    [
      'a symlink "x" to the outside and a directory "x" (duplicate)',
      (outside) => {
        const inner = rawTree([evilFile('evil')]);
        return {
          trees: [inner, rawTree([node('x', 'symlink', { target: Buffer.from(outside) }), node('x', 'dir', { subtree: hashHex(inner) })])],
        };
      },
    ],
    [
      'a directory "x" and a symlink "x" to the outside (duplicate, unsorted)',
      (outside) => {
        const inner = rawTree([evilFile('evil')]);
        return {
          trees: [inner, rawTree([node('x', 'dir', { subtree: hashHex(inner) }), node('x', 'symlink', { target: Buffer.from(outside) })])],
        };
      },
    ],
    [
      'a symlink "y" to the outside sorted after a directory "z" that refers to it',
      (outside) => {
        const inner = rawTree([evilFile('evil')]);
        return {
          trees: [inner, rawTree([node('z', 'dir', { subtree: hashHex(inner) }), node('y', 'symlink', { target: Buffer.from(outside) })])],
        };
      },
    ],
    [
      'a valid directory whose subtree has a symlink and a directory of one name',
      (outside) => {
        const evilDir = rawTree([evilFile('evil')]);
        const sub = rawTree([node('esc', 'symlink', { target: Buffer.from(outside) }), node('esc', 'dir', { subtree: hashHex(evilDir) })]);
        return { trees: [evilDir, sub, rawTree([node('sub', 'dir', { subtree: hashHex(sub) })])] };
      },
    ],
    [
      'a hardlink group whose second name is ".."',
      () => ({
        trees: [
          rawTree([
            { ...evilFile('..'), linkGroup: 'g' },
            { ...evilFile('a'), linkGroup: 'g' },
          ]),
        ],
      }),
    ],
    ['a snapshot root named ".."', () => ({ trees: [rawTree([evilFile('evil')])], root: { name: Buffer.from('..') } })],
    [
      'a snapshot root that is a symlink',
      (outside) => ({ trees: [rawTree([evilFile('evil')])], root: { type: 'symlink', target: Buffer.from(outside) } }),
    ],
    ['a directory whose subtree is a data blob', () => ({ trees: [rawTree([node('d', 'dir', { subtree: hashHex(EVIL) })])] })],
    ['a directory whose subtree is missing', () => ({ trees: [rawTree([node('d', 'dir', { subtree: HASH_OF_NOTHING })])] })],
  ];

  for (const [what, make] of cases) {
    it(`refuses ${what}`, async () => {
      const work = workDir();
      const src = path.join(work, 'src');
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'legit'), 'legit');
      const outside = path.join(work, 'outside');
      fs.mkdirSync(outside);
      const area = path.join(work, 'area');
      const target = path.join(area, 'sub', 'target');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const repo = await initRepo(path.join(work, 'repo'));
      try {
        await repo.snapshot(src); // a valid repository to start from
        const crafted = make(outside);
        const id = await craftSnapshot(repo, { ...crafted, data: [EVIL, ...(crafted.data ?? [])] });
        const snapshotsBefore = listAll(path.join(work, 'repo'));
        const outsideBefore = listAll(work, ['repo', 'area/sub/target']);
        const err = await catchError(repo.restore(id, target));
        expect(err).toBeInstanceOf(CorruptionError);
        expect((err as CorruptionError).code).toBe('REPO_CORRUPT');
        expect(fs.readdirSync(outside)).toEqual([]);
        expect(listAll(work, ['repo', 'area/sub/target'])).toEqual(outsideBefore);
        expect(listAll(path.join(work, 'repo'))).toEqual(snapshotsBefore);
        if (fs.existsSync(target)) {
          // Whatever was restored before the error is inside the target and harmless.
          for (const p of listAll(target)) {
            const st = fs.lstatSync(path.join(target, p));
            if (st.isFile()) expect(fs.readFileSync(path.join(target, p)).equals(EVIL)).toBe(false);
          }
        }
      } finally {
        await repo.close();
      }
    });
  }

  it('restores a symlink to the outside as a symlink, and writes nothing through it', async () => {
    const work = workDir();
    const outside = path.join(work, 'outside');
    fs.mkdirSync(outside);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const inner = rawTree([evilFile('evil')]);
      const id = await craftSnapshot(repo, {
        data: [EVIL],
        trees: [
          inner,
          rawTree([
            node('a', 'symlink', { target: Buffer.from(outside) }),
            node('b', 'dir', { subtree: hashHex(inner) }),
            { ...evilFile('c'), linkGroup: 'g' },
          ]),
        ],
      });
      const target = path.join(work, 'target');
      await repo.restore(id, target);
      expect(fs.readlinkSync(path.join(target, 'a'))).toBe(outside);
      expect(fs.readFileSync(path.join(target, 'b/evil')).equals(EVIL)).toBe(true);
      expect(fs.readdirSync(outside)).toEqual([]);
      expect(fs.readdirSync(work).sort()).toEqual(['outside', 'repo', 'target']);
    } finally {
      await repo.close();
    }
  });
});

/* ---- restore targets --------------------------------------------------------------- */

describe('restore targets', () => {
  async function withSnapshot(fn: (repo: Repository, id: string, work: string) => Promise<void>): Promise<void> {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    fs.writeFileSync(path.join(src, 'd/f'), 'data');
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      await fn(repo, snap.id, work);
    } finally {
      await repo.close();
    }
  }

  it('refuses a target that is a symlink to another (empty) directory and writes nothing there', async () => {
    await withSnapshot(async (repo, id, work) => {
      const elsewhere = path.join(work, 'elsewhere');
      fs.mkdirSync(elsewhere);
      const link = path.join(work, 'link');
      fs.symlinkSync(elsewhere, link);
      const err = await catchError(repo.restore(id, link));
      expect(err).toBeInstanceOf(TargetNotEmptyError);
      expect((err as TargetNotEmptyError).code).toBe('TARGET_NOT_EMPTY');
      expect(fs.readdirSync(elsewhere)).toEqual([]);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    });
  });

  it('refuses a dangling symlink as target and creates nothing where it points', async () => {
    await withSnapshot(async (repo, id, work) => {
      const nowhere = path.join(work, 'nowhere');
      const link = path.join(work, 'link');
      fs.symlinkSync(nowhere, link);
      const err = await catchError(repo.restore(id, link));
      expect((err as TargetNotEmptyError).code).toBe('TARGET_NOT_EMPTY');
      expect(fs.existsSync(nowhere)).toBe(false);
    });
  });

  it('refuses a non-empty target with TARGET_NOT_EMPTY and leaves it as it was', async () => {
    await withSnapshot(async (repo, id, work) => {
      const target = path.join(work, 'target');
      fs.mkdirSync(target);
      fs.writeFileSync(path.join(target, 'precious'), 'keep me');
      const before = describeTree(target);
      const err = await catchError(repo.restore(id, target));
      expect(err).toBeInstanceOf(TargetNotEmptyError);
      expect((err as TargetNotEmptyError).code).toBe('TARGET_NOT_EMPTY');
      expect(compareTrees(before, describeTree(target))).toEqual([]);
      // A target holding only a hidden entry is not empty either.
      const hidden = path.join(work, 'hidden');
      fs.mkdirSync(hidden);
      fs.mkdirSync(path.join(hidden, '.git'));
      expect(((await catchError(repo.restore(id, hidden))) as TargetNotEmptyError).code).toBe('TARGET_NOT_EMPTY');
    });
  });

  it('refuses a target that is a file', async () => {
    await withSnapshot(async (repo, id, work) => {
      const file = path.join(work, 'file');
      fs.writeFileSync(file, 'x');
      expect(((await catchError(repo.restore(id, file))) as TargetNotEmptyError).code).toBe('TARGET_NOT_EMPTY');
      expect(fs.readFileSync(file, 'utf8')).toBe('x');
    });
  });

  it('accepts an existing empty directory and an absent one', async () => {
    await withSnapshot(async (repo, id, work) => {
      const empty = path.join(work, 'empty');
      fs.mkdirSync(empty);
      await repo.restore(id, empty);
      expect(fs.readFileSync(path.join(empty, 'd/f'), 'utf8')).toBe('data');
      await repo.restore(id, path.join(work, 'absent'));
      expect(fs.readFileSync(path.join(work, 'absent/d/f'), 'utf8')).toBe('data');
    });
  });
});

/* ---- a directory swapped for a symlink while the snapshot runs ------------------------ */

const SWAPPER = `
const fs = require('fs');
const native = require(process.argv[1]);
const [, , a, b, stop] = process.argv;
let n = 0;
while (true) {
  native.renameExchange(a, b);
  if (++n % 256 === 0 && fs.existsSync(stop)) break;
}
`;

describe('a directory swapped for a symlink to /etc during snapshots', () => {
  /** makeSwapTree builds src/data (decoys) and src/link -> /etc and starts swapping them. */
  function startSwapping(work: string): { src: string; swapper: ChildProcess; stop: string } {
    const src = path.join(work, 'src');
    const dir = path.join(src, 'data');
    fs.mkdirSync(path.join(dir, 'nested'), { recursive: true });
    // Decoys named like the files in /etc, so a followed symlink would be hard to tell apart by name.
    fs.writeFileSync(path.join(dir, 'passwd'), 'decoy passwd\n');
    fs.writeFileSync(path.join(dir, 'hostname'), 'decoy hostname\n');
    fs.writeFileSync(path.join(dir, 'nested', 'passwd'), 'nested decoy\n');
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dir, `f${i}`), `file ${i}\n`);
    fs.symlinkSync('/etc', path.join(src, 'link'));
    const stop = path.join(work, 'stop');
    const swapper = startChild(SWAPPER, [ADDON, dir, path.join(src, 'link'), stop]);
    return { src, swapper, stop };
  }

  it('never gets /etc content into any snapshot', async () => {
    const work = workDir();
    const { src, swapper, stop } = startSwapping(work);
    const repo = await initRepo(path.join(work, 'repo'));
    const ids: string[] = [];
    try {
      await sleep(50);
      // Snapshots that fail are another test's concern; this one needs enough that complete.
      for (let i = 0; i < 60 && ids.length < 10; i++) {
        try {
          ids.push((await repo.snapshot(src, { label: `race ${i}` })).id);
        } catch {
          // counted below
        }
      }
      await stopChild(swapper, stop);
      expect(ids.length).toBeGreaterThanOrEqual(5);
      await expectNoEtcContent(repo);
      for (const [i, id] of ids.entries()) {
        const dst = path.join(work, `dst${i}`);
        await repo.restore(id, dst);
        const restored = describeTree(dst);
        expectNoEtcFiles(restored);
        // Whatever was captured under either name is the decoy directory or the symlink, verbatim.
        for (const name of ['data', 'link']) {
          const d = restored.get(hexKey(name));
          if (d?.type === 'symlink') expect(Buffer.from(d.content!, 'hex').toString()).toBe('/etc');
          else if (d) expect(d.type).toBe('dir');
        }
      }
    } finally {
      await repo.close();
    }
  });

  it('does not make snapshots fail (a tenant must not be able to stop its backups)', async () => {
    const work = workDir();
    const { src, swapper, stop } = startSwapping(work);
    const repo = await initRepo(path.join(work, 'repo'));
    const failures: string[] = [];
    try {
      await sleep(50);
      for (let i = 0; i < 15; i++) {
        try {
          await repo.snapshot(src);
        } catch (err) {
          failures.push(err instanceof Error ? err.message : String(err));
        }
      }
      await stopChild(swapper, stop);
      // Entries that change type mid-read are skipped, like those that vanish.
      expect(failures).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});
