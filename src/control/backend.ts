/**
 * backend: the API's workflows in network mode, over the catalogue and the
 * nodes. It implements the interfaces the routes use (src/api/deps.ts), so
 * the control plane serves the same routes, shapes and error codes as the
 * all-in-one.
 *
 * Reads come from the deployment documents the nodes reported (the
 * catalogue), turned into the API's JSON by the same views. Mutations and
 * questions the node must answer (restore plan, retention preview) pick
 * their ids here, go to the deployment's node (dispatch.ts) and answer with
 * the state it returned. A user sees only their own deployments: any other
 * is DEPLOYMENT_NOT_FOUND, exactly like one that does not exist.
 */
import type { DeploymentsApi, NodesApi, RestoresApi, SettingsApi, SnapshotsApi } from '../api/deps.js';
import type * as Api from '../api/contract.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { ConflictError, KovaError, NotFoundError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Deployment } from '../db/deployments.js';
import type { Restore } from '../db/restores.js';
import type { SnapshotSettings } from '../db/settings.js';
import type { Snapshot } from '../db/snapshots.js';
import type { DeploymentState, OperationPayload } from '../network/protocol.js';
import { parseSdlOrThrow } from '../sdl/parse-sdl.js';
import type { SelectionRequest } from '../services/restore-paths.js';
import type { PathPlan, RestorePlanResult } from '../services/restore-service.js';
import type { RetentionPreview, SettingsInput } from '../services/settings-service.js';
import { validateLabel } from '../services/snapshot-service.js';
import type { DeploymentExtras } from '../services/views.js';
import { type Catalogue, type CatalogueDeployment, type CatalogueNode, nodeStatus } from './catalogue.js';
import { type Dispatcher, type Done } from './dispatch.js';
import { ForbiddenError, NoNodeAvailableError, NodeUnavailableError, NotInNetworkModeError } from './errors.js';
import { place } from './placement.js';

/** Restores a deployment's list shows, newest first (as the all-in-one's). */
const RESTORES_LISTED = 50;

const newestFirst = <T extends { createdAt: number }>(xs: readonly T[]): T[] => [...xs].sort((a, b) => b.createdAt - a.createdAt);

const GB = 1e9;

export interface BackendOptions {
  /**
   * The one node every new deployment goes to, without weighing capacity
   * (`kova serve`: its local node decides whether it has room, as it always
   * did). Default: placement among the online nodes (placement.ts).
   */
  readonly onlyNode?: string;
  /** Whether a deployment's view names its node. Default true; `kova serve` shows `node: null`. */
  readonly showNode?: boolean;
}

export class ControlBackend {
  readonly deployments: DeploymentsApi;
  readonly snapshots: SnapshotsApi;
  readonly restores: RestoresApi;
  readonly settings: SettingsApi;
  readonly nodes: NodesApi;
  /** Browsing goes through the node's repository: not served by the control plane (501). */
  readonly browse = {
    open: (): Promise<never> => Promise.reject(new NotInNetworkModeError('browsing snapshots')),
    read: (): Promise<never> => Promise.reject(new NotInNetworkModeError('browsing snapshots')),
    diff: (): Promise<never> => Promise.reject(new NotInNetworkModeError('comparing snapshots')),
  };

