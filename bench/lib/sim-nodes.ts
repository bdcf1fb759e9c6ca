// Simulated nodes for the network suite's scale figures: one process plays
// many `kova node`s against a real control plane, over the real node
// protocol (src/network/protocol.ts) with real node tokens. Nodes and
// placements are written straight into the catalogue (openCatalogue,
// addNode, place, hashNodeToken), as `kova nodes add` and placement would;
// everything after that goes over HTTP: hello, a heartbeat every
// `heartbeatMs`, a long poll for operations kept open, and, for each
// deployment once every `stateEveryMs` (each deployment at its own phase of
// that period), a state document with one more automatic snapshot, the
// oldest pruned beyond `retention`.
//
// Each node sends the documents that fell due in one request, every
// `flushMs` (as state-sync batches them), at most 50 a request. Heartbeats
// of different nodes are spread over the period too, so the load is even.
import { setMaxListeners } from 'node:events';
import { newId } from '../../src/core/ids.js';
import { sleep } from '../../src/core/sleep.js';
import type { Deployment } from '../../src/db/deployments.js';
import type { Snapshot } from '../../src/db/snapshots.js';
import { openCatalogue } from '../../src/control/store/index.js';
import { hashNodeToken, newNodeToken } from '../../src/control/store/tokens.js';
import { type Capacity, type DeploymentState, NODE_PATHS, PROTOCOL_VERSION, type StateReply } from '../../src/network/protocol.js';
import { parseSdlOrThrow } from '../../src/sdl/parse-sdl.js';
import { percentile } from './latency.js';

export interface FleetOptions {
  /** The control plane's base URL. */
  url: string;
  /** The catalogue the control plane uses (nodes and placements are created there). */
  databaseUrl: string;
  nodes: number;
  deploymentsPerNode: number;
  /** SDL of every simulated deployment. */
  sdl: string;
  /** Default 5 s. */
  heartbeatMs?: number;
  /** Each deployment sends a document with a new automatic snapshot this often. Default 60 s. */
  stateEveryMs?: number;
  /** Automatic snapshots kept per deployment. Default 10. */
  retention?: number;
  /** How often a node sends what fell due. Default 250 ms. */
  flushMs?: number;
  /** The long poll's wait. Default 20 s (as a real node). */
  pollWaitMs?: number;
}

type Kind = 'hello' | 'heartbeat' | 'poll' | 'state';
export const KINDS: readonly Kind[] = ['hello', 'heartbeat', 'poll', 'state'];

export interface KindFigures {
  /** Requests answered in the window (a long poll counts when it answers). */
  requests: number;
  /** Requests still waiting for their answer at the end of the window. */
  inFlight: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface FleetFigures {
  /** Requests by kind over the measured window, with the latency each took. */
  byKind: Record<Kind, KindFigures>;
  documents: number;
  /** Documents the control plane acknowledged at the version sent. */
  acked: number;
  /** The first few errors seen, for the report. */
  errorSamples: string[];
}

interface SimDeployment {
  state: { deployment: Deployment; version: number; snapshots: Snapshot[] };
  nextAt: number;
}

interface SimNode {
  id: string;
  token: string;
  deployments: SimDeployment[];
}

const BATCH = 50;
const GB = 1e9;

const capacity = (deployments: number): Capacity => ({
  diskFreeBytes: 500 * GB,
  diskTotalBytes: 1000 * GB,
  volumeUsedBytes: deployments * GB,
  volumeReservedBytes: deployments * 4 * GB,
  deployments,
  runningServices: deployments,
  health: 'ok',
});

/**
 * SimulatedFleet: create() writes the nodes and placements, start() says
 * hello and sends every deployment's first document (not measured),
 * measure(ms) runs the fleet for a window and returns what it did, stop()
 * ends the loops (open long polls are aborted).
 */
export class SimulatedFleet {
  private readonly counts = new Map<Kind, { requests: number; errors: number; lat: number[] }>();
  private readonly inFlight = new Map<Kind, number>(KINDS.map((k) => [k, 0]));
  /** Bumped by reset(): an answer to a batch sent before it is not counted after it. */
  private generation = 0;
  private documents = 0;
  private acked = 0;
  private readonly errorSamples: string[] = [];
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private running = false;

  private constructor(
    private readonly opts: Required<FleetOptions>,
    private readonly nodes: SimNode[],
  ) {
    // Every open request of every node listens on the one signal: hundreds at once are expected.
    setMaxListeners(0, this.abort.signal);
    this.reset();
  }

