/**
 * Comparing a snapshot with the live volumes (`diff?against=live`,
 * docs/api.md) on a real service (process runtime, temp data dir) driven
 * through app.inject(): real files are captured, then changed in every way
 * the diff reports, and the API's answer is checked against an independent
 * walk of the volume before and after (node:fs lstat, compared by type,
 * size, modification time, mode, owner and symlink target).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployment, expectError, expectOk, takeSnapshot, volumeDir } from './helpers/api.js';
import { type Harness, sdlFor, startHarness } from './helpers/harness.js';

/** A name that is not UTF-8: "caf", 0xe9, ".txt". */
const LATIN1 = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('.txt')]);

interface Seen {
  readonly type: string;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly target: Buffer | null;
}

interface ChangeRow {
  path: string;
  pathBase64: string | null;
  change: string;
  sizeBefore: number | null;
  sizeAfter: number | null;
}

function typeName(st: fs.BigIntStats): string | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  return null;
}

/** walk records every entry below `dir` (and `dir` itself as `prefix`), by raw path bytes. */
function walk(dir: Buffer, prefix: Buffer, out: Map<string, Seen>): Map<string, Seen> {
  const st = fs.lstatSync(dir, { bigint: true });
  const type = typeName(st)!;
  out.set(prefix.toString('latin1'), {
    type,
    size: type === 'file' ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    target: type === 'symlink' ? fs.readlinkSync(dir, { encoding: 'buffer' }) : null,
  });
  if (type !== 'dir') return out;
  for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
    walk(Buffer.concat([dir, Buffer.from('/'), name]), Buffer.concat([prefix, Buffer.from('/'), name]), out);
  }
  return out;
}

