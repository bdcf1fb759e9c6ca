// Service suite: the snapshot freeze window and the restore downtime for
// volumes of about 100 MB, 1 GB and 2 GB (both must stay flat as the volume
// grows), and the latency and throughput of listing 1,000 snapshots.
//
// It runs the real service in this process (SQLite, engine, process runtime)
// on a scratch data dir and drives it over HTTP. A service keeps appending to
// its volume during every snapshot and restore, as a live database would.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { buildApp } from '../../src/api/app.js';
import { startLocalControl } from '../../src/app/local-control.js';
import { VERSION } from '../../src/app/server.js';
import { wireServices } from '../../src/services/wire.js';
import { systemClock } from '../../src/core/clock.js';
import { Store } from '../../src/db/store.js';
import { ProcessRuntime } from '../../src/runtime/process/process-runtime.js';
import { Paths } from '../../src/services/paths.js';
import { type LatencyFigures, getBody, sequentialLatency, wrk } from '../lib/latency.js';
import { bytes } from '../lib/report.js';
import type { Suite, SuiteOptions } from '../lib/suite.js';

const MB = 1_000_000;
const SIZES = [100 * MB, 1000 * MB, 2000 * MB];
const FILE = 4 * 1024 * 1024;
const SMALL_FILES = 300;
export const LIST_SNAPSHOTS = 1000;
export const LATENCY_REQUESTS = 2000;

/** A deployment with one service appending to its one persistent volume (`db`, volume `data`). */
export const SDL = `version: "2.0"
services:
  db:
    image: none
    command: ["sh", "-c"]
    args:
      - 'i=0; while true; do i=$((i+1)); echo "row $i" >> wal.log; sleep 0.01; done'
    params:
      storage:
        data:
          mount: /data
profiles:
  compute:
    db:
      resources:
        storage:
          - size: 1Gi
          - name: data
            size: 4Gi
            attributes:
              persistent: true
deployment:
  db:
    local:
      profile: db
      count: 1
`;

interface SizeResult {
  volumeBytes: number;
  firstSnapshotMs: number;
  firstFreezeMs: number | null;
  secondSnapshotMs: number;
  secondFreezeMs: number | null;
  restoreMs: number;
  downtimeMs: number | null;
}

function fillVolume(dir: string, size: number, seed: number): void {
  mkdirSync(join(dir, 'tables'), { recursive: true });
  const buf = Buffer.allocUnsafe(FILE);
  let written = 0;
  for (let i = 0; written < size; i++) {
    randomFillSync(buf);
    buf.writeUInt32LE(seed, 0);
    const n = Math.min(FILE, size - written);
    writeFileSync(join(dir, 'tables', `t${i}.dat`), buf.subarray(0, n));
    written += n;
  }
  mkdirSync(join(dir, 'conf'), { recursive: true });
  for (let i = 0; i < SMALL_FILES; i++)
    writeFileSync(join(dir, 'conf', `c${i}.json`), JSON.stringify({ i, seed, note: 'x'.repeat(i % 200) }));
}

/** A running all-in-one service (SQLite, engine, process runtime) on a scratch data dir, served over HTTP. */
export interface AllInOne {
  url: string;
  token: string;
  paths: Paths;
  store: Store;
  services: ReturnType<typeof wireServices>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- API responses, checked by use
  call(method: string, path: string, body?: unknown): Promise<any>;
  /** Polls `fn` every 100 ms until it returns a value (30 minutes at most). */
  until<T>(fn: () => Promise<T | null>, what: string): Promise<T>;
  /** Stops serving, ends the services it started and (unless `keep`) removes the data dir. */
  close(keep: boolean): Promise<void>;
}

/**
 * startAllInOne runs the service in this process on a fresh `dataDir`, with
 * a user key for `bench`: as `kova serve` does, the API is the control
 * plane's (local-control.ts) in front of the node's services.
 */
