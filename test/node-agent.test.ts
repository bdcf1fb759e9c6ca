/**
 * node-agent: a real `kova node` (process runtime) against a control plane
 * scripted here: a loopback HTTP server speaking the node protocol
 * (src/network/protocol.ts) that hands out the operations a test queues,
 * records results, heartbeats and state documents, and acknowledges them.
 *
 * Covered: a deployment created and running and a snapshot ready in the
 * state documents; the same operation handed out twice applied once; a
 * node killed (SIGKILL) during a snapshot and started again ends that
 * snapshot `failed` or `ready`, never stuck `creating`; a control plane that
 * goes away while automatic snapshots run: the node keeps taking them and
 * sends the backlog when the control plane is back; a refused token ends
 * the node with exit code 1.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  DeploymentState,
  HeartbeatRequest,
  Operation,
  OperationPayload,
  OperationResult,
  StateRequest,
} from '../src/network/protocol.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type KovaNode, startKovaNode } from './helpers/node-process.js';
import { seqScript } from './helpers/sequence.js';
import { killServices } from './helpers/server-process.js';

const TOKEN = 'kova_node_test_0123456789';
const USER = 'usr-aaaaaaaaaaaa';

/* ---- the scripted control plane ------------------------------------------------------------ */

class ScriptedPlane {
  readonly hellos: unknown[] = [];
  readonly heartbeats: HeartbeatRequest[] = [];
  readonly results: Array<{ id: string; result: OperationResult }> = [];
  /** Every document received, in order. */
  readonly documents: DeploymentState[] = [];
  /** Per deployment, the newest document (by version). */
  readonly latest = new Map<string, DeploymentState>();
  /** Operations handed out on every poll until their result comes (or until taken off by handOut). */
  private pending: Operation[] = [];
  private waiters: Array<() => void> = [];
  private server: http.Server | null = null;
  private port = 0;
  private seq = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const srv = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => srv.listen(this.port, '127.0.0.1', resolve));
    this.port = (srv.address() as AddressInfo).port;
    this.server = srv;
  }

  /** close stops answering: connections are refused until listen() again (on the same port). */
  async close(): Promise<void> {
    const srv = this.server;
    this.server = null;
    for (const w of this.waiters.splice(0)) w();
    if (!srv) return;
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }

  /** handOut queues an operation for the node; returns it. */
  handOut(payload: OperationPayload, id = `op-${++this.seq}`): Operation {
    const op: Operation = { id, userId: USER, payload, createdAt: Date.now() };
    this.pending.push(op);
    for (const w of this.waiters.splice(0)) w();
    return op;
  }

  async resultOf(opId: string, nth = 1): Promise<OperationResult> {
    const r = await waitFor(() => this.results.filter((x) => x.id === opId)[nth - 1], 60_000, `result ${nth} of ${opId}`);
    return r.result;
  }

  async stateWhere(depId: string, check: (d: DeploymentState) => boolean, what: string, timeoutMs = 60_000): Promise<DeploymentState> {
    return waitFor(
      () => {
        const d = this.latest.get(depId);
        return d && check(d) ? d : null;
      },
      timeoutMs,
      what,
    );
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : null;
    const send = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (req.headers.authorization !== `Bearer ${TOKEN}`)
      return send(401, { error: { code: 'UNAUTHORIZED', message: 'unknown node token' } });
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'POST' && url.pathname === '/node/v1/hello') {
      this.hellos.push(body);
      return send(200, { protocol: 1, nodeId: 'node-1', name: 'test-node', heartbeatIntervalMs: 300, nodeTimeoutMs: 5000 });
    }
    if (req.method === 'POST' && url.pathname === '/node/v1/heartbeat') {
      this.heartbeats.push(body as HeartbeatRequest);
      return send(200, {});
    }
    if (req.method === 'GET' && url.pathname === '/node/v1/operations') {
      if (this.pending.length === 0) {
        const wait = Math.min(Number(url.searchParams.get('waitMs') ?? 0), 1000);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return send(200, { operations: this.pending });
    }
    const m = /^\/node\/v1\/operations\/([^/]+)\/result$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      const id = decodeURIComponent(m[1]!);
      this.results.push({ id, result: body as OperationResult });
      this.pending = this.pending.filter((o) => o.id !== id);
      return send(200, {});
    }
    if (req.method === 'POST' && url.pathname === '/node/v1/state') {
      const docs = (body as StateRequest).deployments;
      for (const d of docs) {
        this.documents.push(d);
        const cur = this.latest.get(d.deployment.id);
        if (!cur || cur.version < d.version) this.latest.set(d.deployment.id, d);
      }
      return send(200, { acked: docs.map((d) => ({ deploymentId: d.deployment.id, version: d.version })) });
    }
    return send(404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
  }
}

