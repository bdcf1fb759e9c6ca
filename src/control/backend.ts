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
import type { BrowseApi, DeploymentsApi, NodesApi, RestoresApi, SettingsApi, SnapshotsApi, VerificationsApi } from '../api/deps.js';
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
import { ForbiddenError, NoNodeAvailableError, NodeUnavailableError } from './errors.js';
import { place } from './placement.js';
import { relayBrowse } from './relay-browse.js';
import { ReadRelay } from './relay.js';
import { controlVerifications } from './verifications.js';

/** Restores a deployment's list shows, newest first (as the all-in-one's). */
const RESTORES_LISTED = 50;

const newestFirst = <T extends { createdAt: number }>(xs: readonly T[]): T[] => [...xs].sort((a, b) => b.createdAt - a.createdAt);

/**
 * The snapshots of a catalogue document, newest first. Documents the
 * catalogue hands out are frozen and shared while their version holds, so
 * the sorted list is made once per document (and frozen, so the API's
 * route can keep its views of it the same way: routes/snapshots.ts).
 */
const sortedSnapshots = new WeakMap<readonly Snapshot[], readonly Snapshot[]>();
function snapshotsNewestFirst(xs: readonly Snapshot[]): Snapshot[] {
  if (!Object.isFrozen(xs)) return newestFirst(xs);
  let sorted = sortedSnapshots.get(xs);
  if (!sorted) {
    sorted = Object.freeze(newestFirst(xs));
    sortedSnapshots.set(xs, sorted);
  }
  return sorted as Snapshot[];
}

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
  /** The relay the node routes take answers for (node-routes.ts `relay`): one per replica. Default one without a logger. */
  readonly relay?: ReadRelay;
}

export class ControlBackend {
  readonly deployments: DeploymentsApi;
  readonly snapshots: SnapshotsApi;
  readonly restores: RestoresApi;
  readonly settings: SettingsApi;
  readonly nodes: NodesApi;
  /** Browsing, downloading and comparing snapshots: answered by the deployment's node through the relay (relay-browse.ts). */
  readonly browse: BrowseApi;
  /** The relay the node routes take answers for (node-routes.ts `relay`): one per replica. */
  readonly relay: ReadRelay;
  /** Checks of a deployment's stored data, run by its node (verifications.ts). */
  readonly verifications: VerificationsApi;

