/**
 * A full disk under a real `kova serve` (process runtime) and the `kova repo`
 * commands, on a small loop-mounted ext4 filesystem. The server runs with
 * node --unhandled-rejections=strict, so any rejection left unhandled on the
 * way ends it and fails the suite. What must hold:
 *
 * - a snapshot that runs out of space ends `failed` with DISK_FULL's message,
 *   removes the packs it wrote (the free space comes back), and the server
 *   keeps answering; /healthz says degraded and /metrics counts it;
 * - a restore whose safety snapshot runs out of space fails cleanly, nothing
 *   stopped; a restore whose staged copy cannot fit is refused with 507
 *   INSUFFICIENT_SPACE before any service stops;
 * - with not a byte left, requests answer (202, or 503 STORAGE_UNAVAILABLE
 *   when the database cannot write) and the server stays up;
 * - once space is freed, a snapshot succeeds and /healthz is ok again;
 * - `kova repo snapshot` and `kova repo restore` on a full disk exit 1 with a
 *   one-line error, and the snapshot leaves no pack behind.
 *
 * Needs root (mount). Runs against dist/: `npm run build` first.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployment, getSnapshot, startSnapshot, volumeDir, waitRestore, waitRunning, waitSnapshot } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type KovaServer, killServices, leaderStat, serviceLeaders, startKova } from './helpers/server-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'kova.js');
const isRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;

let work = '';
let mnt = '';
let img = '';
let mounted = false;
let server: KovaServer | null = null;
let dataDir = '';

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
}

function free(): number {
  const st = fs.statfsSync(mnt);
  return st.bavail * st.bsize;
}

/** writeRandom writes `bytes` of incompressible data to `file`, 8 MiB at a time. */
function writeRandom(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < bytes; done += 8 * MiB) fs.writeSync(fd, randomBytes(Math.min(8 * MiB, bytes - done)));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fillDisk writes `file` until the filesystem has no byte left. */
function fillDisk(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let chunk = 8 * MiB; chunk >= 512; chunk >>= 1) {
      const zeros = Buffer.alloc(chunk);
      for (;;) {
        try {
          fs.writeSync(fd, zeros);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function filesBelow(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kova(...args: string[]): Result {
  const r = spawnSync(process.execPath, ['--unhandled-rejections=strict', BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLineError(r: Result, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.split('\n').filter((l) => l.trim().length > 0);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^kova: /);
  expect(lines[0]).toMatch(pattern);
}

async function healthz(): Promise<{ status: string; reasons: string[]; freeBytes: number }> {
  const res = await fetch(`${server!.url}/healthz`);
  expect(res.status).toBe(200);
  return (await res.json()) as { status: string; reasons: string[]; freeBytes: number };
}

function expectAlive(): void {
  expect(server!.child.exitCode, `the server died; output:\n${server!.output().slice(-4000)}`).toBeNull();
  expect(server!.child.signalCode).toBeNull();
}

describe.skipIf(!isRoot)('a full disk (loop-mounted ext4; needs root)', () => {
  let depId = '';
  let small = '';
  let big = '';

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-diskfull-'));
    img = path.join(work, 'fs.img');
    mnt = path.join(work, 'mnt');
    fs.mkdirSync(mnt);
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 300 * MiB);
    sh('mkfs.ext4', ['-q', '-m', '0', img]);
    sh('mount', ['-o', 'loop', img, mnt]);
    mounted = true;
    dataDir = path.join(mnt, 'kova');
    // A short gc interval: the batched gc after a delete comes within seconds.
    server = await startKova({ dataDir, nodeArgs: ['--unhandled-rejections=strict'], args: ['--gc-interval', '1s'] });
  }, 120_000);

  afterAll(async () => {
    await server?.kill();
    if (dataDir) killServices(dataDir);
    if (mounted) {
      const r = spawnSync('umount', [mnt]);
      if (r.status !== 0) spawnSync('umount', ['-l', mnt]);
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }, 60_000);

  const leaderPid = (): number => serviceLeaders(dataDir, depId).find((l) => l.service === 'app')!.pid;

  it('a snapshot that runs out of space fails with DISK_FULL, removes its packs, and the server keeps answering', async () => {
    const api = server!.api;
    depId = await createDeployment(api, sdlFor('sleep 100000'));
    await waitRunning(api, depId);
    const vol = volumeDir(dataDir, depId);
    writeRandom(path.join(vol, 'small.bin'), MiB);
    small = (await waitSnapshot(api, depId, await startSnapshot(api, depId, 'small'))).id;
    writeRandom(path.join(vol, 'big.bin'), 100 * MiB);
    const s1 = await waitSnapshot(api, depId, await startSnapshot(api, depId, 'big'));
    expect(s1.status, JSON.stringify(s1)).toBe('ready');
    big = s1.id;

    // New data as large as the old: it cannot fit next to it.
    writeRandom(path.join(vol, 'big.bin'), 100 * MiB);
    const repoDir = path.join(dataDir, 'repos', depId);
    const packsBefore = filesBelow(path.join(repoDir, 'packs'));
    const freeBefore = free();
    const failed = await waitSnapshot(api, depId, await startSnapshot(api, depId, 'too-big'), 180_000);
    expect(failed.status, JSON.stringify(failed)).toBe('failed');
    expect(failed.error).toMatch(/^the disk holding the repository is full: \d+ bytes free$/);
    expectAlive();

    // What it wrote is gone: same packs, no temp file, the space is back.
    expect(filesBelow(path.join(repoDir, 'packs'))).toEqual(packsBefore);
    expect(filesBelow(path.join(repoDir, 'tmp'))).toEqual([]);
    expect(Math.abs(free() - freeBefore)).toBeLessThan(4 * MiB);

    const h = await healthz();
    expect(h.status).toBe('degraded');
    expect(h.reasons.join('; ')).toMatch(/a write to the repository failed for lack of space/);
    const metricsToken = fs.readFileSync(path.join(dataDir, 'metrics.token'), 'utf8').trim();
    const metrics = await (await fetch(`${server!.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text();
    expect(metrics).toMatch(/^kova_disk_full_total\{where="repository"\} 1$/m);
    expect(metrics).toMatch(/^kova_data_free_bytes \d+$/m);
  }, 400_000);

  it('a restore whose safety snapshot runs out of space fails cleanly, with the service never stopped', async () => {
    const api = server!.api;
    const pid = leaderPid();
    const r = await api('POST', `/api/v1/deployments/${depId}/snapshots/${small}/restore`, { safetySnapshot: true });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const done = await waitRestore(api, depId, r.body.restore.id as string, 180_000);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(
      /^the safety snapshot failed, nothing was changed: the disk holding the repository is full: \d+ bytes free$/,
    );
    expectAlive();
    expect(leaderPid()).toBe(pid);
    expect(leaderStat(serviceLeaders(dataDir, depId).find((l) => l.service === 'app')!)).not.toBeNull();
    expect(fs.readdirSync(path.join(dataDir, 'volumes', depId)).filter((n) => n.startsWith('.restore-'))).toEqual([]);
  }, 400_000);

  it('a restore that cannot fit is refused with 507 before any service stops', async () => {
    const api = server!.api;
    const pid = leaderPid();
    const before = await api('GET', `/api/v1/deployments/${depId}/restores`);
    const r = await api('POST', `/api/v1/deployments/${depId}/snapshots/${big}/restore`, { safetySnapshot: false });
    expect(r.status, JSON.stringify(r.body)).toBe(507);
    expect(r.body.error.code).toBe('INSUFFICIENT_SPACE');
    expect(r.body.error.message).toMatch(/^not enough free space for the restore: it needs \d+ bytes, the disk has \d+ bytes free$/);
    const after = await api('GET', `/api/v1/deployments/${depId}/restores`);
    expect(after.body.restores).toHaveLength(before.body.restores.length);
    expect(leaderPid()).toBe(pid);
    expectAlive();
  }, 120_000);

  it('with not a byte left, requests answer 202 or 503 and the server stays up', async () => {
    const api = server!.api;
    const filler = path.join(mnt, 'filler');
    fillDisk(filler);
    try {
      for (let i = 0; i < 5; i++) {
        const r = await api('POST', `/api/v1/deployments/${depId}/snapshots`, { label: `no-room-${i}` });
        expect([202, 503], JSON.stringify(r.body)).toContain(r.status);
        if (r.status === 503) expect(r.body.error.code).toBe('STORAGE_UNAVAILABLE');
        else expect((await waitSnapshot(api, depId, r.body.snapshot.id as string, 120_000)).status).toBe('failed');
        expect((await api('GET', `/api/v1/deployments/${depId}/snapshots`)).status).toBe(200);
        expectAlive();
      }
      expect((await healthz()).status).toBe('degraded');
    } finally {
      fs.rmSync(filler, { force: true });
    }
  }, 400_000);

  it('once space is freed, a snapshot succeeds and /healthz is ok again', async () => {
    const api = server!.api;
    const freeBefore = free();
    const del = await api('DELETE', `/api/v1/deployments/${depId}/snapshots/${big}`);
    expect(del.status, JSON.stringify(del.body)).toBeLessThan(300);
    await waitFor(
      async () => (await api('GET', `/api/v1/deployments/${depId}/snapshots/${big}`)).status === 404 || null,
      120_000,
      'the snapshot to be deleted',
    );
    // Its 100 MiB come back with the batched gc, one gc interval after the delete.
    await waitFor(async () => free() > freeBefore + 50 * MiB || null, 120_000, 'the batched gc to reclaim the space');
    const id = await startSnapshot(api, depId, 'after');
    const s = await waitSnapshot(api, depId, id, 180_000);
    expect(s.status, JSON.stringify(s)).toBe('ready');
    expect((await getSnapshot(api, depId, id)).status).toBe('ready');
    const h = await healthz();
    expect(h.reasons).toEqual([]);
    expect(h.status).toBe('ok');
    expectAlive();
  }, 400_000);

  it('kova repo snapshot and kova repo restore on a full disk: exit 1, one line, no partial packs', async () => {
    await server?.stop();
    server = null;
    killServices(dataDir);
    const src = path.join(work, 'cli-src');
    fs.mkdirSync(src);
    writeRandom(path.join(src, 'data.bin'), free() + 40 * MiB);

    // The repository on the full disk: the snapshot does not fit.
    const repo = path.join(mnt, 'cli-repo');
    expect(kova('repo', 'init', repo).code).toBe(0);
    const freeBefore = free();
    const snap = kova('repo', 'snapshot', repo, src);
    expectOneLineError(snap, /^kova: the disk holding the repository is full: \d+ bytes free$/);
    expect(snap.stdout).toBe('');
    expect(filesBelow(path.join(repo, 'packs'))).toEqual([]);
    expect(filesBelow(path.join(repo, 'index'))).toEqual([path.join(repo, 'index', '.keep')]);
    expect(Math.abs(free() - freeBefore)).toBeLessThan(4 * MiB);

    // A repository elsewhere, restored onto the full disk: refused before writing.
    const outside = path.join(work, 'cli-repo-outside');
    expect(kova('repo', 'init', outside).code).toBe(0);
    const made = kova('repo', 'snapshot', outside, src);
    expect(made.code, made.stderr).toBe(0);
    const target = path.join(mnt, 'restored');
    const res = kova('repo', 'restore', outside, made.stdout.trim(), target);
    expectOneLineError(res, /^kova: not enough free space for the restore: it needs \d+ bytes, the disk has \d+ bytes free$/);
    expect(fs.existsSync(target)).toBe(false);
  }, 400_000);
});

describe.skipIf(isRoot)('a full disk', () => {
  it.skip('needs root to loop-mount a small filesystem', () => undefined);
});