  constructor(
    private readonly catalogue: Catalogue,
    private readonly dispatcher: Dispatcher,
    private readonly clock: Clock,
    private readonly nodeTimeoutMs: number,
    private readonly opts: BackendOptions = {},
  ) {
    this.deployments = {
      create: (userId, sdl, name) => this.create(userId, sdl, name),
      list: async (userId) => (await catalogue.deploymentsOf(userId)).flatMap((d) => (d.state ? [d.state.deployment] : [])),
      get: async (userId, id) => (await this.owned(userId, id)).state.deployment,
      update: (userId, id, sdl, snapshot) => {
        parseSdlOrThrow(sdl);
        return this.onActive(userId, id, { kind: 'update', deploymentId: id, sdl, snapshot }, (_d, s) => s.deployment);
      },
      restart: (userId, id) => this.onActive(userId, id, { kind: 'restart', deploymentId: id }, (_d, s) => s.deployment),
      close: (userId, id) => this.onActive(userId, id, { kind: 'close', deploymentId: id }, (_d, s) => s.deployment),
      clone: (userId, id, snapId, name) => this.clone(userId, id, snapId, name),
      extras: (d) => this.extras(d),
    };
    this.snapshots = {
      list: async (userId, depId) => newestFirst((await this.active(userId, depId)).state.snapshots),
      get: async (userId, depId, snapId) => snapshotIn((await this.active(userId, depId)).state, snapId),
      create: (userId, depId, label) => {
        const clean = validateLabel(label);
        const snapshotId = newId('snap');
        return this.onActive(userId, depId, { kind: 'snapshot', deploymentId: depId, snapshotId, label: clean }, (_d, s) =>
          reported(s.snapshots, snapshotId, 'snapshot'),
        );
      },
      delete: async (userId, depId, snapId) => {
        await this.onActive(userId, depId, { kind: 'delete-snapshot', deploymentId: depId, snapshotId: snapId }, () => undefined);
      },
    };
    this.restores = {
      list: async (userId, depId) =>
        newestFirst((await this.active(userId, depId)).state.restores)
          .slice(0, RESTORES_LISTED)
          .map(asRestore),
      get: async (userId, depId, restoreId) => {
        const r = (await this.active(userId, depId)).state.restores.find((x) => x.id === restoreId);
        if (!r) throw new NotFoundError('RESTORE_NOT_FOUND', `restore ${restoreId} not found`);
        return asRestore(r);
      },
      plan: (userId, depId, snapId, wanted) =>
        this.ask(userId, depId, { kind: 'restore-plan', deploymentId: depId, snapshotId: snapId, ...selection(wanted) }, (v) =>
          planFromView(v as Api.RestorePlan),
        ),
      request: (userId, depId, snapId, safetySnapshot, wanted) => {
        const restoreId = newId('rst');
        return this.onActive(
          userId,
          depId,
          { kind: 'restore', deploymentId: depId, restoreId, snapshotId: snapId, safetySnapshot, ...selection(wanted) },
          (_d, s) => asRestore(reported(s.restores, restoreId, 'restore')),
        );
      },
    };
    this.settings = {
      get: async (userId, depId) => (await this.active(userId, depId)).state.settings,
      put: (userId, depId, input: SettingsInput): Promise<SnapshotSettings> =>
        this.onActive(userId, depId, { kind: 'settings', deploymentId: depId, input }, (_d, s) => s.settings),
      preview: (userId, depId, input) =>
        this.ask(userId, depId, { kind: 'settings-preview', deploymentId: depId, input }, (v) =>
          previewFromView(v as Api.RetentionPreview),
        ),
    };
    this.nodes = { list: (userId) => this.listNodes(userId) };
  }

  /* ---- reads ------------------------------------------------------------------------ */

  /** owned: the caller's deployment that a node has confirmed, else 404 (another user's looks missing). */
  private async owned(userId: string, id: string): Promise<CatalogueDeployment & { state: DeploymentState }> {
    const d = await this.catalogue.deployment(id);
    if (!d || d.userId !== userId || d.state === null) throw new NotFoundError('DEPLOYMENT_NOT_FOUND', `deployment ${id} not found`);
    return d as CatalogueDeployment & { state: DeploymentState };
  }

  /** active: owned, and not closed (409 DEPLOYMENT_NOT_ACTIVE: closing is final, so the catalogue's word is enough). */
  private async active(userId: string, id: string): Promise<CatalogueDeployment & { state: DeploymentState }> {
    const d = await this.owned(userId, id);
    const status = d.state.deployment.status;
    if (status !== 'active') throw new ConflictError('DEPLOYMENT_NOT_ACTIVE', `deployment ${id} is ${status}`);
    return d;
  }

