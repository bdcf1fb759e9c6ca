/**
 * Browsing and diffing snapshots from their trees, checked against the
 * source directories themselves (an independent walk of the filesystem).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repository } from '../repo/repository.js';
import { type EntryDesc, compareTrees, describeTree, tempDir } from '../testing.js';
import type { TreeNode } from '../format/tree.js';
import { findByName, listDirectory, resolvePath } from './browse.js';
import { fileBytes } from './content.js';
import { OMITTED_NOTE, escapes, tarStream } from './tar.js';
import { type Change, comparePaths, diffTrees } from './diff.js';

const NON_UTF8 = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]); // "f\xff\xfe.bin"

let work: string;
let repo: Repository;

function bufPath(...parts: Array<string | Buffer>): Buffer {
  return Buffer.concat(parts.flatMap((p, i) => [...(i ? [Buffer.from('/')] : []), Buffer.isBuffer(p) ? p : Buffer.from(p)]));
}

/** A hostile tree: odd names, a symlink out of the tree, hard links, a sparse file, a large directory. */
function makeSource(dir: string): void {
  fs.mkdirSync(path.join(dir, 'app/data/db'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'app/data/db/table'), Buffer.alloc(200_000, 7));
  fs.writeFileSync(path.join(dir, 'app/data/readme.txt'), 'hello');
  fs.writeFileSync(bufPath(dir, 'app/data', NON_UTF8), 'not utf-8 name');
  fs.symlinkSync('../../../../etc/passwd', path.join(dir, 'app/data/escape'));
  fs.linkSync(path.join(dir, 'app/data/readme.txt'), path.join(dir, 'app/data/hardlink.txt'));
  const fd = fs.openSync(path.join(dir, 'app/data/sparse'), 'w');
  fs.writeSync(fd, Buffer.from('tail'), 0, 4, 8_000_000);
  fs.closeSync(fd);
  fs.mkdirSync(path.join(dir, 'app/data/many'));
  for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(dir, `app/data/many/f${String(i).padStart(5, '0')}`), '');
  fs.chmodSync(path.join(dir, 'app/data/readme.txt'), 0o640);
}

/** Compare a listed node with the source's own description of the same path. */
function expectMatches(node: TreeNode, d: EntryDesc): void {
  expect(node.type).toBe(d.type);
  expect(node.mode).toBe(d.mode);
  expect(node.uid).toBe(d.uid);
  expect(node.gid).toBe(d.gid);
  expect(node.mtimeNs).toBe(d.mtimeNs);
  if (d.type === 'file') expect(node.size).toBe(d.size);
  if (d.type === 'symlink') expect(node.target!.toString('hex')).toBe(d.content);
}

const key = (components: readonly Buffer[]): string => components.map((c) => c.toString('hex')).join('/');

