/**
 * Browsing, downloading and comparing snapshots through the control plane
 * (docs/network.md, "Reads of snapshots"): a real PostgreSQL, two replicas
 * and one node (process runtime) that reaches only replica B, so a request
 * on replica A is answered across replicas (the answer in chunks through
 * PostgreSQL) and one on B in-process. Answers are checked against the
 * files on the node's disk, and the two replicas' answers against each
 * other byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalogue } from '../src/control/catalogue.js';
import { openCatalogue } from '../src/control/store/index.js';
import { type Api, createDeployment, expectStatus, snapshotReady, volumeDir, waitRunning } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type Network, kova, startNetwork } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';

const run = postgresAvailable();
const SDL = sdlFor('while true; do sleep 1; done');
/** Larger than the relay's window of chunks (4 × 256 KiB), not a multiple of a chunk. */
const BIG_SIZE = 5 * 1024 * 1024 + 12_345;
const MANY = Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(3, '0')}.txt`);

let net: Network;
let catalogue: Catalogue;
let aliceKey: string;
let alice: [Api, Api];
let bob: Api;
let dep: string;
let snap1: string;
let snap2: string;
let src: string;
let big: Buffer;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-net-browse-'));

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** raw GETs `p` on replica `i` as `key`, with its status, headers and body bytes. */
function raw(i: number, p: string, key: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${net.replicas[i]!.url}${p}`, { headers: { authorization: `Bearer ${key}`, ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
  });
}

const json = (r: Raw) => JSON.parse(r.body.toString('utf8'));
const base = (s: string) => `/api/v1/deployments/${dep}/snapshots/${s}`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The node-side copy of every file under `dir`: relative path → type, size and SHA-256. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else out.set(r, `file ${st.size} ${sha(fs.readFileSync(path.join(dir, r)))}`);
    }
  };
  walk('');
  return out;
}

async function leftover(): Promise<{ reads: number; chunks: number }> {
  return catalogue.countReads();
}

