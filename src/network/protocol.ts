/**
 * protocol: what a node and the control plane say to each other.
 *
 * The node always dials out (a provider behind NAT needs no inbound port):
 * every exchange is an HTTP request from the node to one control-plane
 * replica, authenticated with the node's token (`Authorization: Bearer
 * kova_node_…`). Any replica answers any request: everything they share is
 * in the control plane's database, so a node that loses one replica carries
 * on with the next URL it was given.
 *
 *   POST /node/v1/hello                  → who am I (node id, name, timings)
 *   POST /node/v1/heartbeat              capacity, every heartbeatIntervalMs
 *   GET  /node/v1/operations?waitMs=N    long poll: operations not yet finished
 *   POST /node/v1/operations/:id/result  the outcome of one operation
 *   POST /node/v1/state                  deployment documents that changed
 *
 * Delivery is at least once, application is exactly once: an operation is
 * handed out again until its result is recorded (after a reconnect, a crash
 * of the node or of a replica), and the node applies each operation id once
 * (its local journal keeps the result of every applied id and answers a
 * repeat with it; objects an operation creates carry ids the control plane
 * chose, so a repeat finds them instead of creating twins).
 *
 * The catalogue converges by whole documents: a node sends the full state of
 * each deployment whose state changed (rows, settings, snapshots, restores,
 * live service states), tagged with a version that only grows; the control
 * plane keeps, per deployment, the newest version it saw and replaces older
 * state wholesale. Snapshots taken or pruned while the two could not talk
 * therefore appear or disappear on the next document, with no operator step.
 */
import type { SnapshotSummary } from '../api/contract.js';
import type { Deployment } from '../db/deployments.js';
import type { Restore } from '../db/restores.js';
import type { SettingsWithOffsite } from '../services/settings-service.js';
import type { Snapshot } from '../db/snapshots.js';
import type { ServiceStatus } from '../runtime/types.js';
import type { OffsiteCloneRequest, RecoverRequest } from '../services/offsite-move.js';
import type { SelectionRequest } from '../services/restore-paths.js';
import type { SettingsInput } from '../services/settings-service.js';

/** Bumped when a change is not backward compatible; a replica refuses a node that speaks another. */
export const PROTOCOL_VERSION = 1;

export const NODE_PATHS = {
  hello: '/node/v1/hello',
  heartbeat: '/node/v1/heartbeat',
  operations: '/node/v1/operations',
  result: (opId: string) => `/node/v1/operations/${encodeURIComponent(opId)}/result`,
  state: '/node/v1/state',
} as const;

/** Node tokens: the prefix tells them apart from users' API keys (`kova_…`) in logs and in errors. */
export const NODE_TOKEN_PREFIX = 'kova_node_';

/** Longest a replica holds a long poll open (the node asks for less; the replica caps it). */
export const MAX_POLL_WAIT_MS = 25_000;

// ---------------------------------------------------------------- hello

export interface HelloRequest {
  readonly protocol: number;
  readonly version: string;
  readonly runtime: 'docker' | 'process';
  /** Changes on every start of the node process: tells the control plane the node restarted. */
  readonly bootId: string;
  /**
   * The off-node target the node copies snapshots to, without credentials
   * (offsite-target.ts, targetIdentity); absent or null: none. A deployment
   * is recovered only onto a node that names the same target.
   */
  readonly offsiteTarget?: string | null;
}

export interface HelloReply {
  readonly protocol: number;
  readonly nodeId: string;
  readonly name: string;
  /** How often the control plane expects a heartbeat. */
  readonly heartbeatIntervalMs: number;
  /** After how long without one it marks the node offline (`--node-timeout`). */
  readonly nodeTimeoutMs: number;
}

// ---------------------------------------------------------------- heartbeat

/** What a node can take: placement reads it, GET /api/v1/nodes shows it. */
export interface Capacity {
  /** Bytes free and total on the file system of the node's data directory. */
  readonly diskFreeBytes: number;
  readonly diskTotalBytes: number;
  /** Bytes the node's volumes use now, and the sum of their SDL sizes (what it promised). */
  readonly volumeUsedBytes: number;
  readonly volumeReservedBytes: number;
  /** Deployments active on the node, and their services running now. */
  readonly deployments: number;
  readonly runningServices: number;
  /** `degraded` when the data disk is full or failing (see DiskHealth). */
  readonly health: 'ok' | 'degraded';
}

export interface HeartbeatRequest {
  readonly capacity: Capacity;
}

// ---------------------------------------------------------------- operations

/**
 * Operations the control plane asks of a node. Ids of objects an operation
 * creates (deployments, snapshots, restores, clones) are chosen by the
 * control plane and carried in the payload.
 */
