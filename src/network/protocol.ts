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
 *   POST /node/v1/reads/:id/response     the answer to a snapshot read, streamed
 *   POST /node/v1/events                 events for webhooks, from the node's outbox
 *
 * Snapshot reads (browsing, downloading, comparing) are not operations:
 * they change nothing, so they are handed out once (to a node that polls
 * with `reads=1`) and never journalled. The node answers each with its own
 * BrowseService and uploads the answer to the replica it talks to; the
 * control plane passes it to the user's request, across replicas through
 * its database (src/control/relay.ts). A page of a deployment's
 * verification history is a read too (kind `verifications`, answered by the
 * node's VerificationService); a check requested now is an operation
 * (kind `verify`, its verification id chosen by the control plane), and
 * where the checks stand travels in the deployment's document
 * (`verification`), so the settings show it without asking the node.
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
import type { VerificationStatus } from '../services/verification-service.js';

/** Bumped when a change is not backward compatible; a replica refuses a node that speaks another. */
export const PROTOCOL_VERSION = 1;

export const NODE_PATHS = {
  hello: '/node/v1/hello',
  heartbeat: '/node/v1/heartbeat',
  operations: '/node/v1/operations',
  result: (opId: string) => `/node/v1/operations/${encodeURIComponent(opId)}/result`,
  state: '/node/v1/state',
  readResponse: (readId: string) => `/node/v1/reads/${encodeURIComponent(readId)}/response`,
  events: '/node/v1/events',
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
   * Check the deployment's stored data now: the next part of the rotation,
   * or all of it with `full`. The check's id `verificationId` is chosen by
   * the control plane; the result's value is the check's row
   * (db/verifications.ts Verification), queued.
   */
  | { readonly kind: 'verify'; readonly deploymentId: string; readonly verificationId: string; readonly full: boolean }
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
  /**
   * Reads of snapshots waiting for this node (see "reads" below), each
   * handed out once; only to a node that asked with `?reads=1` (an older
   * node neither asks nor gets any).
   */
  readonly reads?: readonly ReadRequest[];
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

// ---------------------------------------------------------------- reads

/** The long poll's query flag by which a node says it answers reads. */
export const READS_QUERY = 'reads=1';

/**
 * What a user's browse request asks of the deployment's node. Paths are
 * the components of the shown path, each base64 of its raw bytes (names
 * need not be UTF-8); cursors are the API's opaque cursors, passed through.
 */
export type ReadPayload =
  /** One page of a directory (JSON answer: `{ entries, cursor }`). */
  | {
      readonly kind: 'list';
      readonly path: readonly string[];
      readonly cursor?: string;
      readonly limit?: number;
      readonly q?: string;
    }
  /** A regular file's size and name (JSON answer: `{ size, name }`), before its bytes are asked for. */
  | { readonly kind: 'stat'; readonly path: readonly string[] }
  /** A file's bytes, all or `range` (end exclusive). */
  | { readonly kind: 'content'; readonly path: readonly string[]; readonly range: { readonly start: number; readonly end: number } | null }
  /** A directory as tar (zstd-compressed with `zstd`); the answer's meta holds `{ top }`, the tar's top directory. */
  | { readonly kind: 'archive'; readonly path: readonly string[]; readonly zstd: boolean }
  /** One page of the changes from `against` (a snapshot id, or "live") to the snapshot (JSON answer: `{ changes, cursor }`). */
  | {
      readonly kind: 'diff';
      readonly against: string;
      readonly cursor?: string;
      readonly limit?: number;
      readonly kinds?: ReadonlyArray<'added' | 'removed' | 'modified' | 'type'>;
    }
  /**
   * One page of the deployment's checks of its stored data, newest first,
   * older than the check `before` when given (JSON answer: `{ verifications }`,
   * rows as db/verifications.ts Verification). Not about a snapshot: the
   * request's snapshotId is empty.
   */
  | { readonly kind: 'verifications'; readonly limit: number; readonly before?: string };

export type ReadKind = ReadPayload['kind'];

/**
 * A read: it changes nothing on the node, so it has no journal and is
 * handed out once. The node checks, as for any request, that the
 * deployment is the user's.
 */
export interface ReadRequest {
  /** `read-…`, the id the answer is uploaded under. */
  readonly id: string;
  readonly userId: string;
  readonly deploymentId: string;
  /** The snapshot read; empty for a read about the deployment (`verifications`). */
  readonly snapshotId: string;
  readonly payload: ReadPayload;
  readonly createdAt: number;
}

/**
 * The headers of the node's answer upload (`POST /node/v1/reads/:id/response`,
 * `Content-Type: application/octet-stream`, body streamed): the status the
 * user must see, and for an archive the meta `{ top }` (base64url of JSON).
 * A status of 400 or more comes with a WireError as JSON body; 200 with the
 * JSON answer (list, stat, diff) or the bytes (content, archive).
 */
export const READ_HEADERS = { status: 'kova-read-status', meta: 'kova-read-meta' } as const;

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
  /**
   * Where the checks of the deployment's stored data stand (the settings'
   * `verification`): null for a closed deployment; absent from an older
   * node (the settings then show the setting alone).
   */
  readonly verification?: VerificationStatus | null;
}

export interface StateRequest {
  readonly deployments: readonly DeploymentState[];
}

export interface StateReply {
  /** Per deployment, the version the catalogue now holds (the node stops resending up to it). */
  readonly acked: ReadonlyArray<{ readonly deploymentId: string; readonly version: number }>;
}

// ---------------------------------------------------------------- events

/**
 * An event for webhooks (snapshot.failed, restore.completed, …), as the
 * node's outbox keeps it (src/node/events.ts) until the control plane
 * acknowledged it. The id is chosen on the node: the control plane records
 * each id once, so an event sent again (its acknowledgement lost) makes no
 * second delivery.
 */
export interface NodeEvent {
  /** `evt-…`. */
  readonly id: string;
  /** One of the webhook events (services/webhooks/events.ts); an unknown one is acknowledged and dropped. */
  readonly event: string;
  readonly deploymentId: string;
  /** The deployment's name on the node, shown in the delivery's body. */
  readonly deploymentName: string;
  /** Milliseconds since the epoch, on the node's clock. */
  readonly createdAt: number;
  readonly data: Readonly<Record<string, unknown>>;
}

/** `POST /node/v1/events`; a control plane without this route answers 404 and the node keeps its events. */
export interface EventsRequest {
  readonly events: readonly NodeEvent[];
}

export interface EventsReply {
  /**
   * The ids the control plane is done with: recorded, recorded before, or
   * refused for good (a deployment not placed on this node, an unknown
   * event). The node deletes exactly these from its outbox.
   */
  readonly acked: readonly string[];
}