  constructor(
    private readonly catalogue: Catalogue,
    private readonly dispatcher: Dispatcher,
    private readonly clock: Clock,
    private readonly nodeTimeoutMs: number,
    private readonly opts: BackendOptions = {},
  ) {
    this.relay = opts.relay ?? new ReadRelay(catalogue, clock, null, { nodeTimeoutMs });
    this.browse = relayBrowse(this.relay, (userId, depId, snapId) => this.readable(userId, depId, snapId));
    this.verifications = controlVerifications(this.relay, dispatcher, {
      active: (userId, depId) => this.active(userId, depId),
      node: (id) => this.node(id),
    });
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
      recover: (userId, id, snapId) => this.recover(userId, id, snapId),
      extras: (d) => this.extras(d),
    };
    this.snapshots = {
      list: async (userId, depId) => snapshotsNewestFirst((await this.active(userId, depId)).state.snapshots),
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

  /**
   * readable: the node to read a snapshot of the caller's deployment on,
   * checked as the all-in-one checks (404 deployment, 404 snapshot, 409
   * not ready), then online (503 NODE_UNAVAILABLE, nothing asked).
   */
  private async readable(userId: string, depId: string, snapId: string): Promise<CatalogueNode> {
    const d = await this.owned(userId, depId);
    const snap = snapshotIn(d.state, snapId);
    if (snap.status !== 'ready' || !snap.engineId)
      throw new ConflictError('SNAPSHOT_NOT_READY', `snapshot ${snapId} is ${snap.status}, not ready`);
    const n = await this.node(d.nodeId);
    this.dispatcher.assertReachable(n);
    return n;
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
      n && this.opts.showNode !== false
        ? {
            id: n.id,
            name: n.name,
            status: nodeStatus(n, this.clock.now(), this.nodeTimeoutMs),
            lastHeartbeatAt: n.lastHeartbeatAt === null ? null : iso(n.lastHeartbeatAt),
          }
        : null;
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
      offsiteTarget: n.offsiteTarget,
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
    const srcNode = await this.catalogue.node(src.nodeId);
    if (!srcNode || nodeStatus(srcNode, this.clock.now(), this.nodeTimeoutMs) === 'offline') {
      return this.cloneFromCopy(userId, src, srcNode, snapId, name);
    }
    const node = srcNode;
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

  /**
   * retryRecovery asks the node a failed recovery left the deployment on to
   * run its recover job again (no move: the deployment is that node's).
   */
  private async retryRecovery(
    userId: string,
    d: CatalogueDeployment & { state: DeploymentState },
    node: CatalogueNode,
    snapId: string | undefined,
    now: number,
  ): Promise<{ deployment: Deployment; recovery: Api.Recovery }> {
    const copied = newestFirst(d.state.snapshots.filter((s) => s.status === 'ready' && s.engineId && s.offsite?.status === 'copied'));
    const chosen = snapId === undefined ? copied[0] : copied.find((s) => s.id === snapId);
    if (!chosen) {
      if (snapId !== undefined) snapshotIn(d.state, snapId);
      throw new ConflictError(
        snapId === undefined ? 'NO_OFFSITE_COPY' : 'SNAPSHOT_NOT_COPIED',
        `deployment ${d.id} has no snapshot copied off-node to recover it from again`,
      );
    }
    const operationId = newId('op');
    const payload: OperationPayload = {
      kind: 'recover',
      deploymentId: d.id,
      deployment: d.state.deployment,
      settings: d.state.settings,
      snapshots: copied,
      snapshotId: chosen.id,
    };
    const r = await this.dispatcher.run(node, userId, payload, undefined, { id: operationId });
    if (!r.state || r.state.deployment.id !== d.id) throw missing('deployment', d.id);
    const from = d.movedFrom === null ? undefined : await this.catalogue.node(d.movedFrom);
    return {
      deployment: r.state.deployment,
      recovery: {
        operationId,
        snapshotId: chosen.id,
        fromNode: { id: d.movedFrom ?? node.id, name: from?.name ?? null },
        toNode: { id: node.id, name: node.name },
        createdAt: iso(now),
      },
    };
  }

  /**
   * cloneFromCopy clones a snapshot of a deployment whose node is offline or
   * removed from the snapshot's off-node copy, onto a node placed as a
   * recovery places (same target, room for the volumes). Without a copy it
   * answers as before: 503 NODE_UNAVAILABLE (the snapshot lives only on
   * that node).
   */
  private async cloneFromCopy(
    userId: string,
    src: CatalogueDeployment & { state: DeploymentState },
    srcNode: CatalogueNode | undefined,
    snapId: string,
    name: unknown,
  ): Promise<Deployment> {
    const s = snapshotIn(src.state, snapId);
    if (s.status !== 'ready' || !s.engineId) throw new ConflictError('SNAPSHOT_NOT_READY', `snapshot ${snapId} is ${s.status}, not ready`);
    const target = src.state.offsiteTarget ?? srcNode?.offsiteTarget ?? null;
    if (s.offsite?.status !== 'copied' || !target) {
      if (srcNode) throw NodeUnavailableError.offline(srcNode);
      throw new NodeUnavailableError(`the node this deployment ran on (${src.nodeId}) has been removed`, { nodeId: src.nodeId });
    }
    const now = this.clock.now();
    const needed = reservedBytes(src.state.deployment);
    const nodes = (await this.catalogue.nodes())
      .filter((n) => n.id !== src.nodeId && n.offsiteTarget === target)
      .map((n) => ({ ...n, status: nodeStatus(n, now, this.nodeTimeoutMs) }));
    const placed = place(nodes, needed);
    if (!placed.ok) {
      throw new NodeUnavailableError(
        `cannot clone snapshot ${snapId} from its off-node copy: no online node copying to ${target} has room for its volumes; try again later`,
        { neededBytes: needed, offsiteTarget: target },
      );
    }
    const node = nodes.find((n) => n.id === placed.node.id)!;
    this.dispatcher.assertReachable(node);
    const newDeploymentId = newId('dep');
    await this.catalogue.place(newDeploymentId, userId, node.id, now, needed);
    const payload: OperationPayload = {
      kind: 'clone-offsite',
      deploymentId: newDeploymentId,
      source: src.state.deployment,
      snapshotId: s.id,
      engineId: s.engineId,
      name: typeof name === 'string' ? name : null,
    };
    const r = await this.dispatcher.run(node, userId, payload, () => this.catalogue.unplace(newDeploymentId));
    if (!r.state || r.state.deployment.id !== newDeploymentId) throw missing('deployment', newDeploymentId);
    return r.state.deployment;
  }

  /**
   * recover runs a deployment whose node is offline or removed on another
   * node, from its off-node copy. Checks, in order: the caller's active
   * deployment (404), its node offline or removed (409 NODE_ONLINE; but a
   * deployment a failed recovery left on an online node, not running and
   * with no operation, is recovered again there: retryRecovery), the
   * snapshot copied off-node (409 SNAPSHOT_NOT_COPIED, NO_OFFSITE_COPY), a
   * healthy node copying to the same target with room (503
   * NODE_UNAVAILABLE). Then, in one transaction, the deployment is moved to
   * that node with the `recover` operation for it and a `forget` for the
   * old node (handed out when it is back); the request waits for the new
   * node's answer like any other. If the new node refuses, the move is
   * undone. Two recoveries at once: the second finds the deployment moved
   * (409 DEPLOYMENT_MOVED).
   */
  private async recover(
    userId: string,
    id: string,
    snapId: string | undefined,
  ): Promise<{ deployment: Deployment; recovery: Api.Recovery }> {
    const d = await this.active(userId, id);
    const now = this.clock.now();
    const old = await this.catalogue.node(d.nodeId);
    const oldStatus = old ? nodeStatus(old, now, this.nodeTimeoutMs) : null;
    if (old && oldStatus !== 'offline' && recoveryFailed(d)) return this.retryRecovery(userId, d, old, snapId, now);
    if (old && oldStatus !== 'offline') {
      throw new ConflictError(
        'NODE_ONLINE',
        `deployment ${id} runs on node ${old.name}, which is ${oldStatus}: recovery is for a deployment whose node is offline or removed; to go back to a snapshot, restore it`,
        { nodeId: old.id, nodeStatus: oldStatus },
      );
    }
    const state = d.state;
    const copied = newestFirst(state.snapshots.filter((s) => s.status === 'ready' && s.engineId && s.offsite?.status === 'copied'));
    let chosen: Snapshot | undefined;
    if (snapId !== undefined) {
      const s = snapshotIn(state, snapId);
      chosen = copied.find((x) => x.id === s.id);
      if (!chosen) {
        throw new ConflictError(
          'SNAPSHOT_NOT_COPIED',
          `snapshot ${snapId} has no off-node copy (${s.offsite ? `its copy is ${s.offsite.status}` : 'none was made'}); choose one whose copy is copied`,
          { snapshotId: snapId, offsite: s.offsite?.status ?? null },
        );
      }
    } else chosen = copied[0];
    const target = state.offsiteTarget ?? old?.offsiteTarget ?? null;
    if (!chosen || !target) {
      throw new ConflictError(
        'NO_OFFSITE_COPY',
        `deployment ${id} has no snapshot copied off its node: there is nothing to recover it from`,
      );
    }
    const needed = reservedBytes(state.deployment);
    const nodes = (await this.catalogue.nodes())
      .filter((n) => n.id !== d.nodeId && n.offsiteTarget === target)
      .map((n) => ({ ...n, status: nodeStatus(n, now, this.nodeTimeoutMs) }));
    const placed = place(nodes, needed);
    if (!placed.ok) {
      const why =
        placed.online === 0
          ? `no other node copying to ${target} is online`
          : `no online node copying to ${target} has room for its volumes (${(needed / GB).toFixed(1)} GB needed)`;
      throw new NodeUnavailableError(`cannot recover deployment ${id}: ${why}; try again later`, {
        neededBytes: needed,
        offsiteTarget: target,
      });
    }
    const node = nodes.find((n) => n.id === placed.node.id)!;
    const forget = { id: newId('op'), userId, payload: { kind: 'forget', deploymentId: id } as const, createdAt: now };
    const payload: OperationPayload = {
      kind: 'recover',
      deploymentId: id,
      deployment: state.deployment,
      settings: state.settings,
      snapshots: copied,
      snapshotId: chosen.id,
    };
    const operationId = newId('op');
    let moved = false;
    const r = await this.dispatcher.run(
      node,
      userId,
      payload,
      async () => {
        if (moved) await this.catalogue.moveBack(id, d.nodeId, node.id, old ? [forget.id] : [], this.clock.now());
      },
      {
        id: operationId,
        enqueue: async (op) => {
          const ops = [{ op, nodeId: node.id }, ...(old ? [{ op: forget, nodeId: old.id }] : [])];
          moved = await this.catalogue.move(id, d.nodeId, node.id, needed, ops, now);
          if (!moved) throw new ConflictError('DEPLOYMENT_MOVED', `deployment ${id} was moved to another node meanwhile`);
        },
      },
    );
    if (!r.state || r.state.deployment.id !== id) throw missing('deployment', id);
    return {
      deployment: r.state.deployment,
      recovery: {
        operationId,
        snapshotId: chosen.id,
        fromNode: { id: d.nodeId, name: old?.name ?? null },
        toNode: { id: node.id, name: node.name },
        createdAt: iso(now),
      },
    };
  }
}

/**
 * recoveryFailed: the deployment was moved here by a recovery and is not
 * running, with no operation in progress: its recover job failed (the
 * bucket stopped answering midway), and a recovery may be asked again.
 */
function recoveryFailed(d: CatalogueDeployment & { state: DeploymentState }): boolean {
  const s = d.state;
  return d.movedFrom !== null && s.operation === null && !(s.services.length > 0 && s.services.every((x) => x.state === 'running'));
}

/** reservedBytes: the volume storage a deployment's SDL asks for. */
function reservedBytes(d: Deployment): number {
  return d.manifest.services.reduce((sum, s) => sum + s.volumes.reduce((n, v) => n + v.sizeBytes, 0), 0);
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
