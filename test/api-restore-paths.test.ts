/**
 * Restoring selected paths through the API of the in-process harness
 * (process runtime): in place, the chosen paths become exactly the
 * snapshot's (content and metadata) and everything else stays as it is;
 * alongside, they appear under a new folder and nothing stops; the plan says
 * what each path does; invalid requests answer a stable code and change
 * nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type EntryDesc, compareTrees, describeTree } from '../src/engine/testing.js';
import { setTimesNs } from '../src/engine/native.js';
import { createDeployment, expectStatus, snapshotReady, stagingDirs, volumeDir, waitRestore, waitRunning } from './helpers/flows.js';
import { type Harness, sdlFor, startHarness, waitFor } from './helpers/harness.js';

let h: Harness;
let depId: string;
let data: string;
let logs: string;
let snapA: { id: string };
/** Copies of both volumes in state A (the snapshot) and B (live before each test). */
let copies: string;

const api = (m: string, u: string, b?: unknown) => h.api(m, u, b);

function put(root: string, rel: string, body: string | Buffer, mtimeS?: number): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, body);
  if (mtimeS !== undefined) setTimesNs(p, BigInt(mtimeS) * 1_000_000_000n, BigInt(mtimeS) * 1_000_000_000n + 7n);
}

function writeA(): void {
  put(data, 'config.json', '{"state":"A"}', 1_700_000_000);
  put(data, 'db/main.db', Buffer.alloc(200_000, 'a'), 1_700_000_001);
  for (let i = 0; i < 5; i++) put(data, `db/rows/${i}.txt`, `A-${i}\n`);
  fs.chmodSync(path.join(data, 'db/rows/1.txt'), 0o600);
  fs.symlinkSync('main.db', path.join(data, 'db/current'));
  // Whole seconds: a copy (millisecond times for symlinks) keeps them exactly.
  fs.lutimesSync(path.join(data, 'db/current'), 1_700_000_003, 1_700_000_003);
  put(data, 'keep/notes.txt', 'A notes');
  put(data, 'gone-later/x.txt', 'only in A');
  put(logs, 'app.log', 'A log\n', 1_700_000_002);
  setTimesNs(path.join(data, 'db'), 1n, 1_650_000_000_000_000_123n);
}

/** mutateToB rewrites, removes and adds files in both volumes, and changes metadata. */
function mutateToB(): void {
  put(data, 'config.json', '{"state":"B"}');
  put(data, 'db/main.db', Buffer.alloc(210_000, 'b'));
  fs.rmSync(path.join(data, 'db/rows/3.txt'));
  put(data, 'db/added-since.txt', 'B only');
  fs.chmodSync(path.join(data, 'db/rows/1.txt'), 0o644);
  put(data, 'keep/notes.txt', 'B notes');
  fs.rmSync(path.join(data, 'gone-later'), { recursive: true });
  put(logs, 'app.log', 'B log\n');
  put(logs, 'other.log', 'B other\n');
}