  private async node(id: string): Promise<CatalogueNode> {
    const n = await this.catalogue.node(id);
    // A node is removed only once it has no active deployment: its deployments stay readable, not writable.
    if (!n) throw new NodeUnavailableError(`the node this deployment ran on (${id}) has been removed`, { nodeId: id });
    return n;
  }

  private async extras(d: Deployment): Promise<DeploymentExtras> {
    const cd = await this.catalogue.deployment(d.id);
    const n = cd ? await this.catalogue.node(cd.nodeId) : undefined;
    const node =
      n && this.opts.showNode !== false ? { id: n.id, name: n.name, status: nodeStatus(n, this.clock.now(), this.nodeTimeoutMs) } : null;
    const s = cd?.state;
    if (!s || d.status !== 'active') return { operation: null, node };
    return { services: s.services, volumeBytes: s.volumeBytes, snapshots: s.snapshotSummary, operation: s.operation, node };
  }

  private async listNodes(userId: string): Promise<Api.NodeSummary[]> {
    const user = await this.catalogue.user(userId);
    if (user?.role !== 'admin') throw new ForbiddenError('listing nodes needs an admin');
    const now = this.clock.now();
    return (await this.catalogue.nodes()).map((n) => ({
      id: n.id,
      name: n.name,
      status: nodeStatus(n, now, this.nodeTimeoutMs),
      lastHeartbeatAt: n.lastHeartbeatAt === null ? null : iso(n.lastHeartbeatAt),
      capacity: n.capacity ? { ...n.capacity } : null,
      deployments: n.deployments,
    }));
  }

  /* ---- mutations -------------------------------------------------------------------- */

  /** onActive runs an operation on the caller's active deployment and picks the answer from the state it returned. */
  private async onActive<T>(
    userId: string,
    depId: string,
    payload: OperationPayload,
    pick: (r: Done, state: DeploymentState) => T,
  ): Promise<T> {
    const d = await this.active(userId, depId);
    const r = await this.dispatcher.run(await this.node(d.nodeId), userId, payload);
    if (!r.state || r.state.deployment.id !== depId) throw missing('deployment', depId);
    return pick(r, r.state);
  }

  /** ask puts a question (it changes nothing) to the deployment's node and converts its answer. */
  private async ask<T>(userId: string, depId: string, payload: OperationPayload, convert: (value: unknown) => T): Promise<T> {
    const d = await this.active(userId, depId);
    const r = await this.dispatcher.run(await this.node(d.nodeId), userId, payload);
    if (r.value === undefined) throw new KovaError('INTERNAL_ERROR', `node answered ${payload.kind} without a value`, { status: 500 });
    return convert(r.value);
  }

  private async create(userId: string, sdl: string, name: unknown): Promise<Deployment> {
    const manifest = parseSdlOrThrow(sdl);
    const needed = manifest.services.reduce((sum, s) => sum + s.volumes.reduce((n, v) => n + v.sizeBytes, 0), 0);
    const now = this.clock.now();
    const nodes = (await this.catalogue.nodes()).map((n) => ({ ...n, status: nodeStatus(n, now, this.nodeTimeoutMs) }));
    const only = this.opts.onlyNode === undefined ? undefined : nodes.find((n) => n.id === this.opts.onlyNode);
    if (this.opts.onlyNode !== undefined && !only) throw new NodeUnavailableError(`node ${this.opts.onlyNode} is not registered`, {});
    const chosen = only ? ({ ok: true, node: only } as const) : place(nodes, needed);
    if (!chosen.ok) {
      const why =
        chosen.online === 0
          ? 'no node is online'
          : `no online node has room for its volumes (${(needed / GB).toFixed(1)} GB needed, at most ${(Math.max(0, chosen.largestRoom ?? 0) / GB).toFixed(1)} GB free on ${chosen.online} online node${chosen.online === 1 ? '' : 's'})`;
      throw new NoNodeAvailableError(`cannot place the deployment: ${why}; try again later`, { neededBytes: needed });
    }
    const node = nodes.find((n) => n.id === chosen.node.id)!;
    const id = newId('dep');
    const label = typeof name === 'string' ? name : (manifest.services[0]?.name ?? 'deployment');
    this.dispatcher.assertReachable(node);
    await this.catalogue.place(id, userId, node.id, now, needed);
    const r = await this.dispatcher.run(node, userId, { kind: 'deploy', deploymentId: id, name: label, sdl }, () =>
      this.catalogue.unplace(id),
    );
    if (!r.state || r.state.deployment.id !== id) throw missing('deployment', id);
    return r.state.deployment;
  }