describe.skipIf(!run)('network mode: snapshots read through the control plane', () => {
  beforeAll(async () => {
    net = await startNetwork({ replicas: 2, nodes: 1 });
    catalogue = await openCatalogue(net.databaseUrl);
    aliceKey = await net.userKey('alice');
    alice = [net.api(aliceKey, 0), net.api(aliceKey, 1)];
    bob = net.api(await net.userKey('bob'), 0);
    // The node reaches replica B only: its long poll and uploads go there.
    net.nodes[0]!.links[0]!.cut();

    dep = await createDeployment(alice[0], SDL, 'browse-me');
    await waitRunning(alice[0], dep);
    src = volumeDir(net.nodes[0]!.dataDir, dep);
    big = Buffer.alloc(BIG_SIZE);
    for (let i = 0; i < BIG_SIZE; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, Math.min(i, BIG_SIZE - 4));
    fs.writeFileSync(path.join(src, 'big.bin'), big);
    fs.mkdirSync(path.join(src, 'many'));
    for (const f of MANY) fs.writeFileSync(path.join(src, 'many', f), `${f}\n`);
    fs.writeFileSync(path.join(src, 'note.txt'), 'before\n');
    fs.writeFileSync(path.join(src, 'gone.txt'), 'removed later\n');
    snap1 = (await snapshotReady(alice[0], dep, 'one')).id;
    fs.writeFileSync(path.join(src, 'note.txt'), 'after, longer\n');
    fs.rmSync(path.join(src, 'gone.txt'));
    fs.writeFileSync(path.join(src, 'new.txt'), 'new\n');
    snap2 = (await snapshotReady(alice[1], dep, 'two')).id;
  }, 240_000);

  afterAll(async () => {
    await catalogue?.close();
    await net?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 120_000);

  it('lists a directory page by page and searches it, the same bytes through either replica', async () => {
    for (const i of [0, 1]) {
      const names: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = `?path=app/data/many&limit=10${cursor ? `&cursor=${cursor}` : ''}`;
        const r = await alice[i]!('GET', `${base(snap2)}/files${q}`);
        expectStatus(r, 200, `list page on replica ${i}`);
        expect(r.body.entries.length).toBeLessThanOrEqual(10);
        names.push(...r.body.entries.map((e: { name: string }) => e.name));
        cursor = r.body.cursor;
      } while (cursor);
      expect(names).toEqual(MANY);
    }
    const [a, b] = await Promise.all([0, 1].map((i) => raw(i, `${base(snap2)}/files?path=app/data`, aliceKey)));
    expect(a!.status).toBe(200);
    expect(a!.body.equals(b!.body)).toBe(true);
    expect(a!.headers['content-length']).toBe(b!.headers['content-length']);
    const root = json(a!).entries.map((e: { name: string; type: string; size: number }) => [e.name, e.type, e.size]);
    expect(root).toEqual([
      ['big.bin', 'file', BIG_SIZE],
      ['many', 'dir', 0],
      ['new.txt', 'file', 4],
      ['note.txt', 'file', 14],
    ]);
    const found = await alice[0]('GET', `${base(snap2)}/files?path=app/data/many&q=f02`);
    expectStatus(found, 200, 'search');
    expect(found.body.entries.map((e: { name: string }) => e.name)).toEqual(['f020.txt', 'f021.txt', 'f022.txt', 'f023.txt', 'f024.txt']);
  });

  it('compares with another snapshot and with the live volumes', async () => {
    const d = await alice[0]('GET', `${base(snap2)}/diff?against=${snap1}`);
    expectStatus(d, 200, 'diff');
    expect(d.body.changes.map((c: { path: string; change: string }) => [c.path, c.change])).toEqual([
      ['app/data/gone.txt', 'removed'],
      ['app/data/new.txt', 'added'],
      ['app/data/note.txt', 'modified'],
    ]);
    expect(d.body.cursor).toBeNull();
    const paged = await alice[1]('GET', `${base(snap2)}/diff?against=${snap1}&limit=1&change=added,removed`);
    expect(paged.body.changes.map((c: { path: string }) => c.path)).toEqual(['app/data/gone.txt']);
    expect(paged.body.cursor).toEqual(expect.any(String));

    fs.writeFileSync(path.join(src, 'live.txt'), 'only live\n');
    try {
      const live = await alice[0]('GET', `${base(snap2)}/diff?against=live`);
      expectStatus(live, 200, 'diff live');
      expect(live.body.changes.map((c: { path: string; change: string }) => [c.path, c.change])).toEqual([['app/data/live.txt', 'added']]);
    } finally {
      fs.rmSync(path.join(src, 'live.txt'));
    }
  });

  it('downloads a file of several MiB whole and by Range, byte for byte, through either replica', async () => {
    for (const i of [0, 1]) {
      const r = await raw(i, `${base(snap1)}/files/content?path=app/data/big.bin`, aliceKey);
      expect(r.status, r.body.toString().slice(0, 300)).toBe(200);
      expect(r.headers['content-length']).toBe(String(BIG_SIZE));
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.headers['accept-ranges']).toBe('bytes');
      expect(r.headers['content-disposition']).toBe("attachment; filename*=UTF-8''big.bin");
      expect(r.body.length).toBe(BIG_SIZE);
      expect(r.body.equals(big)).toBe(true);

      const part = await raw(i, `${base(snap1)}/files/content?path=app/data/big.bin`, aliceKey, { range: 'bytes=1000000-1999999' });
      expect(part.status).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes 1000000-1999999/${BIG_SIZE}`);
      expect(part.headers['content-length']).toBe('1000000');
      expect(part.body.equals(big.subarray(1_000_000, 2_000_000))).toBe(true);

      const outside = await raw(i, `${base(snap1)}/files/content?path=app/data/big.bin`, aliceKey, { range: `bytes=${BIG_SIZE}-` });
      expect(outside.status).toBe(416);
      expect(outside.headers['content-range']).toBe(`bytes */${BIG_SIZE}`);
      expect(json(outside).error.code).toBe('RANGE_NOT_SATISFIABLE');
    }
    expect(await leftover()).toEqual({ reads: 0, chunks: 0 });
  });

  it('downloads a directory as tar that extracts equal to the source', async () => {
    for (const i of [0, 1]) {
      const r = await raw(i, `${base(snap2)}/archive?path=app/data&format=tar`, aliceKey);
      expect(r.status, r.body.toString().slice(0, 300)).toBe(200);
      expect(r.headers['content-type']).toBe('application/x-tar');
      expect(r.headers['content-disposition']).toBe(`attachment; filename*=UTF-8''${snap2}-data.tar`);
      const out = fs.mkdtempSync(path.join(tmp, 'x-'));
      execFileSync('tar', ['-xf', '-', '-C', out], { input: r.body });
      expect(tree(path.join(out, 'data'))).toEqual(tree(src));
    }
    expect(await leftover()).toEqual({ reads: 0, chunks: 0 });
  });

  it('answers errors as the all-in-one does: 404 for another user and unknown paths, 400 for bad ones', async () => {
    expect((await bob('GET', `${base(snap1)}/files`)).body.error.code).toBe('DEPLOYMENT_NOT_FOUND');
    expect((await bob('GET', `${base(snap1)}/files/content?path=app/data/big.bin`)).status).toBe(404);
    expect((await bob('GET', `${base(snap1)}/diff?against=live`)).status).toBe(404);
    const cases: Array<[string, number, string]> = [
      [`${base('snap-aaaaaaaaaaaa')}/files`, 404, 'SNAPSHOT_NOT_FOUND'],
      [`${base(snap1)}/files?path=app/data/nothing`, 404, 'PATH_NOT_FOUND'],
      [`${base(snap1)}/files?path=app/data/note.txt`, 400, 'NOT_A_DIRECTORY'],
      [`${base(snap1)}/files/content?path=app/data/many`, 400, 'NOT_A_FILE'],
      [`${base(snap1)}/archive?path=app/data/note.txt`, 400, 'NOT_A_DIRECTORY'],
      [`${base(snap1)}/files?path=app/../data`, 400, 'INVALID_PATH'],
      [`${base(snap1)}/files?cursor=!!`, 400, 'INVALID_CURSOR'],
      [`${base(snap2)}/diff?against=snap-bbbbbbbbbbbb`, 404, 'SNAPSHOT_NOT_FOUND'],
    ];
    for (const [p, status, code] of cases) {
      const [a, b] = await Promise.all([raw(0, p, aliceKey), raw(1, p, aliceKey)]);
      expect([a!.status, json(a!).error.code], p).toEqual([status, code]);
      expect(a!.body.equals(b!.body), p).toBe(true);
    }
    expect(await leftover()).toEqual({ reads: 0, chunks: 0 });
  });

  it('serves `kova snapshots files|download|diff` through the control plane', async () => {
    const conn = ['--url', net.replicas[0]!.url, '--token', aliceKey];
    const files = JSON.parse(await kova(['snapshots', 'files', dep, snap2, 'app/data/many', '--json', ...conn]));
    expect(files.map((e: { name: string }) => e.name)).toEqual(MANY);
    const file = path.join(tmp, 'big-cli.bin');
    await kova(['snapshots', 'download', dep, snap1, 'app/data/big.bin', '-o', file, ...conn]);
    expect(fs.readFileSync(file).equals(big)).toBe(true);
    const changes = JSON.parse(await kova(['snapshots', 'diff', dep, snap2, '--against', snap1, '--json', ...conn]));
    expect(changes.map((c: { path: string }) => c.path)).toEqual(['app/data/gone.txt', 'app/data/new.txt', 'app/data/note.txt']);
  });

  it('leaves no rows behind when the user goes away mid-download', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = http.get(
        `${net.replicas[0]!.url}${base(snap1)}/files/content?path=app/data/big.bin`,
        { headers: { authorization: `Bearer ${aliceKey}` } },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    await waitFor(async () => (await leftover()).reads === 0 && (await leftover()).chunks === 0, 20_000, 'the read and its chunks deleted');
    // The node is not stuck: the next read is answered.
    expect((await alice[0]('GET', `${base(snap1)}/files?path=app/data`)).status).toBe(200);
  });

  it('answers 503 NODE_UNAVAILABLE while the node is stopped, leaving nothing behind', async () => {
    const node = net.nodes[0]!;
    node.child.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      // Taken by the frozen node's long poll, or not taken at all: either way a 503 once it is offline at the latest.
      const frozen = await alice[0]('GET', `${base(snap1)}/files?path=app/data`);
      expect(frozen.status).toBe(503);
      expect(frozen.body.error.code).toBe('NODE_UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(15_000);
      await net.waitNodes({ 'node-1': 'offline' });
      const t1 = Date.now();
      const offline = await alice[1]('GET', `${base(snap1)}/files/content?path=app/data/note.txt`);
      expect(offline.status).toBe(503);
      expect(offline.body.error.code).toBe('NODE_UNAVAILABLE');
      expect(Date.now() - t1).toBeLessThan(1_000);
      expect(await leftover()).toEqual({ reads: 0, chunks: 0 });
    } finally {
      node.child.kill('SIGCONT');
    }
    await net.waitNodes({ 'node-1': 'online' });
    expect((await alice[0]('GET', `${base(snap1)}/files?path=app/data`)).status).toBe(200);
  });
});