function cpA(src: string, dst: string): void {
  fs.cpSync(src, dst, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  // cpSync keeps only millisecond times: copy every entry's exact times and modes.
  const walk = (rel: string): void => {
    const from = path.join(src, rel);
    const to = path.join(dst, rel);
    const st = fs.lstatSync(from, { bigint: true });
    if (st.isDirectory()) for (const n of fs.readdirSync(from)) walk(path.join(rel, n));
    if (st.isSymbolicLink()) {
      fs.lutimesSync(to, new Date(Number(st.atimeMs)), new Date(Number(st.mtimeMs)));
    } else {
      fs.chmodSync(to, Number(st.mode) & 0o7777);
      setTimesNs(to, st.atimeNs, st.mtimeNs);
    }
  };
  walk('');
}

/** below keeps the entries of a tree description at or below `rel` (re-keyed relative to it), or outside it. */
function part(d: Map<string, EntryDesc>, rel: string, keep: 'inside' | 'outside'): Map<string, EntryDesc> {
  const key = rel
    .split('/')
    .map((c) => Buffer.from(c).toString('hex'))
    .join('/');
  const out = new Map<string, EntryDesc>();
  for (const [k, v] of d) {
    const inside = k === key || k.startsWith(`${key}/`);
    if (keep === 'inside' && inside) out.set(k === key ? '' : k.slice(key.length + 1), v);
    if (keep === 'outside' && !inside) out.set(k, v);
  }
  return out;
}

beforeAll(async () => {
  h = await startHarness();
  depId = await createDeployment(api, sdlFor('exec sleep 100000', { volumes: ['data', 'logs'] }));
  await waitRunning(api, depId);
  data = volumeDir(h.dataDir, depId, 'data');
  logs = volumeDir(h.dataDir, depId, 'logs');
  writeA();
  copies = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-prestore-'));
  cpA(data, path.join(copies, 'A-data'));
  cpA(logs, path.join(copies, 'A-logs'));
  snapA = await snapshotReady(api, depId, 'A');
  mutateToB();
  cpA(data, path.join(copies, 'B-data'));
  cpA(logs, path.join(copies, 'B-logs'));
});

afterAll(async () => {
  await h?.close();
  if (copies) fs.rmSync(copies, { recursive: true, force: true });
});

/** Each test starts from state B. */
beforeEach(async () => {
  await h.idle();
  for (const [live, copy] of [
    [data, 'B-data'],
    [logs, 'B-logs'],
  ] as const) {
    fs.rmSync(live, { recursive: true, force: true });
    cpA(path.join(copies, copy), live);
  }
});

const A = (v: 'data' | 'logs') => describeTree(path.join(copies, `A-${v}`));
const B = (v: 'data' | 'logs') => describeTree(path.join(copies, `B-${v}`));
const restoreUrl = () => `/api/v1/deployments/${depId}/snapshots/${snapA.id}/restore`;

describe('restore of selected paths in place (replace)', () => {
  it('makes the chosen paths exactly the snapshot, merges nested ones, and leaves everything else byte for byte', async () => {
    const r = await api('POST', restoreUrl(), {
      paths: ['app/data/db/', 'app/data/db/rows', 'app/logs/app.log', 'app/data/gone-later'],
      safetySnapshot: false,
    });
    expectStatus(r, 202, 'restore paths');
    expect(r.body.restore.paths).toEqual(['app/data/db', 'app/logs/app.log', 'app/data/gone-later']);
    expect(r.body.restore.mode).toBe('replace');
    expect(r.body.restore.into).toBeNull();
    const done = await waitRestore(api, depId, r.body.restore.id);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(done.downtimeMs).toBeGreaterThanOrEqual(0);

    const now = describeTree(data);
    // Chosen: exactly A, every attribute (the folder lost what was added since).
    expect(compareTrees(part(A('data'), 'db', 'inside'), part(now, 'db', 'inside'))).toEqual([]);
    expect(fs.existsSync(path.join(data, 'db/added-since.txt'))).toBe(false);
    expect(compareTrees(part(A('data'), 'gone-later', 'inside'), part(now, 'gone-later', 'inside'))).toEqual([]);
    expect(compareTrees(part(A('logs'), 'app.log', 'inside'), part(describeTree(logs), 'app.log', 'inside'))).toEqual([]);
    // Everything else: exactly B, the volume folders' own times included.
    const outsideB = part(part(B('data'), 'db', 'outside'), 'gone-later', 'outside');
    expect(compareTrees(outsideB, part(part(now, 'db', 'outside'), 'gone-later', 'outside'))).toEqual([]);
    expect(compareTrees(part(B('logs'), 'app.log', 'outside'), part(describeTree(logs), 'app.log', 'outside'))).toEqual([]);
    // The old data is removed in the background once the restore is complete.
    await waitFor(() => stagingDirs(h.dataDir, depId).length === 0, 15_000, 'the staging directory to go');
  });

  it('a full restore (no paths) is unchanged: every volume is the snapshot, paths and mode are null', async () => {
    const r = await api('POST', restoreUrl(), { safetySnapshot: false });
    expectStatus(r, 202, 'full restore');
    expect([r.body.restore.paths, r.body.restore.mode, r.body.restore.into]).toEqual([null, null, null]);
    expect((await waitRestore(api, depId, r.body.restore.id)).status).toBe('completed');
    expect(compareTrees(A('data'), describeTree(data))).toEqual([]);
    expect(compareTrees(A('logs'), describeTree(logs))).toEqual([]);
  });
});

describe('restore of selected paths alongside', () => {
  it('writes them under into, changes nothing else, stops nothing and takes no safety snapshot', async () => {
    const r = await api('POST', restoreUrl(), {
      paths: ['app/data/db', 'app/data/config.json'],
      mode: 'alongside',
      into: 'restored/2026-12-05/',
    });
    expectStatus(r, 202, 'restore alongside');
    expect([r.body.restore.mode, r.body.restore.into]).toEqual(['alongside', 'restored/2026-12-05/']);
    const done = await waitRestore(api, depId, r.body.restore.id);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect([done.safetySnapshotId, done.downtimeMs]).toEqual([null, null]);
    const into = path.join(data, 'restored/2026-12-05');
    expect(fs.readdirSync(into).sort()).toEqual(['config.json', 'db']);
    expect(compareTrees(part(A('data'), 'db', 'inside'), describeTree(path.join(into, 'db')))).toEqual([]);
    expect(compareTrees(part(A('data'), 'config.json', 'inside'), describeTree(path.join(into, 'config.json')))).toEqual([]);
    // The live data is B, but for the new folder (and the root's times, which a new folder changes).
    const now = part(describeTree(data), 'restored', 'outside');
    now.delete('');
    const b = B('data');
    b.delete('');
    expect(compareTrees(b, now)).toEqual([]);
    expect(fs.readdirSync(path.join(data, 'restored'))).toEqual(['2026-12-05']);
    expect(compareTrees(B('logs'), describeTree(logs))).toEqual([]);
  });

  it('fills an existing empty folder', async () => {
    fs.mkdirSync(path.join(data, 'empty'));
    const r = await api('POST', restoreUrl(), { paths: ['app/data/keep'], mode: 'alongside', into: 'empty' });
    expectStatus(r, 202, 'restore into an empty folder');
    expect((await waitRestore(api, depId, r.body.restore.id)).status).toBe('completed');
    expect(fs.readFileSync(path.join(data, 'empty/keep/notes.txt'), 'utf8')).toBe('A notes');
  });
});

describe('the restore plan of selected paths', () => {
  it('says for each path whether it is replaced or created, and what a replaced folder loses', async () => {
    const q = ['paths=app/data/db', 'paths=app/data/gone-later', 'paths=app/logs'].join('&');
    const r = await api('GET', `/api/v1/deployments/${depId}/snapshots/${snapA.id}/restore-plan?${q}`);
    expectStatus(r, 200, 'plan');
    const plan = r.body.plan;
    expect([plan.mode, plan.into, plan.refusal]).toEqual(['replace', null, null]);
    expect(plan.volumes.map((v: { to: string }) => v.to)).toEqual(['app.data', 'app.logs']);
    expect(plan.paths).toEqual([
      {
        path: 'app/data/db',
        volume: 'app.data',
        target: 'app/data/db',
        type: 'dir',
        action: 'replace',
        live: 'dir',
        removed: ['app/data/db/added-since.txt'],
        removedMore: false,
      },
      {
        path: 'app/data/gone-later',
        volume: 'app.data',
        target: 'app/data/gone-later',
        type: 'dir',
        action: 'create',
        live: null,
        removed: [],
        removedMore: false,
      },
      {
        path: 'app/logs',
        volume: 'app.logs',
        target: 'app/logs',
        type: 'dir',
        action: 'replace',
        live: 'dir',
        removed: ['app/logs/other.log'],
        removedMore: false,
      },
    ]);
    const along = await api(
      'GET',
      `/api/v1/deployments/${depId}/snapshots/${snapA.id}/restore-plan?paths=app/data/db&mode=alongside&into=r1`,
    );
    expectStatus(along, 200, 'plan alongside');
    expect(along.body.plan.paths.map((p: { target: string; action: string }) => [p.target, p.action])).toEqual([
      ['app/data/r1/db', 'create'],
    ]);
    fs.mkdirSync(path.join(data, 'r1'));
    fs.writeFileSync(path.join(data, 'r1/x'), 'x');
    const full = await api(
      'GET',
      `/api/v1/deployments/${depId}/snapshots/${snapA.id}/restore-plan?paths=app/data/db&mode=alongside&into=r1`,
    );
    expect(full.body.plan.refusal.code).toBe('INTO_NOT_EMPTY');
  });
});

describe('invalid selections: a stable code, nothing done', () => {
  /** A folder outside the volume, for symlinks to point at (removed with the copies). */
  const outside = () => fs.mkdtempSync(path.join(copies, 'outside-'));
  const cases: Array<[string, () => unknown, number, string, string?]> = [
    ['an empty list', () => ({ paths: [] }), 400, 'RESTORE_PATHS_EMPTY'],
    ['a path the snapshot lacks', () => ({ paths: ['app/data/db', 'app/data/nope/x.txt'] }), 404, 'PATH_NOT_FOUND', 'app/data/nope/x.txt'],
    ['a volume the snapshot lacks', () => ({ paths: ['app/cache/x'] }), 404, 'PATH_NOT_FOUND', 'app/cache'],
    ['a path with ".."', () => ({ paths: ['app/data/../logs'] }), 400, 'INVALID_PATH'],
    ['the root', () => ({ paths: ['/'] }), 400, 'INVALID_PATH'],
    ['mode without paths', () => ({ mode: 'replace' }), 400, 'INVALID_RESTORE_MODE'],
    ['alongside without into', () => ({ paths: ['app/data/db'], mode: 'alongside' }), 400, 'INVALID_RESTORE_MODE'],
    ['into with replace', () => ({ paths: ['app/data/db'], into: 'x' }), 400, 'INVALID_RESTORE_MODE'],
    [
      'alongside across volumes',
      () => ({ paths: ['app/data/db', 'app/logs/app.log'], mode: 'alongside', into: 'x' }),
      400,
      'INVALID_RESTORE_MODE',
    ],
    ['into with ".."', () => ({ paths: ['app/data/db'], mode: 'alongside', into: 'a/../../b' }), 400, 'INTO_UNSAFE'],
    ['an absolute into', () => ({ paths: ['app/data/db'], mode: 'alongside', into: '/tmp/x' }), 400, 'INTO_UNSAFE'],
    [
      'into through a symlink',
      () => {
        fs.symlinkSync(outside(), path.join(data, 'out'));
        return { paths: ['app/data/db'], mode: 'alongside', into: 'out/restored' };
      },
      400,
      'INTO_UNSAFE',
    ],
    ['into a file', () => ({ paths: ['app/data/db'], mode: 'alongside', into: 'config.json' }), 409, 'INTO_NOT_EMPTY'],
    ['into a folder that is not empty', () => ({ paths: ['app/data/db'], mode: 'alongside', into: 'keep' }), 409, 'INTO_NOT_EMPTY'],
    [
      'a symlink where a folder leading to the path is',
      () => {
        fs.rmSync(path.join(data, 'db'), { recursive: true });
        fs.symlinkSync(outside(), path.join(data, 'db'));
        return { paths: ['app/data/db/rows/1.txt'] };
      },
      409,
      'RESTORE_PATH_BLOCKED',
    ],
  ];
  for (const [what, body, status, code, named] of cases) {
    it(`${what}: ${status} ${code}`, async () => {
      const before = (await api('GET', `/api/v1/deployments/${depId}/restores`)).body.restores.length;
      const request = body();
      const liveBefore = describeTree(data);
      const r = await api('POST', restoreUrl(), request);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body.error.code).toBe(code);
      if (named) expect(r.body.error.message).toContain(named);
      expect((await api('GET', `/api/v1/deployments/${depId}/restores`)).body.restores.length).toBe(before);
      expect(compareTrees(liveBefore, describeTree(data))).toEqual([]);
    });
  }
});
