/**
 * Browsing, downloading and comparing snapshots end to end (docs/api.md):
 * listings checked against the source directory, paging, names that are
 * not UTF-8, symlinks pointing outside, Range requests, archives extracted
 * with GNU tar, and diffs between two snapshots, on a real service
 * (process runtime, temp data dir) driven through app.inject().
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployment, expectError, expectOk, takeSnapshot, volumeDir } from './helpers/api.js';
import { Repository } from '../src/engine/index.js';
import { BrowseService } from '../src/services/browse-service.js';
import { type Harness, startHarness, waitFor } from './helpers/harness.js';

let h: Harness;
let dep: string;
let snap1: string;
let snap2: string;
let src: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-browse-'));

/** A name that is not UTF-8: "bad", 0xff, ".bin". */
const HOSTILE = Buffer.concat([Buffer.from('bad'), Buffer.from([0xff]), Buffer.from('.bin')]);
const BIG = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7 + 3) % 251));
const SPARSE = 32 * 1024 * 1024;
const MANY = Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(3, '0')}`);

const base = (d: string, s: string) => `/api/v1/deployments/${d}/snapshots/${s}`;

async function get(url: string, headers: Record<string, string> = {}) {
  return h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${h.token}`, ...headers } });
}

function isoOf(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  return `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

/** The listing entry the API must give for `name` in the source directory `dir` (a UTF-8 name). */
function sourceEntry(dir: string, name: string) {
  const st = fs.lstatSync(path.join(dir, name), { bigint: true });
  const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
  return {
    name,
    nameBase64: null,
    type,
    size: type === 'file' ? Number(st.size) : 0,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: isoOf(st.mtimeNs),
    target: type === 'symlink' ? fs.readlinkSync(path.join(dir, name)) : null,
    targetBase64: null,
  };
}

beforeAll(async () => {
  h = await startHarness();
  dep = await createDeployment(h);
  src = volumeDir(h, dep);
  fs.writeFileSync(path.join(src, 'big.bin'), BIG);
  fs.writeFileSync(path.join(src, 'hello.txt'), 'hello\n');
  fs.chmodSync(path.join(src, 'hello.txt'), 0o640);
  fs.mkdirSync(path.join(src, 'many'));
  for (const n of MANY) fs.writeFileSync(path.join(src, 'many', n), n);
  fs.mkdirSync(path.join(src, 'sub', 'deep'), { recursive: true });
  fs.writeFileSync(path.join(src, 'sub', 'deep', 'x.txt'), 'x');
  fs.writeFileSync(path.join(src, 'sub', 'gone.txt'), 'to be removed');
  fs.writeFileSync(path.join(src, 'sub', 'becomes-dir'), 'file for now');
  fs.symlinkSync('hello.txt', path.join(src, 'link-in'));
  fs.symlinkSync('/etc/passwd', path.join(src, 'link-out'));
  fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/`), HOSTILE]), 'hostile');
  // A large file that costs nothing to capture: one hole.
  fs.closeSync(fs.openSync(path.join(src, 'sparse.bin'), 'w'));
  fs.truncateSync(path.join(src, 'sparse.bin'), SPARSE);
  snap1 = (await takeSnapshot(h, dep)).id;

  // Known changes for the diff.
  fs.writeFileSync(path.join(src, 'hello.txt'), 'hello, world\n');
  fs.writeFileSync(path.join(src, 'sub', 'new.txt'), 'new');
  fs.rmSync(path.join(src, 'sub', 'gone.txt'));
  fs.rmSync(path.join(src, 'sub', 'becomes-dir'));
  fs.mkdirSync(path.join(src, 'sub', 'becomes-dir'));
  fs.writeFileSync(path.join(src, 'sub', 'becomes-dir', 'inner'), 'inner');
  snap2 = (await takeSnapshot(h, dep)).id;
}, 120_000);

