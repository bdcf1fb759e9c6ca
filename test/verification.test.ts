/**
 * Scheduled verification (docs/api.md, "Verification"), driven by hand: a
 * ManualClock and SettingsService.tick() stand in for the server's timer.
 * Each deployment's repository is created with small packs first, so its
 * data spreads over many packs and every part of the rotation holds some.
 * Reads are counted on the storage itself; damage is real (bytes flipped in
 * a pack file), and the webhook goes to a real receiver on loopback.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { ManualClock } from '../src/core/clock.js';
import { formatBytes } from '../src/core/units.js';
import { PassThrough } from 'node:stream';
import { Repository } from '../src/engine/index.js';
import { packName } from '../src/engine/repo/master-index.js';
import { LocalStorage } from '../src/engine/storage/local-storage.js';
import { prng } from '../src/engine/testing.js';
import { packSlice } from '../src/engine/verify/verify.js';
import { STEPS_PER_PART } from '../src/services/verification-service.js';
import { createDeployment, expectError, expectOk, listSnapshots, takeSnapshot, writeVolume } from './helpers/api.js';
import { type Harness, startHarness } from './helpers/harness.js';

const DAY = 86_400_000;

let h: Harness;
let clock: ManualClock;
let receiver: http.Server;
let base: string;
const received: string[] = [];

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      received.push(Buffer.concat(parts).toString());
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  clock = new ManualClock(Date.UTC(2026, 3, 6, 8, 0, 0));
  h = await startHarness({ clock, minSnapshotIntervalMs: 1000, webhooks: { allowPrivate: true, random: () => 0 } });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await h.idle();
  const open = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.filter((d: { status: string }) => d.status === 'active');
  for (const d of open) expectOk(await h.api('POST', `/api/v1/deployments/${d.id}/close`));
  await h.idle();
  received.length = 0;
});
afterAll(async () => {
  await h?.close();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

/** A deployment with ~6 MB of random data in two snapshots, stored in packs of 256 KiB. */
async function deploymentWithData(): Promise<{ dep: string; snaps: string[] }> {
  const dep = await createDeployment(h);
  await (await Repository.init(h.paths.repo(dep), { packSize: 256 * 1024 })).close();
  writeVolume(h, dep, 'a.bin', prng(1, 4_000_000));
  const first = await takeSnapshot(h, dep, 'first');
  writeVolume(h, dep, 'b.bin', prng(2, 2_000_000));
  const second = await takeSnapshot(h, dep, 'second');
  return { dep, snaps: [first.id, second.id] };
}

function packsOnDisk(dep: string): string[] {
  const dir = path.join(h.paths.repo(dep), 'packs');
  return fs.readdirSync(dir).flatMap((sub) => fs.readdirSync(path.join(dir, sub)));
}

/** countPackReads records every whole-pack read the storage does. */
function countPackReads(): Map<string, number> {
  const reads = new Map<string, number>();
  const read = LocalStorage.prototype.read;
  vi.spyOn(LocalStorage.prototype, 'read').mockImplementation(function (this: LocalStorage, name: string) {
    if (name.startsWith('packs/')) {
      const id = name.slice(name.lastIndexOf('/') + 1);
      reads.set(id, (reads.get(id) ?? 0) + 1);
    }
    return read.call(this, name);
  });
  return reads;
}

const url = (dep: string) => `/api/v1/deployments/${dep}/verifications`;

async function summary(dep: string) {
  return expectOk(await h.api('GET', `/api/v1/deployments/${dep}/snapshot-settings`)).settings.verification as {
    enabled: boolean;
    interval: string;
    nextRunAt: string | null;
    nextPart: number;
    parts: number;
    lastVerification: { id: string; part: number | null; status: string; bytesRead: number; findings: number; startedAt: string } | null;
    lastFullCheckAt: string | null;
  };
}

/** runDue moves the clock to the next scheduled check, ticks, waits for it, and returns how many checks the tick queued. */
async function runDue(dep: string): Promise<number> {
  clock.set(Date.parse((await summary(dep)).nextRunAt!));
  const before = h.store.db.prepare('SELECT COUNT(*) AS n FROM verifications').get() as { n: number };
  h.services.settings.tick();
  await h.idle();
  const after = h.store.db.prepare('SELECT COUNT(*) AS n FROM verifications').get() as { n: number };
  return after.n - before.n;
}