beforeAll(async () => {
  work = tempDir('kova-browse-');
  repo = await Repository.init(path.join(work, 'repo'));
});
afterAll(async () => {
  await repo.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('browse', () => {
  it('lists every directory of a snapshot as the source has it, names and metadata alike', async () => {
    const src = path.join(work, 'src1');
    makeSource(src);
    const rec = await repo.snapshot(src);
    await repo.loadIndex();
    const want = describeTree(src);
    let listed = 0;
    for (const [k, d] of want) {
      if (d.type !== 'dir') continue;
      const components = k === '' ? [] : k.split('/').map((h) => Buffer.from(h, 'hex'));
      const dir = await resolvePath(repo, rec.root, components);
      const names: Buffer[] = [];
      let after: Buffer | undefined;
      for (;;) {
        const page = await listDirectory(repo, dir, { after, limit: 700 });
        for (const e of page.entries) {
          names.push(e.name);
          expectMatches(e, want.get(key([...components, e.name]))!);
          listed++;
        }
        if (!page.next) break;
        after = page.next;
      }
      const onDisk = fs.readdirSync(components.length ? bufPath(src, ...components) : src, { encoding: 'buffer' }).sort(Buffer.compare);
      expect(names).toEqual(onDisk);
    }
    expect(listed).toBe(want.size - 1);
  });

  it('resolves paths without following symlinks, and says which path is missing', async () => {
    const src = path.join(work, 'src2');
    makeSource(src);
    const rec = await repo.snapshot(src);
    const link = await resolvePath(repo, rec.root, [Buffer.from('app'), Buffer.from('data'), Buffer.from('escape')]);
    expect(link.type).toBe('symlink');
    expect(link.target!.toString()).toBe('../../../../etc/passwd');
    await expect(
      resolvePath(repo, rec.root, [Buffer.from('app'), Buffer.from('data'), Buffer.from('escape'), Buffer.from('x')]),
    ).rejects.toMatchObject({
      code: 'PATH_NOT_FOUND',
      message: 'the snapshot has no app/data/escape/x',
    });
    await expect(resolvePath(repo, rec.root, [Buffer.from('nope')])).rejects.toMatchObject({ code: 'PATH_NOT_FOUND' });
    const odd = await resolvePath(repo, rec.root, [Buffer.from('app'), Buffer.from('data'), NON_UTF8]);
    expect(odd.size).toBe('not utf-8 name'.length);
    await expect(listDirectory(repo, odd)).rejects.toMatchObject({ code: 'NOT_A_DIRECTORY' });
  });

  it('pages with a cursor, and filters by name case-insensitively', async () => {
    const src = path.join(work, 'src3');
    makeSource(src);
    const rec = await repo.snapshot(src);
    const many = await resolvePath(repo, rec.root, [Buffer.from('app'), Buffer.from('data'), Buffer.from('many')]);
    const first = await listDirectory(repo, many, { limit: 10 });
    expect(first.entries.map((e) => e.name.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `f${String(i).padStart(5, '0')}`));
    expect(first.next!.toString()).toBe('f00009');
    const last = await listDirectory(repo, many, { after: Buffer.from('f02995'), limit: 10 });
    expect(last.entries.map((e) => e.name.toString())).toEqual(['f02996', 'f02997', 'f02998', 'f02999']);
    expect(last.next).toBeNull();
    const exact = await listDirectory(repo, many, { after: Buffer.from('f02989'), limit: 10 });
    expect(exact.entries).toHaveLength(10);
    expect(exact.next).toBeNull(); // a page that ends exactly at the end is the last one
    expect((await listDirectory(repo, many, { after: Buffer.from('f02999'), limit: 10 })).entries).toHaveLength(0);
    expect((await listDirectory(repo, many, { after: Buffer.from('f02988'), limit: 10 })).next!.toString()).toBe('f02998');
    const filtered = await listDirectory(repo, many, { contains: 'F0299', limit: 100 });
    expect(filtered.entries.map((e) => e.name.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `f0299${i}`));
    const found = [];
    for await (const f of findByName(repo, rec.root, 'README')) found.push(f.path.map((c) => c.toString()).join('/'));
    expect(found).toEqual(['app/data/readme.txt']);
  });
});

/** Reference diff: from two independent descriptions of the source trees. */
function referenceDiff(a: Map<string, EntryDesc>, b: Map<string, EntryDesc>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, x] of a) {
    if (k === '') continue;
    const y = b.get(k);
    if (!y) out.set(k, 'removed');
    else if (x.type !== y.type) out.set(k, 'type');
    else if (
      x.mode !== y.mode ||
      x.uid !== y.uid ||
      x.gid !== y.gid ||
      x.size !== y.size ||
      x.content !== y.content ||
      x.xattrs !== y.xattrs ||
      x.rdev !== y.rdev
    ) {
      out.set(k, 'modified');
    }
  }
  for (const k of b.keys()) if (k !== '' && !a.has(k)) out.set(k, 'added');
  // Below a path whose type changed, the two sides' entries are removed and added.
  return out;
}