afterAll(async () => {
  await h?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('GET …/files', () => {
  it('lists services at the root and volumes in a service', async () => {
    const root = expectOk(await h.api('GET', `${base(dep, snap1)}/files`));
    expect(root.entries.map((e: { name: string; type: string }) => [e.name, e.type])).toEqual([['app', 'dir']]);
    expect(root.cursor).toBeNull();
    const svc = expectOk(await h.api('GET', `${base(dep, snap1)}/files?path=app/`));
    expect(svc.entries.map((e: { name: string }) => e.name)).toEqual(['data']);
  });

  it('lists a volume directory as the source holds it', async () => {
    // The source is as it was at snap2.
    const body = expectOk(await h.api('GET', `${base(dep, snap2)}/files?path=app/data`));
    expect(Object.keys(body).sort()).toEqual(['cursor', 'entries', 'success']);
    const rawNames = fs.readdirSync(src, { encoding: 'buffer' }).filter((n) => !n.equals(HOSTILE));
    const byName = new Map(body.entries.map((e: { name: string }) => [e.name, e]));
    for (const raw of rawNames) {
      const name = raw.toString('utf8');
      expect(byName.get(name)).toEqual(sourceEntry(src, name));
    }
    expect(byName.get('hello.txt')).toMatchObject({ mode: 0o640, size: 13 });
    expect(byName.get('link-out')).toMatchObject({ type: 'symlink', target: '/etc/passwd' });
    // Name order (bytes), the hostile name included.
    const names = body.entries.map((e: { name: string }) => e.name);
    expect(names).toHaveLength(rawNames.length + 1);
    expect([...names].sort((a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b)))).toEqual(names);
  });

  it('shows a name that is not UTF-8 with U+FFFD and its raw bytes, and reaches it by pathBase64', async () => {
    const body = expectOk(await h.api('GET', `${base(dep, snap1)}/files?path=app/data&q=bad`));
    expect(body.entries).toHaveLength(1);
    expect(body.entries[0]).toMatchObject({ name: 'bad\uFFFD.bin', nameBase64: HOSTILE.toString('base64'), type: 'file', size: 7 });
    const p = Buffer.concat([Buffer.from('app/data/'), HOSTILE]).toString('base64');
    const r = await get(`${base(dep, snap1)}/files/content?pathBase64=${encodeURIComponent(p)}`);
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe('hostile');
    expect(r.headers['content-disposition']).toBe("attachment; filename*=UTF-8''bad%EF%BF%BD.bin");
  });

  it('pages with a cursor, null on the last page', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const body = expectOk(await h.api('GET', `${base(dep, snap1)}/files?path=app/data/many&limit=10${q}`));
      seen.push(...body.entries.map((e: { name: string }) => e.name));
      cursor = body.cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(MANY);
  });

  it('filters by name, case-insensitively', async () => {
    const body = expectOk(await h.api('GET', `${base(dep, snap1)}/files?path=app/data/many&q=F02`));
    expect(body.entries.map((e: { name: string }) => e.name)).toEqual(['f020', 'f021', 'f022', 'f023', 'f024']);
  });

  it('answers 404 PATH_NOT_FOUND, 400 NOT_A_DIRECTORY and 400 INVALID_PATH', async () => {
    expectError(await h.api('GET', `${base(dep, snap1)}/files?path=app/data/nope`), 404, 'PATH_NOT_FOUND');
    expectError(await h.api('GET', `${base(dep, snap1)}/files?path=other/data`), 404, 'PATH_NOT_FOUND');
    expectError(await h.api('GET', `${base(dep, snap1)}/files?path=app/data/hello.txt`), 400, 'NOT_A_DIRECTORY');
    expectError(await h.api('GET', `${base(dep, snap1)}/files?path=app/data/../data`), 400, 'INVALID_PATH');
    expectError(await h.api('GET', `${base(dep, snap1)}/files?path=app/data&limit=0`), 400, 'INVALID_LIMIT');
    expectError(await h.api('GET', `${base(dep, snap1)}/files?path=app/data&limit=ten`), 400, 'INVALID_LIMIT');
    expectError(await h.api('GET', `${base(dep, snap2)}/diff?against=${snap1}&limit=5001`), 400, 'INVALID_LIMIT');
    expectError(await h.api('GET', `${base(dep, snap1)}/files?path=app/data&cursor=not%20a%20cursor`), 400, 'INVALID_CURSOR');
  });

  it("answers 404 for another user's deployment and an unknown snapshot", async () => {
    const bob = await h.newUser('bob');
    expectError(await h.api('GET', `${base(dep, snap1)}/files`, undefined, bob), 404, 'DEPLOYMENT_NOT_FOUND');
    expectError(
      await h.api('GET', `${base(dep, snap1)}/files/content?path=app/data/hello.txt`, undefined, bob),
      404,
      'DEPLOYMENT_NOT_FOUND',
    );
    expectError(await h.api('GET', `${base(dep, snap1)}/archive?path=app/data`, undefined, bob), 404, 'DEPLOYMENT_NOT_FOUND');
    expectError(await h.api('GET', `${base(dep, snap2)}/diff?against=${snap1}`, undefined, bob), 404, 'DEPLOYMENT_NOT_FOUND');
    expectError(await h.api('GET', `${base(dep, 'snap-nope')}/files`), 404, 'SNAPSHOT_NOT_FOUND');
  });
});