describe('scheduled checks', () => {
  it('run at the interval, rotate through the parts, and read every pack exactly once per cycle', async () => {
    const { dep } = await deploymentWithData();
    const settings = expectOk(
      await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { verification: { interval: '10d' } }),
    ).settings;
    expect(settings.verification).toMatchObject({ enabled: true, interval: '10d', parts: 3, nextPart: 0 });
    // The first tick schedules the first check one interval (plus jitter) from now.
    const t0 = clock.now();
    expect(h.services.settings.tick()).toBe(0);
    const first = await summary(dep);
    expect(first).toMatchObject({ enabled: true, interval: '10d', parts: 3, nextPart: 0, lastVerification: null, lastFullCheckAt: null });
    const due = Date.parse(first.nextRunAt!);
    expect(due - t0).toBeGreaterThanOrEqual(10 * DAY);
    expect(due - t0).toBeLessThanOrEqual(10 * DAY + 60_000);
    // Not due yet: nothing runs.
    clock.set(due - 1000);
    expect(h.services.settings.tick()).toBe(0);

    const packs = packsOnDisk(dep);
    expect(packs.length).toBeGreaterThan(8);
    const reads = countPackReads();
    const starts: string[] = [];
    let bytes = 0;
    for (let part = 0; part < 3; part++) {
      expect(await runDue(dep)).toBe(1);
      const s = await summary(dep);
      expect(s.lastVerification).toMatchObject({ part, status: 'ok', findings: 0 });
      expect(s.nextPart).toBe((part + 1) % 3);
      starts.push(s.lastVerification!.startedAt);
      bytes += s.lastVerification!.bytesRead;
      // The packs of this part, and only they, have been read so far (on top of the earlier parts).
      const readNow = [...reads.keys()].sort();
      expect(readNow).toEqual(packs.filter((p) => packSlice(p, 3) <= part).sort());
      expect(s.lastFullCheckAt).toBe(part === 2 ? starts[0] : null);
    }
    // A cycle read every pack exactly once, every byte of them.
    expect([...reads.keys()].sort()).toEqual([...packs].sort());
    expect([...reads.values()].every((n) => n === 1)).toBe(true);
    const total = packs.reduce((n, p) => n + fs.statSync(path.join(h.paths.repo(dep), packName(p))).size, 0);
    expect(bytes).toBe(total);

    // The list, newest first, paged.
    const page1 = expectOk(await h.api('GET', `${url(dep)}?limit=2`));
    expect(page1.verifications.map((v: { part: number }) => v.part)).toEqual([2, 1]);
    const page2 = expectOk(await h.api('GET', `${url(dep)}?limit=2&cursor=${page1.cursor}`));
    expect(page2.verifications.map((v: { part: number }) => v.part)).toEqual([0]);
    expect(page2.cursor).toBeNull();
  });

  it('find a damaged pack in the check that covers it, mark the snapshots it reaches, and tell the webhook', async () => {
    const { dep, snaps } = await deploymentWithData();
    expectOk(await h.api('POST', '/api/v1/webhooks', { url: `${base}/hook`, events: ['verification.failed'] }), 201);
    expectOk(await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { verification: { interval: '10d' } }));
    h.services.settings.tick();
    // Damage a pack holding b.bin's data (only the second snapshot has it).
    const victim = await packOfFile(dep, 'b.bin');
    const file = path.join(h.paths.repo(dep), packName(victim));
    const buf = fs.readFileSync(file);
    buf[buf.length >> 2]! ^= 0xff;
    fs.writeFileSync(file, buf);

    const covering = packSlice(victim, 3);
    for (let part = 0; part <= covering; part++) {
      await runDue(dep);
      const s = await summary(dep);
      expect(s.lastVerification!.part).toBe(part);
      expect(s.lastVerification!.status).toBe(part === covering ? 'failed' : 'ok');
    }
    const s = await summary(dep);
    expect(s.lastVerification!.findings).toBeGreaterThan(0);
    expect(s.lastFullCheckAt).toBeNull();
    const list = await listSnapshots(h, dep);
    const byId = new Map(list.map((x) => [x.id, x as unknown as { damaged: boolean; damagedAt: string | null }]));
    expect(byId.get(snaps[1]!)).toMatchObject({ damaged: true, damagedAt: new Date(clock.now()).toISOString() });
    expect(byId.get(snaps[0]!)).toMatchObject({ damaged: false, damagedAt: null });
    const v = expectOk(await h.api('GET', url(dep))).verifications[0];
    expect(v.damagedSnapshots).toEqual([snaps[1]]);
    expect(v.problems[0].message).toMatch(victim);

    expect(await h.services.dispatcher.runDue()).toBe(1);
    expect(received).toHaveLength(1);
    const body = JSON.parse(received[0]!);
    expect(body).toMatchObject({
      event: 'verification.failed',
      deployment: { id: dep },
      data: { verification: { id: v.id, part: covering, parts: 3 }, damagedSnapshots: [{ id: snaps[1], label: 'second' }] },
    });
  });
});