describe('diffTrees', () => {
  it('reports what changed between two snapshots exactly as an independent walk of the sources does', async () => {
    const src = path.join(work, 'src4');
    makeSource(src);
    const before = describeTree(src);
    const a = await repo.snapshot(src);
    // Changes of every kind.
    fs.writeFileSync(path.join(src, 'app/data/readme.txt'), 'hello, changed'); // also the hard link
    fs.rmSync(path.join(src, 'app/data/db'), { recursive: true });
    fs.writeFileSync(path.join(src, 'app/data/db'), 'now a file');
    fs.mkdirSync(path.join(src, 'app/new/deep'), { recursive: true });
    fs.writeFileSync(path.join(src, 'app/new/deep/x'), 'x');
    fs.unlinkSync(path.join(src, 'app/data/many/f01234'));
    fs.chmodSync(path.join(src, 'app/data/many/f00007'), 0o600);
    fs.utimesSync(path.join(src, 'app/data/many/f00008'), new Date(0), new Date(0)); // time only: not a change
    fs.rmSync(path.join(src, 'app/data/escape'));
    fs.symlinkSync('/elsewhere', path.join(src, 'app/data/escape'));
    const after = describeTree(src);
    const b = await repo.snapshot(src);

    const got = new Map<string, string>();
    const order: Change[] = [];
    for await (const c of diffTrees(repo, a.root, b.root)) {
      got.set(key(c.path), c.change);
      order.push(c);
    }
    expect(got).toEqual(referenceDiff(before, after));
    expect(got.get(key([Buffer.from('app'), Buffer.from('data'), Buffer.from('db')]))).toBe('type');
    // Sizes on each side.
    const readme = order.find((c) => c.path.map((p) => p.toString()).join('/') === 'app/data/readme.txt')!;
    expect([readme.sizeBefore, readme.sizeAfter]).toEqual([5, 14]);
    // Stable order, so a path is a cursor: resuming after any change yields the rest.
    for (let i = 1; i < order.length; i++) expect(comparePaths(order[i - 1]!.path, order[i]!.path)).toBeLessThan(0);
    for (const cut of [0, 1, Math.floor(order.length / 2), order.length - 1]) {
      const rest: string[] = [];
      for await (const c of diffTrees(repo, a.root, b.root, { after: order[cut]!.path })) rest.push(key(c.path));
      expect(rest).toEqual(order.slice(cut + 1).map((c) => key(c.path)));
    }
  });

  it('skips identical subtrees without reading them', async () => {
    const src = path.join(work, 'src5');
    makeSource(src);
    const a = await repo.snapshot(src);
    fs.writeFileSync(path.join(src, 'app/data/readme.txt'), 'changed');
    const b = await repo.snapshot(src);
    const read: string[] = [];
    const counting = { readTree: (id: string) => (read.push(id), repo.readTree(id)) };
    const changes: string[] = [];
    for await (const c of diffTrees(counting, a.root, b.root)) changes.push(c.path.map((p) => p.toString()).join('/'));
    expect(changes.sort()).toEqual(['app/data/hardlink.txt', 'app/data/readme.txt']);
    // Root, app and app/data on each side; never the unchanged db/ or many/ (3,000 entries).
    const many = await resolvePath(repo, b.root, [Buffer.from('app'), Buffer.from('data'), Buffer.from('many')]);
    expect(read).not.toContain(many.subtree);
    expect(read.length).toBe(6);
    // The same snapshot on both sides reads nothing at all.
    read.length = 0;
    for await (const c of diffTrees(counting, b.root, b.root)) throw new Error(`unexpected change ${key(c.path)}`);
    expect(read).toHaveLength(0);
  });
});

