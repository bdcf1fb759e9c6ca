// Network suite: network mode (`kova control-plane` on PostgreSQL, `kova
// node`) measured as processes on this machine, the way test/helpers/network.ts
// starts them (the compiled CLI in dist/ when it is fresh, else the sources):
//
// 1. GET /api/v1/deployments/:id/snapshots through the control plane with
//    1,000 snapshots on one deployment, p50/p99 over sequential requests,
//    beside the all-in-one's figure for the same list (the service suite's
//    measurement). The snapshots are rows inserted into the node's own
//    journal while it runs: its triggers bump the deployment's version and
//    state sync carries them to the catalogue.
// 2. From `POST …/snapshots` answering 202 to the node starting the
//    snapshot (its job row's started_at in the node's journal), sequential
//    snapshots of a small volume.
// 3. GET /api/v1/deployments under wrk, against one replica, then against
//    two replicas at once (rates added). The replicas run with the rate
//    limit raised (--rate-limit 1000000): at the default, wrk would measure
//    429s.
// 4. One control plane with simulated nodes (bench/lib/sim-nodes.ts)
//    heartbeating and sending documents: its CPU, peak RSS, the request
//    rate, and PostgreSQL's load (pg_stat_database).
//
// Every figure is printed with the load average at the time: the machine may
// be shared. The bench process itself (the simulated nodes, wrk's results,
// the TCP links between node and replicas) runs on the same machine.
import { randomFillSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { newId } from '../../src/core/ids.js';
import { JobKind } from '../../src/services/context.js';
import { Paths } from '../../src/services/paths.js';
import { type Network, startNetwork } from '../../test/helpers/network.js';
import { serverKind } from '../../test/helpers/server-process.js';
import { type LatencyFigures, getBody, loadAverage, loadText, percentile, sequentialLatency, wrk, type WrkRun } from '../lib/latency.js';
import { cpuSeconds, memory } from '../lib/proc.js';
import { bytes } from '../lib/report.js';
import { type FleetFigures, KINDS, SimulatedFleet } from '../lib/sim-nodes.js';
import type { Suite, SuiteOptions } from '../lib/suite.js';
import { LATENCY_REQUESTS, LIST_SNAPSHOTS, SDL, allInOneListLatency, startAllInOne } from './service.js';

/** Defaults of a full run; --scale shrinks the counts and durations (not the 1,000 snapshots or the fleet's size). */
export const NETWORK_DEFAULTS = {
  listRequests: LATENCY_REQUESTS,
  snapshots: 100,
  /** Bytes in the volume of the snapshot-start deployment. */
  snapshotVolumeBytes: 8_000_000,
  wrkSeconds: 10,
  wrkConnections: 8,
  simNodes: 200,
  deploymentsPerNode: 20,
  heartbeatMs: 5000,
  stateEveryMs: 60_000,
  retention: 10,
  /** How long the simulated fleet is measured. */
  scaleSeconds: 300,
} as const;

const GOALS = { listP99Ms: 20, snapshotStartP50Ms: 100 } as const;

type Load = [number, number, number];

interface SnapshotStart {
  snapshots: number;
  /** From the 202 reaching the client to the node's job started_at (negative: the node started it before the answer arrived). */
  answerToStart: { p50Ms: number; p99Ms: number; minMs: number; maxMs: number };
  /** From sending the POST to started_at, and the POST's round trip. */
  postToStartP50Ms: number;
  postRoundTripP50Ms: number;
  load: Load;
}

interface Throughput {
  replicas: number;
  rps: number | null;
  runs: Array<Pick<WrkRun, 'url' | 'rps' | 'p99' | 'errors'>>;
  load: Load;
}

interface ScaleFigures {
  nodes: number;
  deploymentsPerNode: number;
  windowS: number;
  controlPlane: { cpuS: number; cpuPercentOfOneCore: number; peakRssBytes: number; peakRssInWindowBytes: number };
  requestsPerS: number;
  fleet: FleetFigures;
  onlineNodes: number;
  postgres: { transactionsPerS: number; tuplesWrittenPerS: number; databaseBytes: number };
  /** CPU seconds the bench process (the simulated fleet) used over the window: it shares the machine. */
  simulatorCpuS: number;
  load: Load;
}

interface NetworkResults {
  suite: 'network';
  startedAt: string;
  machine: Record<string, string | number>;
  scale: number;
  cli: 'dist' | 'source';
  list?: { controlPlane: LatencyFigures; allInOne: LatencyFigures; snapshots: number };
  snapshotStart?: SnapshotStart;
  throughput?: Throughput[];
  scaleRun?: ScaleFigures;
  errors: string[];
}

const ms = (x: number): string => `${x.toFixed(2)} ms`;

async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A JSON API call as `key` that must answer 2xx. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API responses, checked by use
async function call(base: string, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as { success?: boolean; error?: { code: string; message: string } };
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.error?.code ?? ''} ${json.error?.message ?? ''}`);
  return { status: res.status, json };
}

/** deploy creates a deployment through the control plane and waits until its node has it running. */
async function deploy(base: string, key: string, name: string): Promise<string> {
  const { json } = await call(base, key, 'POST', '/api/v1/deployments', { sdl: SDL, name });
  const id = json.deployment.id as string;
  await until(async () => {
    const d = (await call(base, key, 'GET', `/api/v1/deployments/${id}`)).json.deployment;
    return d.operation === null && d.status === 'active';
  }, `deployment ${name}`);
  return id;
}

/** 1. The snapshot list through the control plane, rows inserted into the node's journal. */
async function listThroughControlPlane(net: Network, key: string, requests: number): Promise<LatencyFigures> {
  const base = net.replicas[0]!.url;
  const dep = await deploy(base, key, 'bench-list');
  const journal = new Database(new Paths(net.nodes[0]!.dataDir).database);
  try {
    journal.pragma('busy_timeout = 10000');
    const insert = journal.prepare(
      `INSERT INTO snapshots (id, deployment_id, label, status, trigger, created_at, ready_at, engine_id, size_bytes, stored_bytes, files, consistency, freeze_ms)
       VALUES (?, ?, ?, 'ready', 'manual', ?, ?, ?, ?, ?, 100, 'frozen', 20)`,
    );
    const t0 = Date.now() - LIST_SNAPSHOTS * 1000;
    journal.transaction(() => {
      for (let i = 0; i < LIST_SNAPSHOTS; i++) {
        insert.run(newId('snap'), dep, `label-${i}`, t0 + i * 1000, t0 + i * 1000 + 500, newId('eng'), 1e9 + i, 1e6 + i);
      }
    })();
  } finally {
    journal.close();
  }
  const path = `/api/v1/deployments/${dep}/snapshots`;
  await until(
    async () => (await call(base, key, 'GET', path)).json.snapshots.length === LIST_SNAPSHOTS,
    `the control plane listing ${LIST_SNAPSHOTS} snapshots`,
  );
  return sequentialLatency(async () => {
    await getBody(`${base}${path}`, key);
  }, requests);
}

/** Fills a volume with `size` random bytes in 1 MB files. */
function fillVolume(dir: string, size: number): void {
  mkdirSync(dir, { recursive: true });
  const buf = Buffer.allocUnsafe(1_000_000);
  for (let i = 0, left = size; left > 0; i++, left -= buf.length) {
    randomFillSync(buf);
    writeFileSync(join(dir, `f${i}.dat`), buf.subarray(0, Math.min(left, buf.length)));
  }
}

/** 2. From 202 to the node's job starting, over `count` sequential snapshots. */
async function snapshotStart(net: Network, key: string, count: number): Promise<SnapshotStart> {
  const base = net.replicas[0]!.url;
  const dep = await deploy(base, key, 'bench-snap');
  const paths = new Paths(net.nodes[0]!.dataDir);
  fillVolume(paths.volume(dep, { service: 'db', volume: 'data' }), NETWORK_DEFAULTS.snapshotVolumeBytes);
  const journal = new Database(paths.database, { readonly: true });
  journal.pragma('busy_timeout = 10000');
  const startedAt = journal.prepare(`SELECT started_at FROM jobs WHERE kind = ? AND json_extract(payload, '$.snapshotId') = ?`);
  const answerToStart: number[] = [];
  const postToStart: number[] = [];
  const roundTrip: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const sent = Date.now();
      const { status, json } = await call(base, key, 'POST', `/api/v1/deployments/${dep}/snapshots`, {});
      const answered = Date.now();
      if (status !== 202) throw new Error(`POST …/snapshots answered ${status}, not 202`);
      const id = json.snapshot.id as string;
      const started = await until(
        async () => (startedAt.get(JobKind.Snapshot, id) as { started_at: number | null } | undefined)?.started_at ?? null,
        `the node starting snapshot ${id}`,
      );
      answerToStart.push(started - answered);
      postToStart.push(started - sent);
      roundTrip.push(answered - sent);
      const done = await until(async () => {
        const s = (await call(base, key, 'GET', `/api/v1/deployments/${dep}/snapshots/${id}`)).json.snapshot;
        return s.status === 'creating' ? null : (s as { status: string; error: string | null });
      }, `snapshot ${id}`);
      if (done.status !== 'ready') throw new Error(`snapshot ${id} ended ${done.status}: ${done.error}`);
    }
  } finally {
    journal.close();
  }
  const sorted = (xs: number[]): number[] => xs.slice().sort((a, b) => a - b);
  const a = sorted(answerToStart);
  return {
    snapshots: count,
    answerToStart: { p50Ms: percentile(a, 50), p99Ms: percentile(a, 99), minMs: a[0] ?? NaN, maxMs: a.at(-1) ?? NaN },
    postToStartP50Ms: percentile(sorted(postToStart), 50),
    postRoundTripP50Ms: percentile(sorted(roundTrip), 50),
    load: loadAverage(),
  };
}

/**
 * 3. wrk against the first `replicas` replicas at once. Each replica first
 * answers a few requests unmeasured: the first request with a key costs it a
 * scrypt verification (then cached), which is not what throughput measures.
 */
async function throughput(net: Network, key: string, replicas: number, seconds: number): Promise<Throughput> {
  for (const r of net.replicas.slice(0, replicas)) for (let i = 0; i < 20; i++) await call(r.url, key, 'GET', '/api/v1/deployments');
  const runs = await Promise.all(
    net.replicas
      .slice(0, replicas)
      .map((r) => wrk(`${r.url}/api/v1/deployments`, key, { threads: 1, connections: NETWORK_DEFAULTS.wrkConnections, seconds })),
  );
  const missing = runs.find((r) => r.rps === null);
  if (missing) throw new Error(missing.output);
  return {
    replicas,
    rps: runs.reduce((a, r) => a + (r.rps ?? 0), 0),
    runs: runs.map(({ url, rps, p99, errors }) => ({ url, rps, p99, errors })),
    load: loadAverage(),
  };
}

interface PgStats {
  xacts: number;
  written: number;
  size: number;
}

async function pgStats(client: pg.Client, db: string): Promise<PgStats> {
  await client.query('SELECT pg_stat_clear_snapshot()');
  const r = await client.query<{ xacts: string; written: string; size: string }>(
    `SELECT xact_commit + xact_rollback AS xacts, tup_inserted + tup_updated + tup_deleted AS written, pg_database_size($1) AS size
       FROM pg_stat_database WHERE datname = $1`,
    [db],
  );
  const row = r.rows[0];
  if (!row) throw new Error(`no pg_stat_database row for ${db}`);
  return { xacts: Number(row.xacts), written: Number(row.written), size: Number(row.size) };
}

/** 4. One control plane, a simulated fleet, measured over `windowS` seconds. */
async function scaleRun(windowS: number): Promise<ScaleFigures> {
  const d = NETWORK_DEFAULTS;
  const net = await startNetwork({ replicas: 1, nodes: 0, nodeTimeout: '30s' });
  let fleet: SimulatedFleet | null = null;
  const client = new pg.Client({ connectionString: net.databaseUrl });
  try {
    await client.connect();
    const cp = net.replicas[0]!;
    const pid = cp.child.pid!;
    console.log(`creating ${d.simNodes} nodes × ${d.deploymentsPerNode} deployments in the catalogue …`);
    fleet = await SimulatedFleet.create({
      url: cp.url,
      databaseUrl: net.databaseUrl,
      nodes: d.simNodes,
      deploymentsPerNode: d.deploymentsPerNode,
      sdl: SDL,
      heartbeatMs: d.heartbeatMs,
      stateEveryMs: d.stateEveryMs,
      retention: d.retention,
    });
    console.log('hello and first documents …');
    await fleet.start();
    await sleep(Math.min(10_000, d.heartbeatMs)); // every node heartbeating, polls open
    fleet.reset();
    const dbName = new URL(net.databaseUrl).pathname.slice(1);
    const pg0 = await pgStats(client, dbName);
    const cpu0 = cpuSeconds(pid);
    const sim0 = process.cpuUsage();
    const t0 = performance.now();
    let peakInWindow = 0;
    console.log(`measuring for ${windowS} s …`);
    while (performance.now() - t0 < windowS * 1000) {
      peakInWindow = Math.max(peakInWindow, memory(pid).rssBytes);
      await sleep(1000);
    }
    const elapsedS = (performance.now() - t0) / 1000;
    const cpuS = cpuSeconds(pid) - cpu0;
    const simUsage = process.cpuUsage(sim0);
    const figures = fleet.figures();
    const pg1 = await pgStats(client, dbName);
    const nodes = (await call(cp.url, net.adminKey, 'GET', '/api/v1/nodes')).json.nodes as Array<{ status: string }>;
    const requests = KINDS.reduce((a, k) => a + figures.byKind[k].requests, 0);
    return {
      nodes: d.simNodes,
      deploymentsPerNode: d.deploymentsPerNode,
      windowS: elapsedS,
      controlPlane: {
        cpuS,
        cpuPercentOfOneCore: (100 * cpuS) / elapsedS,
        peakRssBytes: memory(pid).peakRssBytes,
        peakRssInWindowBytes: peakInWindow,
      },
      requestsPerS: requests / elapsedS,
      fleet: figures,
      onlineNodes: nodes.filter((n) => n.status === 'online').length,
      postgres: {
        transactionsPerS: (pg1.xacts - pg0.xacts) / elapsedS,
        tuplesWrittenPerS: (pg1.written - pg0.written) / elapsedS,
        databaseBytes: pg1.size,
      },
      simulatorCpuS: (simUsage.user + simUsage.system) / 1e6,
      load: loadAverage(),
    };
  } finally {
    await fleet?.stop();
    await client.end().catch(() => undefined);
    await net.close();
  }
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function summary(r: NetworkResults): string {
  const rows: string[][] = [];
  const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
  if (r.list) {
    const { controlPlane: cp, allInOne: aio } = r.list;
    rows.push([
      `GET …/snapshots, ${r.list.snapshots} snapshots, control plane`,
      `p50 ${ms(cp.p50Ms)}, p99 ${ms(cp.p99Ms)} (${cp.requests} sequential)`,
      `p99 < ${GOALS.listP99Ms} ms`,
      verdict(cp.p99Ms < GOALS.listP99Ms),
      loadText(cp.load),
    ]);
    rows.push([
      `GET …/snapshots, ${r.list.snapshots} snapshots, all-in-one`,
      `p50 ${ms(aio.p50Ms)}, p99 ${ms(aio.p99Ms)} (${aio.requests} sequential)`,
      `p99 < ${GOALS.listP99Ms} ms`,
      verdict(aio.p99Ms < GOALS.listP99Ms),
      loadText(aio.load),
    ]);
  }
  if (r.snapshotStart) {
    const s = r.snapshotStart;
    rows.push([
      `202 → node starts the snapshot (${s.snapshots} snapshots; < 0: started before the 202 arrived)`,
      `p50 ${ms(s.answerToStart.p50Ms)}, p99 ${ms(s.answerToStart.p99Ms)} (POST → start p50 ${ms(s.postToStartP50Ms)}, POST round trip p50 ${ms(s.postRoundTripP50Ms)})`,
      `p50 < ${GOALS.snapshotStartP50Ms} ms`,
      verdict(s.answerToStart.p50Ms < GOALS.snapshotStartP50Ms),
      loadText(s.load),
    ]);
  }
  for (const t of r.throughput ?? []) {
    const each = t.runs
      .map((x) => `${(x.rps ?? 0).toFixed(0)}/s p99 ${x.p99 ?? 'n/a'}${x.errors ? ` ${x.errors} errors` : ''}`)
      .join(' + ');
    rows.push([
      `GET /api/v1/deployments under wrk, ${t.replicas} replica${t.replicas > 1 ? 's' : ''}`,
      `${(t.rps ?? 0).toFixed(0)} requests/s (${each})`,
      '',
      '',
      loadText(t.load),
    ]);
  }
  if (r.scaleRun) {
    const s = r.scaleRun;
    const f = s.fleet.byKind;
    const name = `${s.nodes} nodes × ${s.deploymentsPerNode} deployments, ${s.windowS.toFixed(0)} s`;
    rows.push([
      `${name}: control plane CPU`,
      `${s.controlPlane.cpuS.toFixed(1)} s user+sys (${s.controlPlane.cpuPercentOfOneCore.toFixed(1)}% of one core)`,
      '',
      '',
      loadText(s.load),
    ]);
    rows.push([
      `${name}: control plane RSS`,
      `peak ${bytes(s.controlPlane.peakRssBytes)} (${bytes(s.controlPlane.peakRssInWindowBytes)} in the window)`,
      '',
      '',
      '',
    ]);
    rows.push([
      `${name}: requests`,
      `${s.requestsPerS.toFixed(1)}/s: ${KINDS.map((k) => `${k} ${f[k].requests} (p99 ${ms(f[k].p99Ms)}${f[k].errors ? `, ${f[k].errors} errors` : ''}${f[k].inFlight ? `, ${f[k].inFlight} open at the end` : ''})`).join(', ')}; ${s.fleet.documents} documents, ${s.fleet.acked} acknowledged; ${s.onlineNodes} nodes online`,
      '',
      '',
      '',
    ]);
    rows.push([
      `${name}: PostgreSQL`,
      `${s.postgres.transactionsPerS.toFixed(1)} transactions/s, ${s.postgres.tuplesWrittenPerS.toFixed(1)} tuples written/s, database ${bytes(s.postgres.databaseBytes)}`,
      '',
      '',
      '',
    ]);
    rows.push([`${name}: simulator (this process)`, `${s.simulatorCpuS.toFixed(1)} s CPU`, '', '', '']);
  }
  return table(['figure', 'value', 'goal', '', 'load average (1/5/15 min)'], rows);
}

export const networkSuite: Suite = {
  description:
    'network mode: snapshot list through the control plane, 202 → snapshot start, API throughput with 1 and 2 replicas (wrk), a control plane under 200 simulated nodes',
  async run(opts: SuiteOptions): Promise<number> {
    const d = NETWORK_DEFAULTS;
    const scaled = (n: number, min: number): number => Math.max(min, Math.round(n * opts.scale));
    const windowS = opts.minutes !== undefined ? opts.minutes * 60 : scaled(d.scaleSeconds, 15);
    mkdirSync(opts.workDir, { recursive: true });
    const results: NetworkResults = {
      suite: 'network',
      startedAt: new Date().toISOString(),
      machine: { hostname: hostname(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryBytes: totalmem() },
      scale: opts.scale,
      cli: serverKind(),
      errors: [],
    };
    if (results.cli === 'source')
      console.warn('warning: dist/ is older than the sources: the processes run from source (tsx); run `npm run build` first');
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
      console.log(`\n== ${what} (${loadText()})`);
      try {
        return await fn();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        console.error(`${what} failed: ${message}`);
        results.errors.push(`${what}: ${message}`);
        return undefined;
      }
    };

    const requests = scaled(d.listRequests, 200);
    const allInOne = await step('all-in-one: GET …/snapshots with 1,000 snapshots', async () => {
      const aio = await startAllInOne(join(opts.workDir, 'network-aio'));
      try {
        return await allInOneListLatency(aio, requests);
      } finally {
        await aio.close(opts.keep);
      }
    });
    if (allInOne) console.log(`all-in-one: p50 ${ms(allInOne.p50Ms)}, p99 ${ms(allInOne.p99Ms)} (${loadText(allInOne.load)})`);

    const net = await step('network: PostgreSQL, 2 replicas, 1 node', () => startNetwork({ replicas: 2, nodes: 1, nodeTimeout: '30s' }));
    if (net) {
      try {
        const key = await net.userKey('bench');
        const cp = await step('control plane: GET …/snapshots with 1,000 snapshots', () => listThroughControlPlane(net, key, requests));
        if (cp) {
          console.log(`control plane: p50 ${ms(cp.p50Ms)}, p99 ${ms(cp.p99Ms)} (${loadText(cp.load)})`);
          if (allInOne) results.list = { controlPlane: cp, allInOne, snapshots: LIST_SNAPSHOTS };
        }
        const start = await step('202 → snapshot start', () => snapshotStart(net, key, scaled(d.snapshots, 10)));
        if (start) {
          results.snapshotStart = start;
          console.log(`202 → start: p50 ${ms(start.answerToStart.p50Ms)}, p99 ${ms(start.answerToStart.p99Ms)} (${loadText(start.load)})`);
        }
        const seconds = scaled(d.wrkSeconds, 3);
        for (const replicas of [1, 2]) {
          const t = await step(`wrk GET /api/v1/deployments, ${replicas} replica(s), ${seconds} s`, () =>
            throughput(net, key, replicas, seconds),
          );
          if (t) {
            (results.throughput ??= []).push(t);
            console.log(`${(t.rps ?? 0).toFixed(0)} requests/s (${loadText(t.load)})`);
          }
        }
      } finally {
        await net.close();
      }
    }

    const s = await step(`scale: ${d.simNodes} simulated nodes × ${d.deploymentsPerNode} deployments for ${windowS} s`, () =>
      scaleRun(windowS),
    );
    if (s) results.scaleRun = s;

    console.log('\n## Network benchmark\n');
    console.log(summary(results));
    if (results.errors.length > 0) console.log(`\nfailed steps:\n${results.errors.map((e) => `  ${e}`).join('\n')}`);
    const out = join(opts.workDir, `network-results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(out, JSON.stringify(results, null, 2));
    console.log(`\nresults: ${out}`);
    return results.errors.length > 0 ? 1 : 0;
  },
};