/** packOfFile returns the pack holding the first data blob of the file `name` (anywhere) in the deployment's newest snapshot. */
async function packOfFile(dep: string, name: string): Promise<string> {
  const repo = await Repository.open(h.paths.repo(dep));
  try {
    const index = await repo.loadIndex();
    const newest = (await repo.listSnapshots()).sort((a, b) => b.time.localeCompare(a.time))[0]!;
    const find = async (tree: string): Promise<string | null> => {
      for (const n of await repo.readTree(tree)) {
        if (n.name.toString() === name) return n.content!.find((c) => c.id !== null)!.id!;
        if (n.subtree !== undefined) {
          const hit = await find(n.subtree);
          if (hit) return hit;
        }
      }
      return null;
    };
    return index.get((await find(newest.root.subtree!))!)!.pack;
  } finally {
    await repo.close();
  }
}

describe('checks on request', () => {
  it('check the next part now (202), or everything with full, one at a time', async () => {
    const { dep } = await deploymentWithData();
    const reads = countPackReads();
    const next = expectOk(await h.api('POST', url(dep), {}), 202).verification;
    expect(next).toMatchObject({ trigger: 'manual', part: 0, parts: 5, status: 'queued' });
    expectError(await h.api('POST', url(dep), { full: true }), 409, 'VERIFICATION_IN_PROGRESS');
    await h.idle();
    expect((await summary(dep)).nextPart).toBe(1);
    reads.clear();
    const full = expectOk(await h.api('POST', url(dep), { full: true }), 202).verification;
    expect(full.part).toBeNull();
    await h.idle();
    const s = await summary(dep);
    expect(s.lastVerification).toMatchObject({ id: full.id, status: 'ok', part: null });
    expect(s.lastFullCheckAt).toBe(s.lastVerification!.startedAt);
    expect([...reads.keys()].sort()).toEqual(packsOnDisk(dep).sort());
  });

  it('give way to a snapshot queued meanwhile between two steps, then finish', async () => {
    const { dep } = await deploymentWithData();
    const order: string[] = [];
    const verify = Repository.prototype.verify;
    let queuedSnapshot = false;
    vi.spyOn(Repository.prototype, 'verify').mockImplementation(async function (this: Repository, opts) {
      order.push('step');
      const r = await verify.call(this, opts);
      if (!queuedSnapshot) {
        queuedSnapshot = true;
        expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots`, { label: 'meanwhile' }), 202);
      }
      return r;
    });
    expectOk(await h.api('POST', url(dep), { full: true }), 202);
    await h.idle();
    const snap = (await listSnapshots(h, dep)).find((x) => x.label === 'meanwhile')!;
    expect(snap.status).toBe('ready');
    expect(order).toHaveLength(STEPS_PER_PART);
    const v = expectOk(await h.api('GET', url(dep))).verifications[0];
    expect(v.status).toBe('ok');
    // The snapshot ran after the first step and before the check was over.
    const jobs = h.store.db
      .prepare("SELECT kind FROM jobs WHERE deployment_id = ? AND kind IN ('verify', 'snapshot') ORDER BY id")
      .all(dep) as Array<{ kind: string }>;
    expect(jobs.map((j) => j.kind)).toEqual(['snapshot', 'snapshot', 'verify', 'snapshot', 'verify']);
  });

  it('refuse a verification interval outside the bounds', async () => {
    const dep = await createDeployment(h);
    expectError(
      await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { verification: { interval: '31d' } }),
      400,
      'INVALID_INTERVAL',
    );
    expectError(
      await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { verification: { interval: 'weekly' } }),
      400,
      'INVALID_INTERVAL',
    );
    const off = expectOk(await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { verification: { enabled: false } })).settings;
    expect(off.verification).toMatchObject({ enabled: false, interval: '7d', parts: 5, nextRunAt: null });
    expect((await summary(dep)).nextRunAt).toBeNull();
  });
});

/** kova runs the CLI in this process against the harness's API on loopback. */
async function kova(apiUrl: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (b: Buffer) => (o += b.toString()));
  err.on('data', (b: Buffer) => (e += b.toString()));
  const code = await main([...args, '--url', apiUrl, '--token', h.token], { out, err });
  return { code, out: o, err: e };
}

describe('the CLI', () => {
  it('kova snapshots verify checks now and kova verifications lists the checks', async () => {
    const { dep, snaps } = await deploymentWithData();
    // Pack ids are random, so part 1 of 5 (the packs whose id is 0 mod 5) can
    // be empty; add data until it holds a pack, so the check reads something.
    const partOne = () => packsOnDisk(dep).filter((p) => packSlice(p, 5) === 0);
    for (let i = 3; partOne().length === 0; i++) {
      expect(i).toBeLessThan(20);
      writeVolume(h, dep, `more-${i}.bin`, prng(i, 2_000_000));
      snaps.push((await takeSnapshot(h, dep, `more-${i}`)).id);
    }
    const partBytes = partOne().reduce((n, p) => n + fs.statSync(path.join(h.paths.repo(dep), packName(p))).size, 0);
    expect(partBytes).toBeGreaterThan(0);
    const app = await h.buildApp();
    const apiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const first = await kova(apiUrl, 'snapshots', 'verify', dep, '--wait');
      expect(first.err).toBe('');
      expect(first.code).toBe(0);
      expect(first.out).toMatch(
        new RegExp(`^ver-\\S+ ok: part 1/5, ${formatBytes(partBytes).replace('.', '\\.')} read, 0 problem\\(s\\)\n$`),
      );
      // Damage every pack: the full check fails, names the damaged snapshots and exits non-zero.
      for (const p of packsOnDisk(dep)) {
        const file = path.join(h.paths.repo(dep), packName(p));
        const buf = fs.readFileSync(file);
        buf[10]! ^= 0xff;
        fs.writeFileSync(file, buf);
      }
      const full = await kova(apiUrl, 'snapshots', 'verify', dep, '--full', '--wait');
      expect(full.code).toBe(1);
      expect(full.out).toMatch(/ failed: part all, /);
      expect(full.out).toContain(`damaged snapshots: ${snaps.join(', ')}`);
      expect(full.err).toMatch(/^kova: the check ver-\S+ failed: \d+ problem\(s\)\n$/);
      const list = await kova(apiUrl, 'verifications', dep);
      expect(list.code).toBe(0);
      const lines = list.out.split('\n');
      expect(lines[0]).toMatch(/^checks every 7d, one part of 5 at a time; next \(part 2\) /);
      expect(lines[1]).toMatch(/^last check: failed /);
      expect(lines[2]).toBe('not every byte has been read back yet');
      expect(lines[3]).toMatch(/^ID\s+STATUS\s+PART/);
      expect(lines[4]).toMatch(/^ver-\S+\s+failed\s+all\s/);
      expect(lines[5]).toMatch(/^ver-\S+\s+ok\s+1\/5\s/);
      const ls = await kova(apiUrl, 'snapshots', 'ls', dep);
      expect(ls.out).toMatch(/ready DAMAGED/);
    } finally {
      await app.close();
    }
  });
});