describe('fileBytes', () => {
  it('streams a file or any byte range of it, holes as zeros, exactly as the source holds it', async () => {
    const src = path.join(work, 'src6');
    fs.mkdirSync(src);
    const data = Buffer.alloc(3_000_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
    fs.writeFileSync(path.join(src, 'big'), data);
    const fd = fs.openSync(path.join(src, 'sparse'), 'w');
    fs.writeSync(fd, data.subarray(0, 100_000), 0, 100_000, 5_000_000);
    fs.closeSync(fd);
    const rec = await repo.snapshot(src);
    for (const name of ['big', 'sparse']) {
      const node = await resolvePath(repo, rec.root, [Buffer.from(name)]);
      const whole = fs.readFileSync(path.join(src, name));
      const read = async (s?: number, e?: number): Promise<Buffer> => {
        const parts: Buffer[] = [];
        for await (const b of fileBytes(repo, node, s, e)) parts.push(Buffer.from(b));
        return Buffer.concat(parts);
      };
      expect((await read()).equals(whole)).toBe(true);
      for (const [s, e] of [
        [0, 1],
        [1, 2],
        [262_143, 262_145],
        [4_999_990, 5_000_010],
        [whole.length - 3, whole.length],
        [17, 2_999_999],
        [whole.length, whole.length],
      ] as const) {
        expect((await read(s, e)).equals(whole.subarray(s, e))).toBe(true);
      }
    }
  });
});

describe('tarStream', () => {
  const extract = (archive: Buffer, into: string, zstd: boolean): void => {
    fs.mkdirSync(into);
    const args = zstd ? ['--zstd', '-xpf', '-', '-C', into] : ['-xpf', '-', '-C', into];
    const r = spawnSync('tar', args, { input: archive });
    expect(r.status, r.stderr.toString()).toBe(0);
  };
  const collect = async (s: NodeJS.ReadableStream): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const b of s) parts.push(Buffer.from(b as Buffer));
    return Buffer.concat(parts);
  };

  it('extracts with GNU tar to exactly the source (names, links, times, owners), leaving out links that point outside', async () => {
    const src = path.join(work, 'src7');
    makeSource(src);
    fs.symlinkSync('db/table', path.join(src, 'app/data/inside'));
    fs.symlinkSync('../data/readme.txt', path.join(src, 'app/data/up-and-back'));
    fs.mkdirSync(path.join(src, 'app/data/' + 'n'.repeat(120)));
    fs.writeFileSync(path.join(src, 'app/data/' + 'n'.repeat(120) + '/' + 'é'.repeat(60)), 'long names');
    const rec = await repo.snapshot(src);
    const dir = await resolvePath(repo, rec.root, [Buffer.from('app'), Buffer.from('data')]);
    for (const zstd of [false, true]) {
      const archive = await collect(tarStream(repo, dir, { top: Buffer.from('data'), zstd }));
      const into = path.join(work, `x7-${zstd}`);
      extract(archive, into, zstd);
      const want = describeTree(path.join(src, 'app/data'));
      const got = describeTree(path.join(into, 'data'));
      const escapeKey = Buffer.from('escape').toString('hex');
      const upKey = Buffer.from('up-and-back').toString('hex');
      want.delete(escapeKey);
      want.delete(upKey); // climbs to app/, above the archive's top
      const note = got.get(Buffer.from(OMITTED_NOTE).toString('hex'));
      expect(note?.type).toBe('file');
      got.delete(Buffer.from(OMITTED_NOTE).toString('hex'));
      for (const d of [...want.values(), ...got.values()]) d.allocated = 0;
      expect(compareTrees(want, got)).toEqual([]);
      const text = fs.readFileSync(path.join(into, 'data', OMITTED_NOTE), 'utf8');
      expect(text).toContain('"data/escape" -> "../../../../etc/passwd"');
      expect(text).toContain('"data/up-and-back" -> "../data/readme.txt"');
      // Nothing outside the extraction directory.
      expect(fs.readdirSync(into)).toEqual(['data']);
    }
  });

  it('never names a path outside the archive, whatever the tree holds', () => {
    expect(escapes(Buffer.from('/etc/passwd'), 3)).toBe(true);
    expect(escapes(Buffer.from(''), 3)).toBe(true);
    expect(escapes(Buffer.from('../x'), 0)).toBe(true);
    expect(escapes(Buffer.from('../x'), 1)).toBe(false);
    expect(escapes(Buffer.from('a/../../x'), 0)).toBe(true);
    expect(escapes(Buffer.from('a/../x'), 0)).toBe(false);
    expect(escapes(Buffer.from('./././../x'), 0)).toBe(true);
    expect(escapes(Buffer.from('a//b/../../..'), 0)).toBe(true);
  });
});