describe('GET …/files/content', () => {
  const url = () => `${base(dep, snap1)}/files/content?path=app/data/big.bin`;

  it('streams the whole file with its headers', async () => {
    const r = await get(url());
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(BIG)).toBe(true);
    expect(r.headers['content-length']).toBe(String(BIG.length));
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['content-disposition']).toBe("attachment; filename*=UTF-8''big.bin");
  });

  it('answers ranges with 206 and Content-Range: first bytes, middle, suffix', async () => {
    for (const [range, start, end] of [
      ['bytes=0-9', 0, 10],
      ['bytes=70000-70099', 70_000, 70_100],
      ['bytes=-10', BIG.length - 10, BIG.length],
      ['bytes=99990-', 99_990, BIG.length],
      ['bytes=99990-200000', 99_990, BIG.length],
    ] as const) {
      const r = await get(url(), { range });
      expect(r.statusCode, range).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${start}-${end - 1}/${BIG.length}`);
      expect(r.headers['content-length']).toBe(String(end - start));
      expect(r.rawPayload.equals(BIG.subarray(start, end)), range).toBe(true);
    }
  });

  it('answers 416 with Content-Range for a range past the end', async () => {
    const r = await get(url(), { range: 'bytes=100000-100010' });
    expect(r.statusCode).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${BIG.length}`);
    expect(JSON.parse(r.body).error.code).toBe('RANGE_NOT_SATISFIABLE');
  });

  it('releases the repository when a download is aborted mid-way', async () => {
    const locks = (): string[] => fs.readdirSync(path.join(h.paths.repo(dep), 'locks')).filter((n) => n !== '.keep');
    expect(locks()).toEqual([]);
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const received = await new Promise<number>((resolve, reject) => {
      const req = http.get(
        `${address}${base(dep, snap1)}/files/content?path=app/data/sparse.bin`,
        { headers: { authorization: `Bearer ${h.token}` } },
        (res) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-length']).toBe(String(SPARSE));
          res.once('data', (chunk: Buffer) => {
            // The download holds the repository open (a read lock) while it streams.
            expect(locks()).toHaveLength(1);
            req.destroy();
            resolve(chunk.length);
          });
        },
      );
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    expect(received).toBeLessThan(SPARSE);
    await waitFor(() => locks().length === 0, 10_000, 'the read lock to be released');
  });

  it('waits a bounded time for a running gc, then answers 409 REPOSITORY_BUSY', async () => {
    const repo = await Repository.open(h.paths.repo(dep));
    const gc = await repo.lock('exclusive', 'gc');
    const browse = new BrowseService(h.services.ctx, { lockWaitMs: 300 });
    try {
      await expect(browse.read('nobody', dep, snap1, async () => null)).rejects.toMatchObject({ code: 'DEPLOYMENT_NOT_FOUND' });
      const userId = h.store.deployments.get(dep)!.userId;
      await expect(browse.read(userId, dep, snap1, (r) => r.list([], {}))).rejects.toMatchObject({ code: 'REPOSITORY_BUSY', status: 409 });
    } finally {
      await gc.release();
      await repo.close();
    }
    const userId = h.store.deployments.get(dep)!.userId;
    expect((await browse.read(userId, dep, snap1, (r) => r.list([], {}))).entries.map((e) => e.name)).toEqual(['app']);
  });

  it('answers HEAD with the headers and releases the repository', async () => {
    const r = await h.app.inject({ method: 'HEAD', url: url(), headers: { authorization: `Bearer ${h.token}` } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-length']).toBe(String(BIG.length));
    expect(r.rawPayload.length).toBe(0);
    await waitFor(() => fs.readdirSync(path.join(h.paths.repo(dep), 'locks')).filter((n) => n !== '.keep').length === 0, 10_000, 'no lock');
  });

  it('answers 409 SNAPSHOT_NOT_READY for a snapshot being created', async () => {
    h.store.snapshots.insert({
      id: 'snap-creating01',
      deploymentId: dep,
      label: null,
      status: 'creating',
      trigger: 'manual',
      createdAt: Date.now(),
    });
    try {
      expectError(await h.api('GET', `${base(dep, 'snap-creating01')}/files`), 409, 'SNAPSHOT_NOT_READY');
      expectError(await h.api('GET', `${base(dep, 'snap-creating01')}/files/content?path=app/data/hello.txt`), 409, 'SNAPSHOT_NOT_READY');
      expectError(await h.api('GET', `${base(dep, snap1)}/diff?against=snap-creating01`), 409, 'SNAPSHOT_NOT_READY');
    } finally {
      h.store.snapshots.delete('snap-creating01');
    }
  });

  it('refuses a directory and a symlink with 400 NOT_A_FILE', async () => {
    expectError(await h.api('GET', `${base(dep, snap1)}/files/content?path=app/data/sub`), 400, 'NOT_A_FILE');
    expectError(await h.api('GET', `${base(dep, snap1)}/files/content?path=app/data/link-in`), 400, 'NOT_A_FILE');
    expectError(await h.api('GET', `${base(dep, snap1)}/files/content?path=app/data/missing`), 404, 'PATH_NOT_FOUND');
  });
});

/** tree describes a directory for comparison: relative path → type, mode, content or target. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: Buffer): void => {
    const abs = Buffer.concat([Buffer.from(dir), rel.length ? Buffer.from('/') : Buffer.alloc(0), rel]);
    for (const name of fs.readdirSync(abs, { encoding: 'buffer' })) {
      const r = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const p = Buffer.concat([abs, Buffer.from('/'), name]);
      const st = fs.lstatSync(p);
      const key = r.toString('base64');
      if (st.isSymbolicLink()) out.set(key, `link ${fs.readlinkSync(p, { encoding: 'buffer' }).toString('base64')}`);
      else if (st.isDirectory()) {
        out.set(key, `dir ${(st.mode & 0o7777).toString(8)}`);
        walk(r);
      } else out.set(key, `file ${(st.mode & 0o7777).toString(8)} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

describe('GET …/archive', () => {
  for (const format of ['tar', 'tar.zst'] as const) {
    it(`extracts with GNU tar (${format}) equal to the source, the outside symlink left out with a note`, async () => {
      const r = await get(`${base(dep, snap2)}/archive?path=app/data&format=${format}`);
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe(format === 'tar' ? 'application/x-tar' : 'application/zstd');
      expect(r.headers['content-disposition']).toBe(`attachment; filename*=UTF-8''${snap2}-data.${format}`);
      const out = fs.mkdtempSync(path.join(tmp, 'x-'));
      const file = path.join(tmp, `a-${format}`);
      fs.writeFileSync(file, r.rawPayload);
      execFileSync('tar', [...(format === 'tar.zst' ? ['--zstd'] : []), '-xf', file, '-C', out]);
      const got = tree(path.join(out, 'data'));
      const want = tree(src);
      want.delete(Buffer.from('link-out').toString('base64'));
      const note = Buffer.from('KOVA-OMITTED-SYMLINKS.txt').toString('base64');
      expect(got.get(note)).toBeDefined();
      expect(fs.readFileSync(path.join(out, 'data', 'KOVA-OMITTED-SYMLINKS.txt'), 'utf8')).toContain('link-out');
      got.delete(note);
      expect(got).toEqual(want);
    });
  }

  it('archives the whole snapshot as service/volume directories under the snapshot id', async () => {
    const r = await get(`${base(dep, snap1)}/archive`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-disposition']).toBe(`attachment; filename*=UTF-8''${snap1}-all.tar`);
    const list = execFileSync('tar', ['-t'], { input: r.rawPayload }).toString().split('\n');
    expect(list).toContain(`${snap1}/app/data/hello.txt`);
    expect(list).toContain(`${snap1}/app/data/many/f000`);
  });

  it('refuses a file with 400 NOT_A_DIRECTORY and an unknown format with 400', async () => {
    expectError(await h.api('GET', `${base(dep, snap1)}/archive?path=app/data/hello.txt`), 400, 'NOT_A_DIRECTORY');
    expect((await h.api('GET', `${base(dep, snap1)}/archive?path=app/data&format=zip`)).status).toBe(400);
  });
});

describe('GET …/diff', () => {
  const expected = [
    ['app/data/hello.txt', 'modified', 6, 13],
    ['app/data/sub/becomes-dir', 'type', 12, 0],
    ['app/data/sub/becomes-dir/inner', 'added', null, 5],
    ['app/data/sub/gone.txt', 'removed', 13, null],
    ['app/data/sub/new.txt', 'added', null, 3],
  ];

  it('lists the changes from `against` to the snapshot, in path order', async () => {
    const body = expectOk(await h.api('GET', `${base(dep, snap2)}/diff?against=${snap1}`));
    expect(body.cursor).toBeNull();
    const got = body.changes.map((c: { path: string; change: string; sizeBefore: number | null; sizeAfter: number | null }) => [
      c.path,
      c.change,
      c.sizeBefore,
      c.sizeAfter,
    ]);
    // A directory whose children changed but whose mode and owner did not is not reported itself.
    expect(got).toEqual(expected);
    expect(body.changes.every((c: { pathBase64: string | null }) => c.pathBase64 === null)).toBe(true);
  });

  it('pages with a cursor to the same sequence', async () => {
    const all = expectOk(await h.api('GET', `${base(dep, snap2)}/diff?against=${snap1}`)).changes;
    const seen: unknown[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const body = expectOk(await h.api('GET', `${base(dep, snap2)}/diff?against=${snap1}&limit=2${q}`));
      expect(body.changes.length).toBeLessThanOrEqual(2);
      seen.push(...body.changes);
      cursor = body.cursor;
    } while (cursor);
    expect(seen).toEqual(all);
  });

  it('keeps only the kinds of change asked for, page by page', async () => {
    const kinds = (q: string) => h.api('GET', `${base(dep, snap2)}/diff?against=${snap1}${q}`);
    const added = expectOk(await kinds('&change=added')).changes.map((c: { path: string }) => c.path);
    expect(added).toEqual(['app/data/sub/becomes-dir/inner', 'app/data/sub/new.txt']);
    const some = expectOk(await kinds('&change=removed,type')).changes.map((c: { path: string }) => c.path);
    expect(some).toEqual(['app/data/sub/becomes-dir', 'app/data/sub/gone.txt']);
    const first = expectOk(await kinds('&change=added&limit=1'));
    expect(first.changes.map((c: { path: string }) => c.path)).toEqual(['app/data/sub/becomes-dir/inner']);
    const second = expectOk(await kinds(`&change=added&limit=1&cursor=${encodeURIComponent(first.cursor)}`));
    expect(second.changes.map((c: { path: string }) => c.path)).toEqual(['app/data/sub/new.txt']);
    expect(second.cursor).toBeNull();
    expectError(await kinds('&change=renamed'), 400, 'INVALID_REQUEST');
  });

  it('is empty against itself, and refuses unknown snapshots', async () => {
    expect(expectOk(await h.api('GET', `${base(dep, snap2)}/diff?against=${snap2}`)).changes).toEqual([]);
    expectError(await h.api('GET', `${base(dep, snap2)}/diff?against=snap-nope`), 404, 'SNAPSHOT_NOT_FOUND');
  });
});

describe('a directory of 100,000 entries', () => {
  const COUNT = 100_000;
  let bigDep: string;
  let bigSnap: string;
  let bigDir: string;
  /** One file in a hundred holds its own name, the others are empty; a few entries are links and directories. */
  const nameOf = (i: number) => `e${String(i).padStart(6, '0')}`;

  beforeAll(async () => {
    bigDep = await createDeployment(h);
    bigDir = path.join(volumeDir(h, bigDep), 'huge');
    fs.mkdirSync(bigDir);
    for (let i = 0; i < COUNT; i++) {
      const n = nameOf(i);
      if (i % 10_000 === 1) fs.mkdirSync(path.join(bigDir, n));
      else if (i % 10_000 === 2) fs.symlinkSync(nameOf(i - 2), path.join(bigDir, n));
      else fs.writeFileSync(path.join(bigDir, n), i % 100 === 7 ? n : '');
    }
    bigSnap = (await takeSnapshot(h, bigDep)).id;
  }, 300_000);

  it('pages through every entry with the metadata the source has', async () => {
    const seen: Array<{ name: string }> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const body = expectOk(await h.api('GET', `${base(bigDep, bigSnap)}/files?path=app/data/huge&limit=5000${q}`));
      expect(body.entries.length).toBeLessThanOrEqual(5000);
      seen.push(...body.entries);
      cursor = body.cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(COUNT / 5000);
    const names = fs.readdirSync(bigDir).sort();
    expect(seen.map((e) => e.name)).toEqual(names);
    for (const e of seen) expect(e).toEqual(sourceEntry(bigDir, e.name));
  }, 120_000);

  it('finds one name among them, and pages a search', async () => {
    const one = expectOk(await h.api('GET', `${base(bigDep, bigSnap)}/files?path=app/data/huge&q=E099998`));
    expect(one.entries.map((e: { name: string }) => e.name)).toEqual([nameOf(99_998)]);
    const some = expectOk(await h.api('GET', `${base(bigDep, bigSnap)}/files?path=app/data/huge&q=e0999&limit=50`));
    expect(some.entries.map((e: { name: string }) => e.name)).toEqual(Array.from({ length: 50 }, (_, i) => nameOf(99_900 + i)));
    expect(some.cursor).not.toBeNull();
  });

  it('downloads the directory as a tar that extracts to exactly the source', async () => {
    const r = await get(`${base(bigDep, bigSnap)}/archive?path=app/data/huge&format=tar`);
    expect(r.statusCode).toBe(200);
    const out = fs.mkdtempSync(path.join(tmp, 'huge-'));
    const file = path.join(tmp, 'huge.tar');
    fs.writeFileSync(file, r.rawPayload);
    execFileSync('tar', ['-xf', file, '-C', out]);
    fs.rmSync(file);
    expect(tree(path.join(out, 'huge'))).toEqual(tree(bigDir));
    fs.rmSync(out, { recursive: true, force: true });
  }, 300_000);

  it('streams one file from the middle of it', async () => {
    const r = await get(`${base(bigDep, bigSnap)}/files/content?path=app/data/huge/${nameOf(54_307)}`);
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe(nameOf(54_307));
  });
});

describe('OpenAPI', () => {
  it('describes the four routes, and the JSON answers from the contract', async () => {
    const doc = (await h.api('GET', '/api/v1/openapi.json', undefined, null)).body;
    const p = '/api/v1/deployments/{id}/snapshots/{snapshotId}';
    for (const route of [`${p}/files`, `${p}/files/content`, `${p}/archive`, `${p}/diff`])
      expect(Object.keys(doc.paths[route] ?? {}), route).toContain('get');
    expect(JSON.stringify(doc.paths[`${p}/files`].get.responses['200'])).toContain('"nameBase64"');
    expect(JSON.stringify(doc.paths[`${p}/diff`].get.responses['200'])).toContain('"sizeBefore"');
  });
});