/* ---- per-test node, plane and data directory, always cleaned up ------------------------------ */

let node: KovaNode | null = null;
let plane: ScriptedPlane | null = null;
const dataDirs: string[] = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && node) console.error(`kova node output:\n${node.output().slice(-4000)}`);
  await node?.kill();
  node = null;
  await plane?.close();
  plane = null;
  for (const d of dataDirs.splice(0)) {
    killServices(d);
    fs.rmSync(d, { recursive: true, force: true });
  }
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-node-it-'));
  dataDirs.push(d);
  return d;
}

async function startPlane(): Promise<ScriptedPlane> {
  plane = new ScriptedPlane();
  await plane.listen();
  return plane;
}

/** The snapshots in the node's own database (read-only), as its journal has them. */
function localSnapshots(dataDir: string, depId: string): Array<{ id: string; status: string; trigger: string }> {
  const db = new Database(path.join(dataDir, 'kova.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT id, status, trigger FROM snapshots WHERE deployment_id = ? ORDER BY created_at').all(depId) as Array<{
      id: string;
      status: string;
      trigger: string;
    }>;
  } finally {
    db.close();
  }
}

const running = (d: DeploymentState): boolean =>
  d.operation === null && d.services.length > 0 && d.services.every((s) => s.state === 'running');

async function deployRunning(p: ScriptedPlane, depId: string): Promise<void> {
  const op = p.handOut({ kind: 'deploy', deploymentId: depId, name: 'app', sdl: sdlFor(seqScript()) });
  expect(await p.resultOf(op.id)).toMatchObject({ ok: true, state: { deployment: { id: depId, userId: USER } } });
  await p.stateWhere(depId, running, 'the deployment running');
}

