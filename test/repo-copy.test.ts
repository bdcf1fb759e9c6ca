/**
 * `kova repo copy` and repositories in S3 (s3rver on loopback, always
 * encrypted): round trip to S3 and back byte for byte, incremental copies
 * that send only new data, resume after a kill, what the bucket reveals,
 * wrong keys, damaged or deleted objects, and faults on the wire. The CLI
 * runs from dist/ (`npx tsc -p tsconfig.build.json` first).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_DEFAULTS, copySnapshots } from '../src/engine/repo/copy.js';
import { openRepository } from '../src/engine/repo/location.js';
import { Repository } from '../src/engine/repo/repository.js';
import { compareTrees, describeTree, prng, tempDir } from '../src/engine/testing.js';
import { type Proxy, type S3Server, objectFiles, startProxy, startS3 } from './helpers/s3.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/kova.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let s3: S3Server;
let work: string;
let keyFile: string;
let seq = 0;
const s3url = (): string => `s3://${s3.bucket}/copy${process.pid}-${++seq}`;

function kovaAsync(env: Record<string, string>, ...args: string[]): { child: ChildProcess; result: Promise<Result> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, result };
}

function kova(env: Record<string, string>, ...args: string[]): Promise<Result> {
  return kovaAsync(env, ...args).result;
}

/** A volume: a few small files with a marker, and larger random files. */
function makeVolume(dir: string, seed: number, bigFiles = 2, bigSize = 1024 * 1024): void {
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/secret.txt'), 'PLAINTEXT-CANARY-do-not-leak\n'.repeat(50));
  fs.chmodSync(path.join(dir, 'etc/secret.txt'), 0o600);
  fs.symlinkSync('secret.txt', path.join(dir, 'etc/link'));
  for (let i = 0; i < bigFiles; i++) fs.writeFileSync(path.join(dir, `data${i}.bin`), prng(seed * 100 + i, bigSize));
}

async function localRepo(packSize = 256 * 1024): Promise<{ dir: string; repo: Repository }> {
  const dir = path.join(work, `local-${++seq}`);
  const repo = await Repository.init(dir, { packSize });
  return { dir, repo };
}