  private async clone(userId: string, id: string, snapId: string, name: unknown): Promise<Deployment> {
    const src = await this.active(userId, id);
    const node = await this.node(src.nodeId);
    this.dispatcher.assertReachable(node);
    const newDeploymentId = newId('dep');
    const reserved = src.state.deployment.manifest.services.reduce((sum, s) => sum + s.volumes.reduce((n, v) => n + v.sizeBytes, 0), 0);
    await this.catalogue.place(newDeploymentId, userId, node.id, this.clock.now(), reserved);
    const payload = {
      kind: 'clone',
      deploymentId: id,
      newDeploymentId,
      snapshotId: snapId,
      name: typeof name === 'string' ? name : null,
    } as const;
    const r = await this.dispatcher.run(node, userId, payload, () => this.catalogue.unplace(newDeploymentId));
    const made = [r.state, ...(r.extraStates ?? [])].find((s) => s?.deployment.id === newDeploymentId);
    if (!made) throw missing('deployment', newDeploymentId);
    return made.deployment;
  }
}

/* ---- conversions ----------------------------------------------------------------------- */

function missing(what: string, id: string): KovaError {
  return new KovaError('INTERNAL_ERROR', `the node's answer does not hold ${what} ${id}`, { status: 500 });
}

function snapshotIn(state: DeploymentState, snapId: string): Snapshot {
  const s = state.snapshots.find((x) => x.id === snapId);
  if (!s) throw new NotFoundError('SNAPSHOT_NOT_FOUND', `snapshot ${snapId} not found`);
  return s;
}

function reported<T extends { id: string }>(xs: readonly T[], id: string, what: string): T {
  const x = xs.find((y) => y.id === id);
  if (!x) throw missing(what, id);
  return x;
}

/** asRestore: a restore as the views take it (the crash journal stays on the node). */
function asRestore(r: DeploymentState['restores'][number]): Restore {
  return { ...r, journal: {} };
}

/** selection: the payload field for a restore of selected paths (none for a full restore). */
function selection(wanted: SelectionRequest | undefined): { selection?: SelectionRequest } {
  return wanted && (wanted.paths !== undefined || wanted.mode !== undefined || wanted.into !== undefined) ? { selection: wanted } : {};
}

/** planFromView: the node answers a restore plan in the API's JSON; the route builds that JSON again from this. */
export function planFromView(v: Api.RestorePlan): RestorePlanResult {
  return {
    mapping: { pairs: v.volumes, missing: v.missingVolumes, notInSnapshot: v.untouchedVolumes },
    refusal: v.refusal ? new KovaError(v.refusal.code, v.refusal.message, { status: 409 }) : null,
    selection:
      v.mode && v.paths
        ? {
            mode: v.mode,
            into: v.into,
            paths: v.paths.map((x) => ({ ...x, type: x.type as PathPlan['type'], removed: [...x.removed] })),
          }
        : null,
  };
}

/** previewFromView: a retention preview's ISO times back to milliseconds. */
export function previewFromView(v: Api.RetentionPreview): RetentionPreview {
  return {
    description: v.description,
    keep: v.keep.map((k) => ({ id: k.id, createdAt: Date.parse(k.createdAt), reasons: k.reasons })),
    prune: v.prune.map((p) => ({ id: p.id, createdAt: Date.parse(p.createdAt) })),
  };
}