  static async create(o: FleetOptions): Promise<SimulatedFleet> {
    const opts: Required<FleetOptions> = { heartbeatMs: 5000, stateEveryMs: 60_000, retention: 10, flushMs: 250, pollWaitMs: 20_000, ...o };
    const manifest = parseSdlOrThrow(opts.sdl);
    const catalogue = await openCatalogue(opts.databaseUrl);
    const nodes: SimNode[] = [];
    try {
      const now = Date.now();
      const user = await catalogue.ensureUser('bench-sim', 'user', now);
      for (let i = 0; i < opts.nodes; i++) {
        const token = newNodeToken();
        const node = await catalogue.addNode(`sim-${String(i + 1).padStart(4, '0')}`, hashNodeToken(token), now);
        const deployments: SimDeployment[] = [];
        for (let j = 0; j < opts.deploymentsPerNode; j++) {
          const id = newId('dep');
          await catalogue.place(id, user.id, node.id, now, 4 * GB);
          const deployment: Deployment = {
            id,
            userId: user.id,
            name: `sim-${i + 1}-${j + 1}`,
            sdl: opts.sdl,
            manifest,
            status: 'active',
            clonedFrom: null,
            createdAt: now,
            updatedAt: now,
            closedAt: null,
          };
          deployments.push({ state: { deployment, version: 0, snapshots: [] }, nextAt: 0 });
        }
        nodes.push({ id: node.id, token, deployments });
      }
    } finally {
      await catalogue.close();
    }
    return new SimulatedFleet(opts, nodes);
  }

  /** Counters start from zero again (the measured window begins). */
  reset(): void {
    for (const k of KINDS) this.counts.set(k, { requests: 0, errors: 0, lat: [] });
    this.documents = 0;
    this.acked = 0;
    this.generation++;
  }