export async function startAllInOne(dataDir: string): Promise<AllInOne> {
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const paths = new Paths(dataDir);
  const store = Store.open(paths.database);
  const runtime = new ProcessRuntime({ stateDir: paths.runtimeDir, stopTimeoutMs: 5000 });
  const log = pino({ level: 'silent' });
  const services = wireServices({ store, runtime, paths, clock: systemClock, log, minSnapshotIntervalMs: 1000, jobConcurrency: 2 });
  services.ctx.jobs.start();
  const local = await startLocalControl(services, { clock: systemClock, log, version: VERSION });
  const app = await buildApp({
    ...local.deps,
    metrics: services.ctx.metrics,
    clock: systemClock,
    config: { minSnapshotIntervalMs: 1000, rateLimitPerMinute: 100_000_000, runtime: 'process', version: VERSION },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const user = await local.catalogue.ensureUser('bench', 'user', systemClock.now());
  const token = (await local.deps.keys.create(user.id, 'bench')).token;
  const call: AllInOne['call'] = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = (await res.json()) as { success: boolean; error?: { message: string } };
    if (!json.success) throw new Error(`${method} ${path}: ${json.error?.message}`);
    return json;
  };
  const until = async <T>(fn: () => Promise<T | null>, what: string): Promise<T> => {
    const deadline = Date.now() + 30 * 60_000;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return {
    url,
    token,
    paths,
    store,
    services,
    call,
    until,
    async close(keep) {
      await local.stop();
      await app.close();
      await local.closeCatalogue();
      await services.ctx.jobs.stop();
      for (const id of await runtime.deployments()) await runtime.remove(id).catch(() => undefined);
      await runtime.close();
      store.close();
      if (!keep) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ListFigures extends LatencyFigures {
  snapshots: number;
  /** The path measured (GET), and the URL of the server it was measured on. */
  path: string;
  url: string;
}

/**
 * allInOneListLatency: `GET /api/v1/deployments/:id/snapshots` on a
 * deployment with 1,000 ready snapshots (rows inserted directly: listing
 * reads only the database, so taking them for real adds nothing), over
 * `requests` sequential requests after 50 unmeasured ones.
 */
export async function allInOneListLatency(aio: AllInOne, requests = LATENCY_REQUESTS): Promise<ListFigures> {
  const { call, services, store } = aio;
  const { deployment } = await call('POST', '/api/v1/deployments', { sdl: SDL, name: 'bench-list' });
  await services.ctx.jobs.idle();
  store.tx(() => {
    for (let i = 0; i < LIST_SNAPSHOTS; i++) {
      const s = services.snapshots.insertRow(deployment.id, i % 3 === 0 ? 'automatic' : 'manual', i % 3 === 0 ? null : `label-${i}`);
      store.snapshots.update(s.id, {
        status: 'ready',
        sizeBytes: 1e9 + i,
        storedBytes: 1e6 + i,
        files: 100,
        consistency: 'frozen',
        freezeMs: 20,
        readyAt: Date.now(),
      });
    }
  });
  const path = `/api/v1/deployments/${deployment.id}/snapshots`;
  // The rows reach the catalogue the API reads through the local node's state documents.
  await aio.until(
    async () => ((await call('GET', path)).snapshots.length === LIST_SNAPSHOTS ? true : null),
    'the catalogue to list the snapshots',
  );
  const figures = await sequentialLatency(async () => {
    await getBody(`${aio.url}${path}`, aio.token);
  }, requests);
  return { ...figures, snapshots: LIST_SNAPSHOTS, path, url: aio.url };
}

export const serviceSuite: Suite = {
  description: 'freeze window and restore downtime for 100 MB, 1 GB and 2 GB volumes; GET …/snapshots latency with 1,000 snapshots',
  async run(opts: SuiteOptions): Promise<number> {
    const aio = await startAllInOne(join(opts.workDir, 'service-run'));
    const { call, until, paths, services } = aio;
    const snapshot = async (dep: string): Promise<{ ms: number; freezeMs: number | null }> => {
      const t0 = performance.now();
      const { snapshot: s } = await call('POST', `/api/v1/deployments/${dep}/snapshots`, {});
      const done = await until(async () => {
        const r = (await call('GET', `/api/v1/deployments/${dep}/snapshots/${s.id}`)).snapshot;
        return r.status === 'creating' ? null : r;
      }, 'snapshot');
      if (done.status !== 'ready') throw new Error(`snapshot failed: ${done.error}`);
      return { ms: performance.now() - t0, freezeMs: done.freezeMs };
    };

    const results: SizeResult[] = [];
    let code = 0;
    try {
      for (const target of SIZES.map((s) => Math.round(s * opts.scale))) {
        console.log(`\n== volume of ${bytes(target)}`);
        const { deployment } = await call('POST', '/api/v1/deployments', { sdl: SDL, name: `bench-${target}` });
        await until(
          async () => ((await call('GET', `/api/v1/deployments/${deployment.id}`)).deployment.operation === null ? true : null),
          'deploy',
        );
        const volume = paths.volume(deployment.id, { service: 'db', volume: 'data' });
        fillVolume(volume, target, target);
        execFileSync('sync');
        const first = await snapshot(deployment.id);
        console.log(`first snapshot ${(first.ms / 1000).toFixed(1)} s, freeze ${first.freezeMs} ms`);
        const second = await snapshot(deployment.id);
        console.log(`second snapshot ${(second.ms / 1000).toFixed(1)} s, freeze ${second.freezeMs} ms`);
        const snaps = (await call('GET', `/api/v1/deployments/${deployment.id}/snapshots`)).snapshots as Array<{ id: string }>;
        const t0 = performance.now();
        const { restore } = await call('POST', `/api/v1/deployments/${deployment.id}/snapshots/${snaps[snaps.length - 1]!.id}/restore`, {
          safetySnapshot: false,
        });
        const done = await until(async () => {
          const r = (await call('GET', `/api/v1/deployments/${deployment.id}/restores/${restore.id}`)).restore;
          return r.status === 'completed' || r.status === 'failed' ? r : null;
        }, 'restore');
        if (done.status !== 'completed') throw new Error(`restore failed: ${done.error}`);
        const restoreMs = performance.now() - t0;
        console.log(`restore ${(restoreMs / 1000).toFixed(1)} s, downtime ${done.downtimeMs} ms`);
        results.push({
          volumeBytes: target,
          firstSnapshotMs: first.ms,
          firstFreezeMs: first.freezeMs,
          secondSnapshotMs: second.ms,
          secondFreezeMs: second.freezeMs,
          restoreMs,
          downtimeMs: done.downtimeMs,
        });
        await call('POST', `/api/v1/deployments/${deployment.id}/close`);
        await services.ctx.jobs.idle();
      }

      const list = await allInOneListLatency(aio);
      const { p50Ms: p50, p99Ms: p99 } = list;
      // The server runs in this process: wrk runs asynchronously so it keeps serving.
      const w = await wrk(`${aio.url}${list.path}`, aio.token, { threads: 2, connections: 16, seconds: 10 });
      const rps = w.rps;

      console.log('\n## Service benchmark\n');
      console.log('| volume | first snapshot | freeze | incremental snapshot | freeze | restore | downtime |');
      console.log('|---|---|---|---|---|---|---|');
      for (const r of results) {
        console.log(
          `| ${bytes(r.volumeBytes)} | ${(r.firstSnapshotMs / 1000).toFixed(1)} s | ${r.firstFreezeMs} ms | ${(r.secondSnapshotMs / 1000).toFixed(1)} s | ${r.secondFreezeMs} ms | ${(r.restoreMs / 1000).toFixed(1)} s | ${r.downtimeMs} ms |`,
        );
      }
      const worstFreeze = Math.max(...results.flatMap((r) => [r.firstFreezeMs ?? Infinity, r.secondFreezeMs ?? Infinity]));
      const worstDowntime = Math.max(...results.map((r) => r.downtimeMs ?? Infinity));
      const small = results[0]!;
      const big = results[results.length - 1]!;
      console.log(
        `\nfreeze: worst ${worstFreeze} ms (target < 250 ms) ${worstFreeze < 250 ? 'PASS' : 'MISS'}; ` +
          `largest/smallest volume ${((big.secondFreezeMs ?? 0) / Math.max(1, small.secondFreezeMs ?? 1)).toFixed(2)}x for ${(big.volumeBytes / small.volumeBytes).toFixed(0)}x the data`,
      );
      console.log(
        `downtime: worst ${worstDowntime} ms (target < 2000 ms) ${worstDowntime < 2000 ? 'PASS' : 'MISS'}; ` +
          `largest/smallest volume ${((big.downtimeMs ?? 0) / Math.max(1, small.downtimeMs ?? 1)).toFixed(2)}x`,
      );
      console.log(
        `GET …/snapshots with ${LIST_SNAPSHOTS} snapshots: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (target < 20 ms) ${p99 < 20 ? 'PASS' : 'MISS'} over ${LATENCY_REQUESTS} sequential requests`,
      );
      const wrkP99 = w.p99 ?? 'n/a';
      console.log(
        `sustained (wrk -t2 -c16 -d10s, same machine): ${rps === null ? 'n/a' : `${rps.toFixed(0)} requests/s, p99 ${wrkP99} under that load`}`,
      );
      if (rps === null) console.log(w.output);
      const out = join(opts.workDir, `service-results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(out, JSON.stringify({ results, list: { snapshots: LIST_SNAPSHOTS, p50, p99, rps } }, null, 2));
      console.log(`results: ${out}`);
    } catch (err) {
      console.error(err instanceof Error ? err.message : String(err));
      code = 1;
    } finally {
      await aio.close(opts.keep);
    }
    return code;
  },
};