export type OperationPayload =
  /** Create a deployment (the user row is created on the node from userId if missing). */
  | { readonly kind: 'deploy'; readonly deploymentId: string; readonly name: string; readonly sdl: string }
  | { readonly kind: 'update'; readonly deploymentId: string; readonly sdl: string; readonly snapshot: boolean }
  | { readonly kind: 'restart'; readonly deploymentId: string }
  | { readonly kind: 'close'; readonly deploymentId: string }
  | { readonly kind: 'snapshot'; readonly deploymentId: string; readonly snapshotId: string; readonly label: string | null }
  | { readonly kind: 'delete-snapshot'; readonly deploymentId: string; readonly snapshotId: string }
  | {
      readonly kind: 'restore';
      readonly deploymentId: string;
      readonly restoreId: string;
      readonly snapshotId: string;
      readonly safetySnapshot: boolean;
      /** Restore only these paths (in place or alongside); absent: everything. */
      readonly selection?: SelectionRequest;
    }
  /** Clone onto the same node: a new deployment `newDeploymentId` from `snapshotId`. */
  | {
      readonly kind: 'clone';
      readonly deploymentId: string;
      readonly newDeploymentId: string;
      readonly snapshotId: string;
      readonly name: string | null;
    }
  | { readonly kind: 'settings'; readonly deploymentId: string; readonly input: SettingsInput }
  /**
   * Take over a deployment whose node is offline or gone, from its off-node
   * copy (services/offsite-move.ts): the deployment, settings and copied
   * snapshots as the catalogue holds them, and the snapshot to start from.
   */
  | ({ readonly kind: 'recover'; readonly deploymentId: string } & RecoverRequest)
  /**
   * Clone a snapshot of a deployment whose node is offline, from its
   * off-node copy: a new deployment `deploymentId` like `source`, whose
   * volumes start from the snapshot (engine id `engineId`).
   */
  | ({ readonly kind: 'clone-offsite'; readonly deploymentId: string } & OffsiteCloneRequest)
  /** The deployment was recovered on another node: stop its services and forget it, leaving its data on disk. */
  | { readonly kind: 'forget'; readonly deploymentId: string }
  // Questions: they change nothing on the node; their result is the answer.
  | { readonly kind: 'restore-plan'; readonly deploymentId: string; readonly snapshotId: string; readonly selection?: SelectionRequest }
  | { readonly kind: 'settings-preview'; readonly deploymentId: string; readonly input: SettingsInput };

export type OperationKind = OperationPayload['kind'];

export interface Operation {
  /** `op-…`: the id the node applies once. */
  readonly id: string;
  /** The user the operation acts for: the node checks the deployment is theirs. */
  readonly userId: string;
  readonly payload: OperationPayload;
  /** Milliseconds since the epoch when the control plane recorded it. */
  readonly createdAt: number;
}

export interface OperationsReply {
  /** Unfinished operations for this node, oldest first (possibly handed out before). */
  readonly operations: readonly Operation[];
}

/** A failure as the API reports it: the control plane answers the user with the same code and status. */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly status: number;
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The outcome of one operation. `state` is the document of the deployment
 * the operation touched (and, for a clone, `extraStates` the new one), so
 * the catalogue holds the effect before the user gets the answer.
 * `value` carries what a question returns (a restore plan, a preview) in the
 * API's JSON form.
 */
export type OperationResult =
  | {
      readonly ok: true;
      readonly state: DeploymentState | null;
      readonly extraStates?: readonly DeploymentState[];
      readonly value?: unknown;
    }
  | { readonly ok: false; readonly error: WireError };

// ---------------------------------------------------------------- state

/** A restore as the catalogue keeps it: the node's crash journal stays on the node. */
export type RestoreState = Omit<Restore, 'journal'>;

/** Everything the control plane shows about one deployment, as the node has it. */
export interface DeploymentState {
  readonly deployment: Deployment;
  /** Grows with every change on the node; the catalogue ignores a document older than the one it has. */
  readonly version: number;
  /** With `offsite: {enabled}` when the node copies off-node, else `offsite: null`. */
  readonly settings: SettingsWithOffsite;
  /** Every snapshot the node has for the deployment (deleted ones are absent), each with its off-node copy. */
  readonly snapshots: readonly Snapshot[];
  /** The off-node target the snapshots' copies are in (targetIdentity); absent or null: the node makes none. */
  readonly offsiteTarget?: string | null;
  readonly restores: readonly RestoreState[];
  /** The operation queued or running on the node (deploy, snapshot, restore, …), as deployments show it. */
  readonly operation: string | null;
  readonly services: readonly ServiceStatus[];
  /** Bytes used per volume ("service.volume"). */
  readonly volumeBytes: Readonly<Record<string, number>>;
  readonly snapshotSummary: SnapshotSummary;
}

export interface StateRequest {
  readonly deployments: readonly DeploymentState[];
}

export interface StateReply {
  /** Per deployment, the version the catalogue now holds (the node stops resending up to it). */
  readonly acked: ReadonlyArray<{ readonly deploymentId: string; readonly version: number }>;
}
