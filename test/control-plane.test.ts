/**
 * The control plane end to end on a real PostgreSQL: two replicas (two
 * `startControlPlane`, each with its own connection pool, listening on
 * loopback) on one database, and a scripted fake node written here that
 * speaks the real protocol over HTTP (hello, heartbeat, long poll, result,
 * state). The test drives the node step by step, so each scenario decides
 * which replica the node talks to and when it answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { type ControlPlaneConfig, type RunningControlPlane, buildControlPlane, startControlPlane } from '../src/app/control-plane.js';
import { ManualClock } from '../src/core/clock.js';
import type { Catalogue } from '../src/control/catalogue.js';
import { CatalogueKeys } from '../src/control/keys.js';
import { hashNodeToken, newNodeToken, openCatalogue } from '../src/control/store/index.js';
import type { Deployment } from '../src/db/deployments.js';
import type { Snapshot } from '../src/db/snapshots.js';
import {
  type Capacity,
  type DeploymentState,
  NODE_PATHS,
  type Operation,
  type OperationResult,
  PROTOCOL_VERSION,
} from '../src/network/protocol.js';
import { parseSdlOrThrow } from '../src/sdl/parse-sdl.js';
import { sdlFor } from './helpers/harness.js';
import { type PostgresCluster, postgresAvailable, startPostgres } from './helpers/postgres.js';

const available = postgresAvailable();
/** What the fake node answers to the questions (in the API's JSON, as a node does). */
const PLAN = {
  volumes: [{ from: 'app.data', to: 'app.data', match: 'name' }],
  untouchedVolumes: [],
  missingVolumes: [],
  refusal: { code: 'NOTHING_TO_RESTORE', message: 'snapshot snap-aaaaaaaaaaaa holds no volume' },
  // A full restore: no selection of paths.
  mode: null,
  into: null,
  paths: null,
};
const PREVIEW = {
  description: 'the last 2 automatic snapshots',
  keep: [{ id: 'snap-bbbbbbbbbbbb', createdAt: '2026-01-02T00:00:00.000Z', reasons: ['last'] }],
  prune: [{ id: 'snap-cccccccccccc', createdAt: '2026-01-01T00:00:00.000Z' }],
};
const GB = 1e9;
const WAIT_MS = 3000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read response bodies freely
type Answer = { status: number; body: any };