describe('kova node', () => {
  it('deploys and snapshots on request, applies a repeated operation once, and reports it all in state documents', async () => {
    const p = await startPlane();
    const dataDir = tempDir();
    node = startKovaNode({ dataDir, controlPlane: p.url, token: TOKEN });
    await waitFor(() => p.hellos.length > 0, 60_000, 'hello');
    expect(p.hellos[0]).toMatchObject({ protocol: 1, runtime: 'process' });

    const depId = 'dep-bbbbbbbbbbbb';
    await deployRunning(p, depId);
    const snapId = 'snap-cccccccccccc';
    const op = p.handOut({ kind: 'snapshot', deploymentId: depId, snapshotId: snapId, label: 'first' });
    const first = await p.resultOf(op.id);
    expect(first).toMatchObject({ ok: true, value: { id: snapId, label: 'first' } });
    const ready = await p.stateWhere(depId, (d) => d.snapshots.some((s) => s.id === snapId && s.status === 'ready'), 'snapshot ready');
    expect(ready.snapshotSummary.count).toBe(1);

    // The control plane hands the same operation out again (its result was lost, say): applied once.
    p.handOut({ kind: 'snapshot', deploymentId: depId, snapshotId: snapId, label: 'first' }, op.id);
    const second = await p.resultOf(op.id, 2);
    expect(second.ok && second.value).toEqual(first.ok && first.value);
    expect(localSnapshots(dataDir, depId)).toEqual([{ id: snapId, status: 'ready', trigger: 'manual' }]);

    // Heartbeats carry the capacity.
    const hb = await waitFor(
      () => p.heartbeats.find((h) => h.capacity.deployments === 1 && h.capacity.runningServices === 1),
      30_000,
      'heartbeat',
    );
    expect(hb.capacity.diskTotalBytes).toBeGreaterThan(0);
    expect(hb.capacity.volumeReservedBytes).toBe(1024 ** 3);
    expect(hb.capacity.health).toMatch(/^(ok|degraded)$/);
  });

  it('ends a snapshot interrupted by a SIGKILL of the node as failed or ready, never stuck creating', async () => {
    const p = await startPlane();
    const dataDir = tempDir();
    node = startKovaNode({ dataDir, controlPlane: p.url, token: TOKEN });
    const depId = 'dep-dddddddddddd';
    await deployRunning(p, depId);
    await node.stop();

    // The node kills itself in the middle of the snapshot's first pass.
    node = startKovaNode({ dataDir, controlPlane: p.url, token: TOKEN, fault: 'snapshot:pass1' });
    const snapId = 'snap-eeeeeeeeeeee';
    p.handOut({ kind: 'snapshot', deploymentId: depId, snapshotId: snapId, label: null });
    expect(await node.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(localSnapshots(dataDir, depId)).toEqual([{ id: snapId, status: 'creating', trigger: 'manual' }]);

    node = startKovaNode({ dataDir, controlPlane: p.url, token: TOKEN });
    const after = await p.stateWhere(
      depId,
      (d) => d.snapshots.some((s) => s.id === snapId && s.status !== 'creating') && d.operation === null,
      'the interrupted snapshot settled',
    );
    expect(['ready', 'failed']).toContain(after.snapshots.find((s) => s.id === snapId)!.status);
    expect(after.snapshots.filter((s) => s.id === snapId)).toHaveLength(1);
  });

  it('keeps taking automatic snapshots while the control plane is away and sends them when it is back', async () => {
    const p = await startPlane();
    const dataDir = tempDir();
    node = startKovaNode({ dataDir, controlPlane: p.url, token: TOKEN });
    const depId = 'dep-ffffffffffff';
    await deployRunning(p, depId);
    const settings = p.handOut({ kind: 'settings', deploymentId: depId, input: { enabled: true, interval: '1s', retention: 100 } });
    expect(await p.resultOf(settings.id)).toMatchObject({ ok: true, value: { enabled: true, interval: '1s' } });

    await p.close();
    const seenBefore = new Set(p.latest.get(depId)!.snapshots.map((s) => s.id));
    // The node goes on on its own: at least three automatic snapshots while nobody listens.
    const taken = await waitFor(
      () => {
        const ready = localSnapshots(dataDir, depId).filter(
          (s) => s.trigger === 'automatic' && s.status === 'ready' && !seenBefore.has(s.id),
        );
        return ready.length >= 3 ? ready : null;
      },
      60_000,
      'automatic snapshots while the control plane is away',
    );
    expect(node.child.exitCode).toBeNull();

    await p.listen();
    const back = await p.stateWhere(
      depId,
      (d) => taken.every((t) => d.snapshots.some((s) => s.id === t.id && s.status === 'ready')),
      'the backlog of snapshots',
    );
    expect(back.settings.enabled).toBe(true);
    expect(back.deployment.status).toBe('active');
  });

  it('stops with exit code 1 and says so when the control plane refuses its token', async () => {
    const p = await startPlane();
    const dataDir = tempDir();
    node = startKovaNode({ dataDir, controlPlane: p.url, token: 'kova_node_wrong' });
    expect(await node.exited).toEqual({ code: 1, signal: null });
    expect(node.output()).toMatch(
      /kova: the control plane at http:\/\/127\.0\.0\.1:\d+ refused this node \(HTTP 401: unknown node token\)/,
    );
  });
});