beforeAll(async () => {
  s3 = await startS3();
  work = tempDir('kova-copy-');
  keyFile = path.join(work, 'master.key');
  fs.writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
});
afterAll(async () => {
  await s3?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const env = (): Record<string, string> => ({ ...s3.env(), KOVA_OFFSITE_KEY_FILE: keyFile });

describe('kova repo copy', () => {
  it('copies to S3 and back, restores byte for byte, and sends only new data the next time', async () => {
    const vol = path.join(work, 'vol-a');
    makeVolume(vol, 1);
    const { dir, repo } = await localRepo();
    const first = await repo.snapshot(vol);
    const dst = s3url();

    const proxy = await startProxy(s3.endpoint);
    try {
      const r1 = await kova({ ...env(), KOVA_S3_ENDPOINT: proxy.endpoint }, 'repo', 'copy', dir, dst, '--json');
      expect(r1.code, r1.stderr).toBe(0);
      const rep1 = JSON.parse(r1.stdout) as { copied: string[]; bytesSent: number; rawBytesSent: number };
      expect(rep1.copied).toEqual([first.id]);
      expect(proxy.uploaded).toBeGreaterThanOrEqual(rep1.bytesSent);

      // Restore from S3 with the CLI: identical content and metadata.
      const target = path.join(work, 'restored-a');
      const rr = await kova(env(), 'repo', 'restore', dst, first.id.slice(0, 8), target);
      expect(rr.code, rr.stderr).toBe(0);
      expect(compareTrees(describeTree(vol), describeTree(target))).toEqual([]);

      // Change one file (1 MiB of new data), snapshot, copy again: only that goes up.
      fs.writeFileSync(path.join(vol, 'data1.bin'), prng(999, 1024 * 1024));
      const second = await repo.snapshot(vol, { parent: first.id });
      const before = proxy.uploaded;
      const r2 = await kova({ ...env(), KOVA_S3_ENDPOINT: proxy.endpoint }, 'repo', 'copy', dir, dst, '--json');
      expect(r2.code, r2.stderr).toBe(0);
      const rep2 = JSON.parse(r2.stdout) as { copied: string[]; present: string[]; rawBytesSent: number };
      expect(rep2.copied).toEqual([second.id]);
      expect(rep2.present).toEqual([first.id]);
      const uploaded = proxy.uploaded - before;
      expect(uploaded).toBeGreaterThan(second.stats.newBytes * 0.9);
      expect(uploaded).toBeLessThanOrEqual(second.stats.newBytes * 1.05);

      // list and stats on S3 through the CLI.
      const ls = await kova(env(), 'repo', 'list', dst, '--json');
      expect(ls.code, ls.stderr).toBe(0);
      expect((JSON.parse(ls.stdout) as { id: string }[]).map((s) => s.id)).toEqual([first.id, second.id]);
      const st = await kova(env(), 'repo', 'stats', dst, '--json');
      expect(st.code, st.stderr).toBe(0);
      expect((JSON.parse(st.stdout) as { snapshots: number }).snapshots).toBe(2);

      // S3 to local: a fresh directory gets both snapshots, restorable.
      const back = path.join(work, 'back');
      const r3 = await kova(env(), 'repo', 'copy', dst, back);
      expect(r3.code, r3.stderr).toBe(0);
      const t2 = path.join(work, 'restored-back');
      const rb = await kova({}, 'repo', 'restore', back, second.id, t2);
      expect(rb.code, rb.stderr).toBe(0);
      expect(compareTrees(describeTree(vol), describeTree(t2))).toEqual([]);
      const vb = await kova({}, 'repo', 'verify', back, '--read-data');
      expect(vb.code, vb.stdout).toBe(0);
    } finally {
      await proxy.close();
      await repo.close();
    }
  });

  it('leaves nothing readable in the bucket: no plaintext, no blob ids', async () => {
    const vol = path.join(work, 'vol-b');
    makeVolume(vol, 2, 1, 300 * 1024);
    const { repo } = await localRepo();
    await repo.snapshot(vol);
    const url = s3url();
    const dst = await openRepositoryOrInit(url);
    await copySnapshots(repo, dst);
    const index = await repo.reloadIndex();
    const ids = [...index.entries()].map(([id]) => id).concat([...index.packs.keys()]);
    const snaps = (await repo.listSnapshots()).map((s) => s.id);
    const files = objectFiles(s3).filter((f) => f.includes(`/${url.slice(`s3://${s3.bucket}/`.length)}/`));
    expect(files.length).toBeGreaterThan(4);
    const needles = ['PLAINTEXT-CANARY', ...ids, ...snaps, vol];
    for (const f of files) {
      const body = fs.readFileSync(f).toString('latin1') + f;
      for (const n of needles) expect(body.includes(n), `${f} contains ${n}`).toBe(false);
      // Neither in hex nor as the raw 32 bytes.
      for (const id of ids.slice(0, 50)) expect(body.includes(Buffer.from(id, 'hex').toString('latin1'))).toBe(false);
    }
    await dst.close();
    await repo.close();
  });

  it('refuses a wrong key and a missing key with one clear line', async () => {
    const url = s3url();
    const init = await kova(env(), 'repo', 'init', url);
    expect(init.code, init.stderr).toBe(0);
    const other = path.join(work, 'other.key');
    fs.writeFileSync(other, randomBytes(32).toString('hex'));
    const wrong = await kova({ ...env(), KOVA_OFFSITE_KEY_FILE: other }, 'repo', 'list', url);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr.trim()).toMatch(/^kova: .*key does not match/);
    const { KOVA_OFFSITE_KEY_FILE: _k, ...noKey } = env();
    const missing = await kova({ ...noKey, KOVA_OFFSITE_KEY_FILE: '' }, 'repo', 'list', url);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toMatch(/^kova: .*--key-file/);
    const bad = path.join(work, 'bad.key');
    fs.writeFileSync(bad, 'not a key');
    const badKey = await kova({ ...env(), KOVA_OFFSITE_KEY_FILE: bad }, 'repo', 'list', url);
    expect(badKey.stderr.trim()).toMatch(/^kova: key file .*32 random bytes/);
  });

  it('finds a damaged and a deleted object: verify reports them, restore refuses, a new copy repairs', async () => {
    const vol = path.join(work, 'vol-c');
    makeVolume(vol, 3, 3, 512 * 1024);
    const { dir, repo } = await localRepo(128 * 1024);
    const snap = await repo.snapshot(vol);
    await repo.close();
    const url = s3url();
    expect((await kova(env(), 'repo', 'copy', dir, url)).code).toBe(0);
    const packObjects = objectFiles(s3).filter((f) => f.includes(`/${url.slice(`s3://${s3.bucket}/`.length)}/packs/`));
    // How blobs fall into packs varies from run to run; the test needs three packs (it damages the second, deletes the third).
    expect(packObjects.length).toBeGreaterThanOrEqual(3);
    // Damage one object in the middle, delete another.
    const damaged = packObjects[1]!;
    const buf = fs.readFileSync(damaged);
    buf[Math.floor(buf.length / 2)]! ^= 0xff;
    fs.writeFileSync(damaged, buf);
    fs.rmSync(packObjects[2]!);
    for (const side of fs.readdirSync(path.dirname(packObjects[2]!))) {
      if (side.startsWith(path.basename(packObjects[2]!).replace('._S3rver_object', '._S3rver_')))
        fs.rmSync(path.join(path.dirname(packObjects[2]!), side));
    }

    const v = await kova(env(), 'repo', 'verify', url, '--read-data');
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/pack-missing|is listed in the index but missing/);
    expect(v.stdout).toMatch(/fails authentication/);
    const t = path.join(work, 'restored-c');
    const r = await kova(env(), 'repo', 'restore', url, snap.id, t);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^kova: .*(missing|fails authentication)/);

    const c = await kova(env(), 'repo', 'copy', dir, url, '--check-dest', '--json');
    expect(c.code, c.stderr).toBe(0);
    expect((JSON.parse(c.stdout) as { packsRepaired: number }).packsRepaired).toBe(2);
    const v2 = await kova(env(), 'repo', 'verify', url, '--read-data');
    expect(v2.code, v2.stdout + v2.stderr).toBe(0);
    const t2 = path.join(work, 'restored-c2');
    expect((await kova(env(), 'repo', 'restore', url, snap.id, t2)).code).toBe(0);
    expect(compareTrees(describeTree(vol), describeTree(t2))).toEqual([]);
  });

  it('resumes after a kill: nothing half-copied is visible, the rerun sends only what is missing', async () => {
    const vol = path.join(work, 'vol-d');
    makeVolume(vol, 4, 6, 2 * 1024 * 1024);
    const { dir, repo } = await localRepo(256 * 1024);
    const snap = await repo.snapshot(vol);
    await repo.close();
    const url = s3url();
    const proxy = await startProxy(s3.endpoint, { uploadDelayMs: 100 });
    try {
      const e = { ...env(), KOVA_S3_ENDPOINT: proxy.endpoint };
      // The copy creates the destination with the source's 256 KiB packs, so there are many uploads to interrupt.
      const total = snap.stats.storedBytes;
      const run = kovaAsync(e, 'repo', 'copy', dir, url);
      // Kill once about a third is up.
      const deadline = Date.now() + 60_000;
      const start = proxy.uploaded;
      while (proxy.uploaded - start < total / 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const seen = proxy.uploaded - start;
      run.child.kill('SIGKILL');
      const killed = await run.result;
      expect(killed.code).toBeNull();
      const sentBeforeKill = proxy.uploaded;
      expect(sentBeforeKill, `saw ${seen} after ${Date.now() - deadline + 60_000} ms`).toBeLessThan(total);

      const ls = await kova(e, 'repo', 'list', url, '--json');
      expect(ls.code, ls.stderr).toBe(0);
      expect(JSON.parse(ls.stdout)).toEqual([]);

      const again = await kova(e, 'repo', 'copy', dir, url, '--json');
      expect(again.code, again.stderr).toBe(0);
      const rep = JSON.parse(again.stdout) as { copied: string[]; rawBytesSent: number; bytesSent: number };
      expect(rep.copied).toEqual([snap.id]);
      // The rerun sent only what the first run had not indexed: together they sent the data once, plus at most
      // the packs the first run had uploaded since its last checkpoint and those still in flight.
      expect(rep.bytesSent).toBeLessThan(total * 0.9);
      const largestPack = Math.max(
        ...fs
          .readdirSync(path.join(dir, 'packs'), { recursive: true, withFileTypes: true })
          .filter((f) => f.isFile())
          .map((f) => fs.statSync(path.join(f.parentPath, f.name)).size),
      );
      const resendable = (COPY_DEFAULTS.checkpointPacks + COPY_DEFAULTS.packsInFlight + 1) * largestPack;
      expect(rep.bytesSent + sentBeforeKill).toBeLessThan(total + resendable);
      const t = path.join(work, 'restored-d');
      expect((await kova(e, 'repo', 'restore', url, snap.id, t)).code).toBe(0);
      expect(compareTrees(describeTree(vol), describeTree(t))).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('completes through 5xx answers, dropped uploads and truncated bodies, and reports only what is complete', async () => {
    const vol = path.join(work, 'vol-e');
    makeVolume(vol, 5, 3, 1024 * 1024);
    const { repo } = await localRepo(128 * 1024);
    const snap = await repo.snapshot(vol);
    const proxy: Proxy = await startProxy(s3.endpoint, { error: 0.1, dropUpload: 0.1, truncate: 0.1 }, 11);
    try {
      const url = s3url();
      const s3opts = {
        baseDelayMs: 5,
        maxDelayMs: 100,
        maxAttempts: 12,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      };
      const opts = { keyFile, s3Endpoint: proxy.endpoint, s3: s3opts };
      const { initRepository } = await import('../src/engine/repo/location.js');
      // Small packs: many uploads, so each kind of fault is met several times.
      const dst = await initRepository(url, opts, { packSize: 128 * 1024 });
      const rep = await copySnapshots(repo, dst);
      expect(rep.copied).toEqual([snap.id]);
      expect(proxy.faults).toBeGreaterThan(5);
      await dst.close();
      proxy.plan = {};
      // Read back directly (no proxy): complete and verified.
      const direct = await openRepository(url, { keyFile, s3Endpoint: s3.endpoint, s3: s3opts });
      const v = await direct.verify({ readData: true });
      expect(v.findings).toEqual([]);
      const t = path.join(work, 'restored-e');
      await direct.restore(snap.id, t);
      expect(compareTrees(describeTree(vol), describeTree(t))).toEqual([]);
      await direct.close();
    } finally {
      await proxy.close();
      await repo.close();
    }
  });
});

async function openRepositoryOrInit(url: string): Promise<Repository> {
  const { initRepository } = await import('../src/engine/repo/location.js');
  return initRepository(url, {
    keyFile,
    s3Endpoint: s3.endpoint,
    s3: { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
  });
}