async function call(base: string, method: string, path: string, token: string | null, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/**
 * FakeNode: a node as the protocol describes it, with a journal so a
 * repeated operation id is answered with the result it had. It keeps its
 * deployments' documents and bumps their version on every change.
 */
class FakeNode {
  bootId = 'boot-1';
  /** The off-node target named in hello (targetIdentity); null: none. */
  offsiteTarget: string | null = null;
  /** Answer a recover as a node whose bucket lacks the snapshot. */
  refuseRecover = false;
  readonly journal = new Map<string, OperationResult>();
  readonly applied: string[] = [];
  private readonly docs = new Map<string, DeploymentState>();
  capacity: Capacity = {
    diskFreeBytes: 500 * GB,
    diskTotalBytes: 1000 * GB,
    volumeUsedBytes: 0,
    volumeReservedBytes: 0,
    deployments: 0,
    runningServices: 0,
    health: 'ok',
  };

  constructor(
    readonly token: string,
    private readonly now: () => number,
  ) {}

  hello(base: string): Promise<Answer> {
    return call(base, 'POST', NODE_PATHS.hello, this.token, {
      protocol: PROTOCOL_VERSION,
      version: 'test',
      runtime: 'process',
      bootId: this.bootId,
      offsiteTarget: this.offsiteTarget,
    });
  }

  heartbeat(base: string): Promise<Answer> {
    return call(base, 'POST', NODE_PATHS.heartbeat, this.token, { capacity: this.capacity });
  }

  async poll(base: string, waitMs = 10_000): Promise<Operation[]> {
    const r = await call(base, 'GET', `${NODE_PATHS.operations}?waitMs=${waitMs}`, this.token);
    expect(r.status).toBe(200);
    return r.body.operations as Operation[];
  }

  /** pollFor long-polls until an operation of `kind` comes. */
  async pollFor(base: string, kind: Operation['payload']['kind']): Promise<Operation> {
    for (let i = 0; i < 10; i++) {
      const op = (await this.poll(base)).find((o) => o.payload.kind === kind);
      if (op) return op;
    }
    throw new Error(`no ${kind} operation came`);
  }

  /** apply carries an operation out once; a repeated id gets the journal's result. */
  apply(op: Operation): OperationResult {
    const known = this.journal.get(op.id);
    if (known) return known;
    this.applied.push(op.id);
    const result = this.run(op);
    this.journal.set(op.id, result);
    return result;
  }

  answer(base: string, opId: string, result: OperationResult): Promise<Answer> {
    return call(base, 'POST', NODE_PATHS.result(opId), this.token, result);
  }

  private run(op: Operation): OperationResult {
    const p = op.payload;
    const now = this.now();
    switch (p.kind) {
      case 'deploy': {
        const d: Deployment = {
          id: p.deploymentId,
          userId: op.userId,
          name: p.name,
          sdl: p.sdl,
          manifest: parseSdlOrThrow(p.sdl),
          status: 'active',
          clonedFrom: null,
          createdAt: now,
          updatedAt: now,
          closedAt: null,
        };
        return { ok: true, state: this.put(d.id, { deployment: d, operation: 'deploy' }) };
      }
      case 'snapshot': {
        const s: Snapshot = {
          id: p.snapshotId,
          deploymentId: p.deploymentId,
          label: p.label,
          status: 'creating',
          trigger: 'manual',
          createdAt: now,
          readyAt: null,
          engineId: null,
          sizeBytes: null,
          storedBytes: null,
          files: null,
          consistency: null,
          freezeMs: null,
          error: null,
          warning: null,
          progressDone: null,
          progressTotal: null,
        };
        const cur = this.docs.get(p.deploymentId)!;
        return { ok: true, state: this.put(p.deploymentId, { snapshots: [s, ...cur.snapshots], operation: 'snapshot' }) };
      }
      case 'restart':
        return { ok: true, state: this.put(p.deploymentId, { operation: 'restart' }) };
      case 'clone': {
        const src = this.docs.get(p.deploymentId)!.deployment;
        const d: Deployment = {
          ...src,
          id: p.newDeploymentId,
          name: p.name ?? `${src.name}-clone`,
          clonedFrom: p.snapshotId,
          createdAt: now,
        };
        return { ok: true, state: this.docs.get(p.deploymentId)!, extraStates: [this.put(d.id, { deployment: d, operation: 'clone' })] };
      }
      case 'settings':
        return {
          ok: true,
          state: this.put(p.deploymentId, {
            settings: { ...this.docs.get(p.deploymentId)!.settings, enabled: p.input.enabled ?? false, retention: p.input.retention ?? 7 },
          }),
        };
      case 'recover':
        if (this.refuseRecover) {
          return { ok: false, error: { code: 'SNAPSHOT_NOT_COPIED', status: 409, message: `no copy of ${p.snapshotId} in the bucket` } };
        }
        return { ok: true, state: this.put(p.deploymentId, { deployment: p.deployment, snapshots: p.snapshots, operation: 'recover' }) };
      case 'forget':
        return { ok: true, state: null };
      case 'restore-plan':
        return { ok: true, state: null, value: PLAN };
      case 'settings-preview':
        return { ok: true, state: null, value: PREVIEW };
      case 'delete-snapshot':
        return {
          ok: false,
          error: { code: 'SNAPSHOT_BUSY', status: 409, message: `snapshot ${p.snapshotId} is still being created` },
        };
      default:
        return { ok: false, error: { code: 'NOT_SCRIPTED', status: 500, message: `the fake node does not do ${p.kind}` } };
    }
  }

  private put(id: string, change: Partial<DeploymentState>): DeploymentState {
    const cur = this.docs.get(id);
    const base: DeploymentState = cur ?? {
      deployment: change.deployment!,
      version: 0,
      settings: {
        deploymentId: id,
        enabled: false,
        intervalMs: 86_400_000,
        interval: '24h',
        retention: 7,
        keepHourly: null,
        keepDaily: null,
        keepWeekly: null,
        keepMonthly: null,
        nextRunAt: null,
        updatedAt: this.now(),
      },
      snapshots: [],
      restores: [],
      operation: null,
      services: [{ name: 'app', state: 'running', startedAt: new Date(this.now()).toISOString(), exitCode: null }],
      volumeBytes: { 'app.data': 4096 },
      snapshotSummary: { count: 0, sizeBytes: 0, storedBytes: 0, lastSnapshotAt: null },
    };
    const next = { ...base, ...change, version: base.version + 1 };
    this.docs.set(id, next);
    return next;
  }
}

describe.skipIf(!available)('control plane: two replicas on one PostgreSQL, a scripted node', () => {
  let cluster: PostgresCluster;
  let admin: Catalogue;
  let a: RunningControlPlane;
  let b: RunningControlPlane;
  let c: RunningControlPlane;
  const clock = new ManualClock(Date.now());
  let node: FakeNode;
  let alice: string;
  let bob: string;
  let root: string;
  let depId: string;
  let deployOp: Operation;

  const config = (url: string): ControlPlaneConfig => ({
    databaseUrl: url,
    host: '127.0.0.1',
    port: 0,
    nodeTimeoutMs: 30_000,
    waitMs: WAIT_MS,
    minSnapshotIntervalMs: 3600_000,
    rateLimitPerMinute: 100_000,
    userRateLimitPerMinute: 100_000,
    logLevel: 'silent',
    webhooksAllowPrivate: false,
    tlsCertFile: null,
    tlsKeyFile: null,
  });
  const logger = pino({ level: process.env.KOVA_TEST_LOG ?? 'silent' });
  const start = (url: string): Promise<RunningControlPlane> => startControlPlane(config(url), { clock, logger });
  let dbUrl: string;

  beforeAll(async () => {
    cluster = await startPostgres();
    const url = await cluster.createDatabase('control_plane');
    dbUrl = url;
    [a, b, c] = await Promise.all([start(url), start(url), start(url)]);
    admin = await openCatalogue(url);
    const keys = new CatalogueKeys(admin, clock);
    const user = async (name: string, role: 'admin' | 'user') =>
      (await keys.create((await admin.ensureUser(name, role, clock.now())).id, 'test')).token;
    root = await user('root', 'admin');
    alice = await user('alice', 'user');
    bob = await user('bob', 'user');
    const token = newNodeToken();
    await admin.addNode('edge-1', hashNodeToken(token), clock.now());
    node = new FakeNode(token, () => clock.now());
    expect((await node.hello(b.url)).body).toMatchObject({ protocol: PROTOCOL_VERSION, name: 'edge-1', nodeTimeoutMs: 30_000 });
    expect((await node.heartbeat(b.url)).status).toBe(200);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    await admin?.close();
    await cluster?.close();
  });

  it('places a new deployment on the online node and answers with it, from whichever replica the node talks to', async () => {
    const created = call(a.url, 'POST', '/api/v1/deployments', alice, { sdl: sdlFor('exec sleep 1000') });
    const op = await node.pollFor(b.url, 'deploy');
    deployOp = op;
    expect(op.userId).toBe((await admin.userByName('alice'))!.id);
    expect((await node.answer(b.url, op.id, node.apply(op))).body).toEqual({ success: true, recorded: true });
    const r = await created;
    expect(r.status).toBe(201);
    depId = r.body.deployment.id;
    expect(depId).toBe(op.payload.kind === 'deploy' ? op.payload.deploymentId : null);
    expect(r.body.deployment).toMatchObject({
      status: 'active',
      name: 'app',
      operation: 'deploy',
      node: { name: 'edge-1', status: 'online', id: expect.stringMatching(/.+/) },
      services: [{ name: 'app', state: 'running', volumes: [{ name: 'data', usedBytes: 4096 }] }],
    });
    const listed = await call(b.url, 'GET', '/api/v1/deployments', alice);
    expect(listed.body.deployments.map((d: { id: string }) => d.id)).toEqual([depId]);
  });

  it("shows no one another user's deployment: 404 as for one that does not exist", async () => {
    const r = await call(a.url, 'GET', `/api/v1/deployments/${depId}`, bob);
    expect(r).toMatchObject({ status: 404, body: { success: false, error: { code: 'DEPLOYMENT_NOT_FOUND' } } });
    expect((await call(a.url, 'POST', `/api/v1/deployments/${depId}/restart`, bob)).body.error.code).toBe('DEPLOYMENT_NOT_FOUND');
    expect((await call(b.url, 'GET', '/api/v1/deployments', bob)).body.deployments).toEqual([]);
    expect(await node.poll(a.url, 0)).toEqual([]);
  });

  it('hands an operation out again after the node restarts without answering, and records its result once', async () => {
    const restarted = call(a.url, 'POST', `/api/v1/deployments/${depId}/restart`, alice);
    const first = await node.pollFor(a.url, 'restart');
    // The node "crashes" before applying it, comes back with a new boot id and polls the other replica.
    node.bootId = 'boot-2';
    expect((await node.hello(b.url)).status).toBe(200);
    const again = await node.pollFor(b.url, 'restart');
    expect(again.id).toBe(first.id);
    const result = node.apply(again);
    expect((await node.answer(b.url, again.id, result)).body).toEqual({ success: true, recorded: true });
    expect((await restarted).status).toBe(202);
    // A repeat of the same answer changes nothing.
    expect((await node.answer(a.url, again.id, node.apply(again))).body).toEqual({ success: true, recorded: false });
    expect(node.applied.filter((id) => id === first.id)).toHaveLength(1);
    expect(await admin.operation(first.id)).toMatchObject({ status: 'done', result: { ok: true } });
    expect(await node.poll(a.url, 0)).toEqual([]);
  });

  it("answers a node's refusal with the all-in-one's error", async () => {
    const deleted = call(b.url, 'DELETE', `/api/v1/deployments/${depId}/snapshots/snap-aaaaaaaaaaaa`, alice);
    const op = await node.pollFor(a.url, 'delete-snapshot');
    await node.answer(a.url, op.id, node.apply(op));
    expect(await deleted).toMatchObject({ status: 409, body: { success: false, error: { code: 'SNAPSHOT_BUSY' } } });
  });

  it("clones onto the source deployment's node", async () => {
    const cloned = call(a.url, 'POST', `/api/v1/deployments/${depId}/snapshots/snap-aaaaaaaaaaaa/clone`, alice, { name: 'copy' });
    const op = await node.pollFor(b.url, 'clone');
    await node.answer(b.url, op.id, node.apply(op));
    const r = await cloned;
    expect(r.status).toBe(201);
    expect(r.body.deployment).toMatchObject({ name: 'copy', clonedFrom: 'snap-aaaaaaaaaaaa', node: { name: 'edge-1' } });
    expect(r.body.deployment.id).toBe(op.payload.kind === 'clone' ? op.payload.newDeploymentId : null);
    expect((await call(b.url, 'GET', `/api/v1/deployments/${r.body.deployment.id}`, alice)).status).toBe(200);
    expect((await call(b.url, 'GET', `/api/v1/deployments/${r.body.deployment.id}`, bob)).status).toBe(404);
  });

  it("answers the node-side questions and settings with the node's answers, in the API's shapes", async () => {
    const planned = call(a.url, 'GET', `/api/v1/deployments/${depId}/snapshots/snap-aaaaaaaaaaaa/restore-plan`, alice);
    const q1 = await node.pollFor(b.url, 'restore-plan');
    await node.answer(b.url, q1.id, node.apply(q1));
    expect(await planned).toEqual({ status: 200, body: { success: true, plan: PLAN } });

    const previewed = call(b.url, 'POST', `/api/v1/deployments/${depId}/snapshot-settings/preview`, alice, { retention: 2 });
    const q2 = await node.pollFor(a.url, 'settings-preview');
    expect(q2.payload).toEqual({ kind: 'settings-preview', deploymentId: depId, input: { retention: 2 } });
    await node.answer(a.url, q2.id, node.apply(q2));
    expect(await previewed).toEqual({ status: 200, body: { success: true, ...PREVIEW } });

    const put = call(a.url, 'PUT', `/api/v1/deployments/${depId}/snapshot-settings`, alice, { enabled: true, retention: 3 });
    const op = await node.pollFor(a.url, 'settings');
    await node.answer(a.url, op.id, node.apply(op));
    expect(await put).toMatchObject({ status: 200, body: { success: true, settings: { enabled: true, retention: 3, interval: '24h' } } });
    expect((await call(b.url, 'GET', `/api/v1/deployments/${depId}/snapshot-settings`, alice)).body.settings).toMatchObject({
      enabled: true,
      retention: 3,
    });
  });

  it('refuses an invalid SDL itself, before asking the node', async () => {
    const r = await call(a.url, 'PUT', `/api/v1/deployments/${depId}`, alice, { sdl: 'version: "2.0"\nservices: {}' });
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'INVALID_SDL' } } });
    expect(await node.poll(b.url, 0)).toEqual([]);
  });

  it('withdraws an operation the node never collected: 503 NODE_UNAVAILABLE, nothing done', async () => {
    const r = await call(a.url, 'POST', `/api/v1/deployments/${depId}/restart`, alice);
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'NODE_UNAVAILABLE' } } });
    expect(r.body.error.message).toMatch(/edge-1 did not answer.*nothing was done/);
    expect(await node.poll(b.url, 0)).toEqual([]);
  });

  it('ends a long poll whose node hung up, so it claims nothing meant for the next one', async () => {
    const hangUp = new AbortController();
    const poll = fetch(`${a.url}${NODE_PATHS.operations}?waitMs=20000`, {
      headers: { authorization: `Bearer ${node.token}` },
      signal: hangUp.signal,
    }).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 300));
    hangUp.abort();
    await poll;
    // Had the abandoned poll kept waiting, it would take this operation, and it could no longer be withdrawn.
    const r = await call(b.url, 'POST', `/api/v1/deployments/${depId}/restart`, alice);
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'NODE_UNAVAILABLE' } } });
    expect(r.body.error.message).toMatch(/nothing was done/);
  });

  it('forgets the placement of a deployment whose creation was withdrawn', async () => {
    const r = await call(b.url, 'POST', '/api/v1/deployments', alice, { sdl: sdlFor('exec sleep 1000'), name: 'never' });
    expect(r.body.error.code).toBe('NODE_UNAVAILABLE');
    const names = (await call(a.url, 'GET', '/api/v1/deployments', alice)).body.deployments.map((d: { name: string }) => d.name);
    expect([...names].sort()).toEqual(['app', 'copy']);
    // The withdrawn placement is gone: the node counts the two deployments it has.
    expect((await admin.nodes())[0]!.deployments).toBe(2);
  });

  it('refuses to place a deployment no node has room for: 503 NO_NODE_AVAILABLE', async () => {
    node.capacity = { ...node.capacity, diskFreeBytes: 1 * GB };
    await node.heartbeat(a.url);
    try {
      const r = await call(a.url, 'POST', '/api/v1/deployments', alice, { sdl: sdlFor('exec sleep 1000') });
      expect(r).toMatchObject({ status: 503, body: { error: { code: 'NO_NODE_AVAILABLE' } } });
      expect(r.body.error.message).toMatch(/no online node has room/);
      expect(await node.poll(b.url, 0)).toEqual([]);
    } finally {
      node.capacity = { ...node.capacity, diskFreeBytes: 500 * GB };
      await node.heartbeat(a.url);
    }
  });

  it('answers 503 NODE_UNAVAILABLE for an offline node without queueing, and still lists its deployments', async () => {
    clock.advance(31_000);
    try {
      const r = await call(a.url, 'POST', `/api/v1/deployments/${depId}/snapshots`, alice, { label: 'x' });
      expect(r).toMatchObject({ status: 503, body: { error: { code: 'NODE_UNAVAILABLE' } } });
      expect(r.body.error.message).toMatch(/node edge-1 is offline \(it was last seen at \d{4}-/);
      expect(await node.poll(b.url, 0)).toEqual([]);
      const listed = await call(b.url, 'GET', '/api/v1/deployments', alice);
      expect(listed.body.deployments.find((d: { id: string }) => d.id === depId)).toMatchObject({
        status: 'active',
        // When it was last heard from, so users can be told how long it has been gone.
        node: { name: 'edge-1', status: 'offline', lastHeartbeatAt: new Date(clock.now() - 31_000).toISOString() },
      });
      expect((await call(b.url, 'GET', `/api/v1/deployments/${depId}/snapshots`, alice)).status).toBe(200);
    } finally {
      await node.heartbeat(a.url);
    }
  });

  it('serves the result through the other replica when the waiting one shuts down', async () => {
    const snapped = call(c.url, 'POST', `/api/v1/deployments/${depId}/snapshots`, alice, { label: 'during-shutdown' });
    const op = await node.pollFor(b.url, 'snapshot');
    await c.close();
    const r = await snapped;
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'NODE_UNAVAILABLE' } } });
    expect(r.body.error.message).toContain(op.id);
    expect((await node.answer(a.url, op.id, node.apply(op))).body.recorded).toBe(true);
    const snaps = await call(b.url, 'GET', `/api/v1/deployments/${depId}/snapshots`, alice);
    expect(snaps.body.snapshots).toMatchObject([
      { id: op.payload.kind === 'snapshot' ? op.payload.snapshotId : '', label: 'during-shutdown' },
    ]);
  });

  it('lists nodes to admins only', async () => {
    const r = await call(a.url, 'GET', '/api/v1/nodes', root);
    expect(r.status).toBe(200);
    expect(r.body.nodes).toEqual([
      {
        id: expect.any(String),
        name: 'edge-1',
        status: 'online',
        lastHeartbeatAt: expect.stringMatching(/^\d{4}-/),
        capacity: node.capacity,
        deployments: 2,
        offsiteTarget: null,
      },
    ]);
    expect(await call(b.url, 'GET', '/api/v1/nodes', alice)).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
  });

  it('tells each caller their role from the catalogue, and that the server is in network mode', async () => {
    expect((await call(a.url, 'GET', '/api/v1/me', root)).body).toMatchObject({
      user: { name: 'root', role: 'admin' },
      server: { mode: 'network' },
    });
    expect((await call(b.url, 'GET', '/api/v1/me', alice)).body).toMatchObject({
      user: { name: 'alice', role: 'user' },
      server: { mode: 'network' },
    });
  });

  it("keeps node tokens and users' keys apart", async () => {
    expect(await call(a.url, 'GET', '/api/v1/deployments', node.token)).toMatchObject({
      status: 401,
      body: { error: { code: 'UNAUTHORIZED' } },
    });
    expect(await call(a.url, 'POST', NODE_PATHS.heartbeat, alice, { capacity: node.capacity })).toMatchObject({
      status: 401,
      body: { error: { code: 'UNAUTHORIZED' } },
    });
    expect((await call(a.url, 'GET', `${NODE_PATHS.operations}?waitMs=0`, null)).status).toBe(401);
  });

  it('lets a node touch only its own operations and deployments', async () => {
    const token = newNodeToken();
    await admin.addNode('edge-2', hashNodeToken(token), clock.now());
    const other = new FakeNode(token, () => clock.now());
    const r = await other.answer(a.url, deployOp.id, { ok: true, state: null });
    expect(r).toMatchObject({ status: 404, body: { error: { code: 'OPERATION_NOT_FOUND' } } });
    const before = (await call(b.url, 'GET', `/api/v1/deployments/${depId}`, alice)).body.deployment;
    const doc = (node.apply(deployOp) as { state: DeploymentState }).state;
    const state = await call(a.url, 'POST', NODE_PATHS.state, token, {
      deployments: [{ ...doc, version: 1_000_000, deployment: { ...doc.deployment, name: 'hijacked' } }],
    });
    expect(state).toEqual({ status: 200, body: { acked: [] } });
    expect((await call(b.url, 'GET', `/api/v1/deployments/${depId}`, alice)).body.deployment.name).toBe(before.name);
  });

  it("counts a key's requests across replicas", async () => {
    const cats = [await openCatalogue(dbUrl), await openCatalogue(dbUrl)];
    const apps = await Promise.all(
      cats.map((cat) => buildControlPlane({ ...config(dbUrl), rateLimitPerMinute: 3 }, cat, { clock, logger })),
    );
    // A user of its own: keys' counts are shared with this suite's other replicas, in the same window.
    const carol = await new CatalogueKeys(admin, clock).create((await admin.ensureUser('carol', 'user', clock.now())).id, 'test');
    try {
      const get = (i: number) =>
        apps[i]!.app.inject({ method: 'GET', url: '/api/v1/deployments', headers: { authorization: `Bearer ${carol.token}` } });
      const statuses = [(await get(0)).statusCode, (await get(1)).statusCode, (await get(0)).statusCode];
      expect(statuses).toEqual([200, 200, 200]);
      const over = await get(1);
      expect(over.statusCode).toBe(429);
      expect(JSON.parse(over.body).error.code).toBe('RATE_LIMITED');
    } finally {
      for (const x of apps) {
        await x.stop();
        await x.app.close();
      }
      await Promise.all(cats.map((cat) => cat.close()));
    }
  });

  it('recovers a deployment of an offline node onto a node with the same off-node target, and moves it back when that node refuses', async () => {
    const target = 's3://bucket/net at http://127.0.0.1:9000';
    const fake = async (name: string, offsiteTarget: string | null): Promise<FakeNode> => {
      const token = newNodeToken();
      await admin.addNode(name, hashNodeToken(token), clock.now());
      const n = new FakeNode(token, () => clock.now());
      n.offsiteTarget = offsiteTarget;
      expect((await n.hello(a.url)).status).toBe(200);
      expect((await n.heartbeat(a.url)).status).toBe(200);
      return n;
    };
    const old = await fake('rec-old', target);
    const elsewhere = await fake('rec-elsewhere', 's3://another/place');
    const aliceId = (await admin.userByName('alice'))!.id;
    const oldId = (await admin.node('rec-old'))!.id;
    // The admin sees which target each node copies to.
    const listedNodes = (await call(a.url, 'GET', '/api/v1/nodes', root)).body.nodes as Array<{
      name: string;
      offsiteTarget: string | null;
    }>;
    expect(Object.fromEntries(listedNodes.map((n) => [n.name, n.offsiteTarget]))).toMatchObject({
      'rec-old': target,
      'rec-elsewhere': 's3://another/place',
      'edge-1': null,
    });
    // A deployment on rec-old, as its documents left it: one snapshot copied off-node, one not.
    const dep = 'dep-recoverxxxx1';
    await admin.place(dep, aliceId, oldId, clock.now());
    const snap = (id: string, createdAt: number, copied: boolean): Snapshot => ({
      id,
      deploymentId: dep,
      label: id,
      status: 'ready',
      trigger: 'manual',
      createdAt,
      readyAt: createdAt,
      engineId: id.replace('snap-', 'e'),
      sizeBytes: 10,
      storedBytes: 10,
      files: 1,
      consistency: 'frozen',
      freezeMs: 1,
      error: null,
      warning: null,
      progressDone: null,
      progressTotal: null,
      offsite: copied ? { status: 'copied', copiedAt: createdAt, error: null } : null,
    });
    const base = (node.apply(deployOp) as { state: DeploymentState }).state;
    const state = (snapshots: Snapshot[], version: number): DeploymentState => ({
      ...base,
      deployment: { ...base.deployment, id: dep, userId: aliceId, name: 'moved' },
      version,
      snapshots,
      offsiteTarget: target,
    });
    await admin.applyState(oldId, [state([snap('snap-local000001', 2_000, false)], 1)]);
    const recover = (body: unknown = {}) => call(a.url, 'POST', `/api/v1/deployments/${dep}/recover`, alice, body);

    // Online: a restore is what it needs.
    expect(await recover()).toMatchObject({ status: 409, body: { error: { code: 'NODE_ONLINE' } } });
    clock.advance(31_000);
    for (const n of [node, elsewhere]) expect((await n.heartbeat(a.url)).status).toBe(200);
    // Offline, but nothing was copied.
    expect(await recover()).toMatchObject({ status: 409, body: { error: { code: 'NO_OFFSITE_COPY' } } });
    await admin.applyState(oldId, [state([snap('snap-copied00002', 3_000, true), snap('snap-local000001', 2_000, false)], 2)]);
    expect(await recover({ snapshotId: 'snap-local000001' })).toMatchObject({
      status: 409,
      body: { error: { code: 'SNAPSHOT_NOT_COPIED' } },
    });
    // The only online nodes copy elsewhere (or nowhere): none can take it.
    expect(await recover()).toMatchObject({ status: 503, body: { error: { code: 'NODE_UNAVAILABLE' } } });

    // A node with the same target comes; it refuses (its bucket lacks the snapshot): the deployment stays on rec-old.
    const taker = await fake('rec-taker', target);
    taker.refuseRecover = true;
    const refused = recover();
    const first = await taker.pollFor(a.url, 'recover');
    expect(first.payload).toMatchObject({ kind: 'recover', deploymentId: dep, snapshotId: 'snap-copied00002' });
    expect((first.payload as unknown as { snapshots: Snapshot[] }).snapshots.map((x) => x.id)).toEqual(['snap-copied00002']);
    await taker.answer(a.url, first.id, taker.apply(first));
    expect(await refused).toMatchObject({ status: 409, body: { error: { code: 'SNAPSHOT_NOT_COPIED' } } });
    expect((await admin.deployment(dep))?.nodeId).toBe(oldId);
    // Its forget was withdrawn before rec-old could see it.
    expect(await old.poll(a.url, 0)).toEqual([]);

    // Accepted: the deployment is the taker's, rec-old is told to forget it, and its documents are refused.
    taker.refuseRecover = false;
    const accepted = recover();
    const second = await taker.pollFor(a.url, 'recover');
    await taker.answer(a.url, second.id, taker.apply(second));
    const r = await accepted;
    expect(r.status).toBe(202);
    expect(r.body.recovery).toMatchObject({
      operationId: second.id,
      snapshotId: 'snap-copied00002',
      fromNode: { name: 'rec-old' },
      toNode: { name: 'rec-taker' },
    });
    expect(r.body.deployment).toMatchObject({ id: dep, operation: 'recover', node: { name: 'rec-taker', status: 'online' } });
    const forget = await old.poll(a.url, 0);
    expect(forget.map((o) => o.payload)).toEqual([{ kind: 'forget', deploymentId: dep }]);
    const late = await call(a.url, 'POST', NODE_PATHS.state, old.token, { deployments: [state([], 99)] });
    expect(late).toEqual({ status: 200, body: { acked: [] } });
    const listed = await call(b.url, 'GET', `/api/v1/deployments/${dep}/snapshots`, alice);
    expect(listed.body.snapshots.map((x: { id: string; offsite: { status: string } }) => [x.id, x.offsite.status])).toEqual([
      ['snap-copied00002', 'copied'],
    ]);
    // Its recover job fails on the taker (not running, no operation): a recovery may be asked again, there, without a move.
    const done = (taker.journal.get(second.id) as { state: DeploymentState }).state;
    const stuck = { ...done, version: done.version + 1, operation: null, services: [] };
    expect((await call(a.url, 'POST', NODE_PATHS.state, taker.token, { deployments: [stuck] })).body.acked).toHaveLength(1);
    const again = recover();
    const third = await taker.pollFor(a.url, 'recover');
    await taker.answer(a.url, third.id, taker.apply(third));
    expect(await again).toMatchObject({
      status: 202,
      body: { recovery: { operationId: third.id, fromNode: { name: 'rec-old' }, toNode: { name: 'rec-taker' } } },
    });
    expect((await admin.deployment(dep))?.nodeId).toBe((await admin.node('rec-taker'))!.id);
    // No second forget: only the first, still unanswered, is handed out again.
    expect((await old.poll(a.url, 0)).map((o) => o.id)).toEqual(forget.map((o) => o.id));
    // The taker reports its recover job running again: now a restore is what it needs.
    await call(a.url, 'POST', NODE_PATHS.state, taker.token, {
      deployments: [{ ...done, version: done.version + 2, operation: 'recover' }],
    });
    expect(await recover()).toMatchObject({ status: 409, body: { error: { code: 'NODE_ONLINE' } } });
    // The suite's node is online again for what follows.
    expect((await node.heartbeat(a.url)).status).toBe(200);
  });

  it('serves browsing (an unknown snapshot is 404 without asking the node), and reports the database in /healthz', async () => {
    const r = await call(a.url, 'GET', `/api/v1/deployments/${depId}/snapshots/snap-zzzzzzzzzzzz/files`, alice);
    expect(r).toMatchObject({ status: 404, body: { error: { code: 'SNAPSHOT_NOT_FOUND' } } });
    expect(await admin.countReads()).toEqual({ reads: 0, chunks: 0 });
    expect(await call(a.url, 'GET', '/healthz', null)).toMatchObject({ status: 200, body: { status: 'ok', database: 'ok' } });
    await cluster.stop();
    try {
      expect(await call(a.url, 'GET', '/healthz', null)).toMatchObject({ status: 503, body: { database: 'unreachable' } });
    } finally {
      await cluster.start();
    }
  });
});