/** byComponents orders raw paths component by component, by bytes (a directory before what it holds). */
function byComponents(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = Buffer.compare(Buffer.from(x[i]!, 'latin1'), Buffer.from(y[i]!, 'latin1'));
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

/** expectedChanges is the diff from walk `before` to walk `after`, computed without the engine. */
function expectedChanges(before: Map<string, Seen>, after: Map<string, Seen>): Array<[string, string, number | null, number | null]> {
  const out: Array<[string, string, number | null, number | null]> = [];
  const keys = [...new Set([...before.keys(), ...after.keys()])].sort(byComponents);
  for (const k of keys) {
    const a = before.get(k);
    const b = after.get(k);
    if (!a) out.push([k, 'added', null, b!.size]);
    else if (!b) out.push([k, 'removed', a.size, null]);
    else if (a.type !== b.type) out.push([k, 'type', a.size, b.size]);
    else if (
      a.mode !== b.mode ||
      a.uid !== b.uid ||
      a.gid !== b.gid ||
      (a.type === 'file' && (a.size !== b.size || a.mtimeNs !== b.mtimeNs)) ||
      (a.target !== null && !a.target.equals(b.target!))
    )
      out.push([k, 'modified', a.size, b.size]);
  }
  return out;
}

/** rawPath is a change's exact path bytes, as latin1 text (to compare with the walk's keys). */
const rawPath = (c: ChangeRow): string =>
  (c.pathBase64 !== null ? Buffer.from(c.pathBase64, 'base64') : Buffer.from(c.path, 'utf8')).toString('latin1');

let h: Harness;
let dep: string;
let snap: string;
let vol: string;
let before: Map<string, Seen>;
const base = () => `/api/v1/deployments/${dep}/snapshots/${snap}`;

async function allChanges(limit?: number): Promise<ChangeRow[]> {
  const seen: ChangeRow[] = [];
  let cursor: string | null = null;
  do {
    const q = `${limit ? `&limit=${limit}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const body = expectOk(await h.api('GET', `${base()}/diff?against=live${q}`));
    if (limit) expect(body.changes.length).toBeLessThanOrEqual(limit);
    seen.push(...(body.changes as ChangeRow[]));
    cursor = body.cursor as string | null;
  } while (cursor);
  return seen;
}

beforeAll(async () => {
  h = await startHarness();
  dep = await createDeployment(h, sdlFor('exec sleep 100000', { volumes: ['data', 'logs'] }));
  vol = volumeDir(h, dep);
  const w = (p: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(vol, p)), { recursive: true });
    fs.writeFileSync(path.join(vol, p), data);
  };
  w('same.txt', 'unchanged');
  w('rewritten.txt', 'aaaa');
  w('appended.log', 'line 1\n');
  w('touched.txt', 'same bytes');
  w('chmodded.sh', '#!/bin/sh\n');
  w('gone.txt', 'bye');
  w('tree/a/one.txt', '1');
  w('tree/a/two.txt', '22');
  w('tree/b/three.txt', '333');
  w('untouched/deep/x.bin', Buffer.alloc(4096, 7));
  w('was-file', 'file for now');
  w('was-dir/inner.txt', 'inner');
  w('dir-mode/keep.txt', 'k');
  fs.symlinkSync('same.txt', path.join(vol, 'link'));
  fs.writeFileSync(Buffer.concat([Buffer.from(`${vol}/`), LATIN1]), 'latin-1 name');
  fs.writeFileSync(path.join(volumeDir(h, dep, 'logs'), 'app.log'), 'log');
  // The walk below is the snapshot's before side; mtimes must be older than the capture's scan start.
  before = walk(Buffer.from(vol), Buffer.from('app/data'), new Map());
  await new Promise((r) => setTimeout(r, 50));
  snap = (await takeSnapshot(h, dep)).id;
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('GET …/diff?against=live', () => {
  it('is empty while the volumes are as captured', async () => {
    expect(await allChanges()).toEqual([]);
  });

  it('lists what changed since the snapshot, as an independent walk of the volume sees it', async () => {
    const p = (x: string) => path.join(vol, x);
    fs.writeFileSync(p('rewritten.txt'), 'bbbb'); // same size, new time
    fs.appendFileSync(p('appended.log'), 'line 2\n');
    const t = new Date(Date.now() + 3_600_000);
    fs.utimesSync(p('touched.txt'), t, t); // time only
    fs.chmodSync(p('chmodded.sh'), 0o755);
    fs.rmSync(p('gone.txt'));
    fs.rmSync(p('tree/a'), { recursive: true });
    fs.mkdirSync(p('tree/c/d'), { recursive: true });
    fs.writeFileSync(p('tree/c/d/new.txt'), 'new!');
    fs.rmSync(p('was-file'));
    fs.mkdirSync(p('was-file'));
    fs.writeFileSync(p('was-file/now-inside'), 'x');
    fs.rmSync(p('was-dir'), { recursive: true });
    fs.writeFileSync(p('was-dir'), 'a file now');
    fs.chmodSync(p('dir-mode'), 0o700);
    fs.rmSync(p('link'));
    fs.symlinkSync('appended.log', p('link'));
    fs.appendFileSync(Buffer.concat([Buffer.from(`${vol}/`), LATIN1]), '!');
    execFileSync('mkfifo', [p('pipe')]);

    const after = walk(Buffer.from(vol), Buffer.from('app/data'), new Map());
    const expected = expectedChanges(before, after);
    // The walk saw every kind of change at least once (the test would prove little otherwise).
    expect(new Set(expected.map((e) => e[1]))).toEqual(new Set(['added', 'removed', 'modified', 'type']));
    expect(expected.map((e) => e[0])).toEqual(
      expect.arrayContaining(['app/data/touched.txt', 'app/data/rewritten.txt', 'app/data/dir-mode', 'app/data/link']),
    );
    expect(expected.map((e) => e[0])).not.toContain('app/data/same.txt');
    expect(expected.map((e) => e[0])).not.toContain('app/data/untouched/deep/x.bin');

    const got = await allChanges();
    expect(got.map((c) => [rawPath(c), c.change, c.sizeBefore, c.sizeAfter])).toEqual(expected);
    const latin = got.find((c) => c.pathBase64 !== null)!;
    expect(Buffer.from(latin.pathBase64!, 'base64')).toEqual(Buffer.concat([Buffer.from('app/data/'), LATIN1]));
    expect(latin.path).toBe('app/data/caf\ufffd.txt');
  });

  it('pages with a cursor to the same sequence', async () => {
    const all = await allChanges();
    expect(all.length).toBeGreaterThan(6);
    expect(await allChanges(2)).toEqual(all);
    expect(await allChanges(5)).toEqual(all);
  });

  it('shows a volume directory that is gone as removed with everything it held', async () => {
    fs.rmSync(volumeDir(h, dep, 'logs'), { recursive: true });
    const got = (await allChanges()).filter((c) => c.path.startsWith('app/logs'));
    expect(got.map((c) => [c.path, c.change])).toEqual([
      ['app/logs', 'removed'],
      ['app/logs/app.log', 'removed'],
    ]);
    fs.mkdirSync(volumeDir(h, dep, 'logs'));
  });

  it('refuses an unknown snapshot, a bad cursor, and a deployment that is not active', async () => {
    expectError(await h.api('GET', `/api/v1/deployments/${dep}/snapshots/snap-nope/diff?against=live`), 404, 'SNAPSHOT_NOT_FOUND');
    expectError(await h.api('GET', `${base()}/diff?against=live&cursor=${encodeURIComponent('not a cursor!')}`), 400, 'INVALID_CURSOR');
    const other = await h.newUser('mallory');
    expectError(await h.api('GET', `${base()}/diff?against=live`, undefined, other), 404, 'DEPLOYMENT_NOT_FOUND');
    expectOk(await h.api('POST', `/api/v1/deployments/${dep}/close`));
    await h.idle();
    expectError(await h.api('GET', `${base()}/diff?against=live`), 409, 'DEPLOYMENT_NOT_ACTIVE');
  });
});