  private async request(kind: Kind, node: SimNode, method: string, path: string, body?: unknown): Promise<unknown> {
    const c = this.counts.get(kind)!;
    const t = performance.now();
    this.inFlight.set(kind, this.inFlight.get(kind)! + 1);
    try {
      const res = await fetch(`${this.opts.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${node.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: this.abort.signal,
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
      c.requests++;
      c.lat.push(performance.now() - t);
      return JSON.parse(text) as unknown;
    } catch (err) {
      if (this.abort.signal.aborted) return null;
      c.requests++;
      c.errors++;
      if (this.errorSamples.length < 5) this.errorSamples.push(`${kind}: ${(err as Error).message}`);
      return null;
    } finally {
      this.inFlight.set(kind, this.inFlight.get(kind)! - 1);
    }
  }

  /** A new automatic snapshot for `d`, the oldest pruned beyond the retention, and the next version. */
  private advance(d: SimDeployment, at: number): DeploymentState {
    const s = d.state;
    const snap: Snapshot = {
      id: newId('snap'),
      deploymentId: s.deployment.id,
      label: null,
      status: 'ready',
      trigger: 'automatic',
      createdAt: at,
      readyAt: at + 1500,
      engineId: newId('eng'),
      sizeBytes: 1 * GB,
      storedBytes: 20e6,
      files: 1200,
      consistency: 'frozen',
      freezeMs: 25,
      error: null,
      warning: null,
      progressDone: null,
      progressTotal: null,
    };
    s.snapshots = [...s.snapshots, snap].slice(-this.opts.retention);
    s.version++;
    const stored = s.snapshots.reduce((a, x) => a + (x.storedBytes ?? 0), 0);
    return {
      deployment: s.deployment,
      version: s.version,
      settings: {
        deploymentId: s.deployment.id,
        enabled: true,
        intervalMs: this.opts.stateEveryMs,
        interval: `${Math.round(this.opts.stateEveryMs / 1000)}s`,
        retention: this.opts.retention,
        keepHourly: null,
        keepDaily: null,
        keepWeekly: null,
        keepMonthly: null,
        nextRunAt: at + this.opts.stateEveryMs,
        updatedAt: s.deployment.createdAt,
      },
      snapshots: s.snapshots,
      restores: [],
      operation: null,
      services: [{ name: 'db', state: 'running', startedAt: new Date(s.deployment.createdAt).toISOString(), exitCode: null }],
      volumeBytes: { 'db.data': GB },
      snapshotSummary: {
        count: s.snapshots.length,
        sizeBytes: s.snapshots.length * GB,
        storedBytes: stored,
        lastSnapshotAt: new Date(at).toISOString(),
      },
    };
  }

  private async sendStates(node: SimNode, docs: DeploymentState[]): Promise<void> {
    for (let i = 0; i < docs.length; i += BATCH) {
      const batch = docs.slice(i, i + BATCH);
      this.documents += batch.length;
      const generation = this.generation;
      const reply = (await this.request('state', node, 'POST', NODE_PATHS.state, { deployments: batch })) as StateReply | null;
      if (!reply || generation !== this.generation) continue;
      const held = new Map(reply.acked.map((a) => [a.deploymentId, a.version]));
      for (const d of batch) if (held.get(d.deployment.id) === d.version) this.acked++;
    }
  }

  /** start: every node says hello and sends each deployment's first document (with `retention` snapshots), a few nodes at a time. */
  async start(concurrency = 8): Promise<void> {
    const queue = [...this.nodes];
    const now = Date.now();
    const worker = async (): Promise<void> => {
      for (let n = queue.shift(); n; n = queue.shift()) {
        await this.request('hello', n, 'POST', NODE_PATHS.hello, {
          protocol: PROTOCOL_VERSION,
          version: 'bench',
          runtime: 'process',
          bootId: newId('boot'),
        });
        const docs: DeploymentState[] = [];
        for (const d of n.deployments) {
          let doc: DeploymentState | undefined;
          for (let k = 0; k < this.opts.retention; k++) doc = this.advance(d, now - (this.opts.retention - k) * this.opts.stateEveryMs);
          docs.push(doc!);
        }
        await this.sendStates(n, docs);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const failed = KINDS.reduce((a, k) => a + this.counts.get(k)!.errors, 0);
    if (failed > 0) throw new Error(`the fleet could not start: ${this.errorSamples.join('; ')}`);
    // Each deployment's next document at its own phase of the period; heartbeats spread likewise.
    const begin = Date.now();
    this.nodes.forEach((n, i) =>
      n.deployments.forEach((d, j) => {
        const slot = i * this.opts.deploymentsPerNode + j;
        d.nextAt = begin + ((slot * this.opts.stateEveryMs) / (this.nodes.length * this.opts.deploymentsPerNode) + 1);
      }),
    );
    this.running = true;
    this.nodes.forEach((n, i) => {
      this.loops.push(this.heartbeatLoop(n, (i * this.opts.heartbeatMs) / this.nodes.length));
      this.loops.push(this.pollLoop(n));
      this.loops.push(this.stateLoop(n));
    });
  }

  /** sleep resolves after `ms`, or at once when the fleet stops. */
  private sleep(ms: number): Promise<void> {
    return sleep(ms, this.abort.signal);
  }

  private async heartbeatLoop(n: SimNode, offsetMs: number): Promise<void> {
    await this.sleep(offsetMs);
    while (this.running) {
      const t = Date.now();
      await this.request('heartbeat', n, 'POST', NODE_PATHS.heartbeat, { capacity: capacity(n.deployments.length) });
      await this.sleep(Math.max(0, this.opts.heartbeatMs - (Date.now() - t)));
    }
  }

  private async pollLoop(n: SimNode): Promise<void> {
    while (this.running) {
      const r = await this.request('poll', n, 'GET', `${NODE_PATHS.operations}?waitMs=${this.opts.pollWaitMs}`);
      // Nobody asks the simulated nodes anything; after an error, back off as the agent does.
      if (r === null && this.running) await this.sleep(200);
    }
  }

  private async stateLoop(n: SimNode): Promise<void> {
    while (this.running) {
      const now = Date.now();
      const due = n.deployments.filter((d) => d.nextAt <= now);
      if (due.length > 0) {
        for (const d of due) d.nextAt += this.opts.stateEveryMs;
        await this.sendStates(
          n,
          due.map((d) => this.advance(d, now)),
        );
      }
      await this.sleep(this.opts.flushMs);
    }
  }

  /** figures: what the fleet did since the last reset(). */
  figures(): FleetFigures {
    const byKind = {} as Record<Kind, KindFigures>;
    for (const k of KINDS) {
      const c = this.counts.get(k)!;
      const lat = c.lat.slice().sort((a, b) => a - b);
      byKind[k] = {
        requests: c.requests,
        inFlight: this.inFlight.get(k)!,
        errors: c.errors,
        p50Ms: percentile(lat, 50),
        p99Ms: percentile(lat, 99),
      };
    }
    return { byKind, documents: this.documents, acked: this.acked, errorSamples: [...this.errorSamples] };
  }

  /** stop ends every loop and the open long polls. */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }
}
