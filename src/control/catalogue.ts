/**
 * catalogue: what the control plane keeps, as the rest of the control plane
 * sees it. One implementation (store/) speaks SQLite and PostgreSQL through
 * one query builder; every method is async and safe to call from several
 * replicas on one database at once (row-level conditions, `FOR UPDATE SKIP
 * LOCKED` or advisory locks: never state held by one process).
 *
 * Times are milliseconds since the epoch, taken from the caller's clock.
 */
import type { ApiKey } from '../db/api-keys.js';
import type { Capacity, DeploymentState, Operation, OperationResult } from '../network/protocol.js';

export type Role = 'admin' | 'user';

export interface CatalogueUser {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly createdAt: number;
}

export type NodeStatus = 'online' | 'offline' | 'draining';

export interface CatalogueNode {
  readonly id: string;
  readonly name: string;
  /** Set by the operator: a draining node gets no new deployments. */
  readonly draining: boolean;
  readonly createdAt: number;
  readonly lastHeartbeatAt: number | null;
  readonly capacity: Capacity | null;
  readonly version: string | null;
  readonly runtime: 'docker' | 'process' | null;
  readonly bootId: string | null;
  /** The off-node target it copies to, as its last hello named it (targetIdentity); null: none. */
  readonly offsiteTarget: string | null;
  /** Active deployments placed on the node. */
  readonly deployments: number;
  /**
   * Bytes of volume storage promised to those deployments (their SDLs'
   * sizes, recorded when placed): known at once, where the node's own
   * report of what it promised waits for its next heartbeat.
   */
  readonly reservedBytes: number;
}

/**
 * nodeStatus: `draining` if the operator drains it, else `online` while its
 * last heartbeat is younger than `timeoutMs`, else `offline`. Derived on
 * read from the heartbeat time, so no replica has to notice the timeout.
 */
export function nodeStatus(n: Pick<CatalogueNode, 'draining' | 'lastHeartbeatAt'>, now: number, timeoutMs: number): NodeStatus {
  if (n.lastHeartbeatAt === null || now - n.lastHeartbeatAt > timeoutMs) return 'offline';
  return n.draining ? 'draining' : 'online';
}

/** A deployment in the catalogue: where it runs and the newest state its node reported. */
export interface CatalogueDeployment {
  readonly id: string;
  readonly userId: string;
  readonly nodeId: string;
  /** The node it ran on before a recovery moved it here; null: never moved. */
  readonly movedFrom: string | null;
  /** Null until the node has answered the operation that created it. */
  readonly state: DeploymentState | null;
}

export type OperationStatus = 'queued' | 'delivered' | 'done' | 'failed' | 'cancelled';

export interface CatalogueOperation extends Operation {
  readonly nodeId: string;
  readonly status: OperationStatus;
  readonly result: OperationResult | null;
  readonly deliveredAt: number | null;
  readonly finishedAt: number | null;
}

export interface Catalogue {
  // ---- users and API keys (the key service's storage)
  /** userByName, or creates the user with `role` (an existing user's role is left as it is). */
  ensureUser(name: string, role: Role, at: number): Promise<CatalogueUser>;
  user(id: string): Promise<CatalogueUser | undefined>;
  userByName(name: string): Promise<CatalogueUser | undefined>;
  countUsers(): Promise<number>;
  insertKey(k: Omit<ApiKey, 'lastUsedAt' | 'revokedAt'>): Promise<void>;
  /** importUser records a user with its id as given, unless one with that id or name exists (an upgrade copies users so). */
  importUser(u: CatalogueUser): Promise<void>;
  /** importKey records a key as it is (times, revocation included), unless its prefix exists. */
  importKey(k: ApiKey): Promise<void>;
  key(prefix: string): Promise<ApiKey | undefined>;
  /** A user's keys, newest first. */
  keys(userId: string): Promise<ApiKey[]>;
  /** Every user's keys, newest first (`kova keys list`). */
  allKeys(): Promise<ApiKey[]>;
  revokeKey(prefix: string, at: number): Promise<boolean>;
  touchKey(prefix: string, at: number): Promise<void>;

  // ---- nodes
  /** addNode records a node under a unique name with the hash of its token (NODE_EXISTS if taken). */
  addNode(name: string, tokenHash: string, at: number): Promise<CatalogueNode>;
  nodes(): Promise<CatalogueNode[]>;
  node(idOrName: string): Promise<CatalogueNode | undefined>;
  /** nodeByTokenHash finds the node a token belongs to (the token itself is never stored). */
  nodeByTokenHash(tokenHash: string): Promise<CatalogueNode | undefined>;
  setDraining(id: string, draining: boolean): Promise<void>;
  /** removeNode deletes a node that has no active deployment (NODE_IN_USE otherwise). */
  removeNode(id: string): Promise<void>;
  hello(
    id: string,
    info: { version: string; runtime: 'docker' | 'process'; bootId: string; offsiteTarget?: string | null },
    at: number,
  ): Promise<void>;
  heartbeat(id: string, capacity: Capacity, at: number): Promise<void>;

  // ---- deployments and their state
  /** place records that deployment `id` of `userId` lives on `nodeId`, with `reservedBytes` of volumes, before the node has it. */
  place(id: string, userId: string, nodeId: string, at: number, reservedBytes?: number): Promise<void>;
  /** unplace forgets a placement whose creating operation never ran (state still null). */
  unplace(id: string): Promise<void>;
  deployment(id: string): Promise<CatalogueDeployment | undefined>;
  /** A user's deployments the nodes have confirmed (state not null), newest first. */
  deploymentsOf(userId: string): Promise<CatalogueDeployment[]>;
  /**
   * applyState stores a node's document when it is newer than the one held,
   * for deployments placed on that node only (others are ignored and not
   * acknowledged). Returns the version now held per deployment.
   */
  applyState(nodeId: string, states: readonly DeploymentState[]): Promise<Array<{ deploymentId: string; version: number }>>;

  /**
   * move records, in one transaction, that deployment `id` left node `from`
   * for node `to` (where it holds `reservedBytes`), and the operations that
   * carry the move out, each for its node. The document held so far stays
   * readable with version 0, so the new node's first document replaces it;
   * documents from `from` are refused from then on. False, with nothing
   * recorded, when the deployment is no longer on `from` (another move won).
   */
  move(
    id: string,
    from: string,
    to: string,
    reservedBytes: number,
    ops: ReadonlyArray<{ readonly op: Operation; readonly nodeId: string }>,
    at: number,
  ): Promise<boolean>;
  /**
   * moveBack undoes a move whose recovery did nothing (the new node refused
   * or never got it): the deployment is on `from` again, and the operations
   * `withdraw` are cancelled when no node has been handed them yet.
   */
  moveBack(id: string, from: string, to: string, withdraw: readonly string[], at: number): Promise<void>;

  // ---- operations
  /** enqueue records an operation for a node (and wakes its long poll on every replica). */
  enqueue(op: Operation, nodeId: string): Promise<void>;
  /**
   * pending: the node's unfinished operations (queued or delivered), oldest
   * first, marked delivered. Waits up to `waitMs` for one to appear.
   */
  pending(nodeId: string, waitMs: number, signal?: AbortSignal): Promise<Operation[]>;
  /** finish records an operation's result once (false if it is not this node's or already finished). */
  finish(opId: string, nodeId: string, result: OperationResult, at: number): Promise<boolean>;
  /** cancel withdraws an operation that no node has been handed yet; false if it was. */
  cancel(opId: string, at: number): Promise<boolean>;
  operation(opId: string): Promise<CatalogueOperation | undefined>;
  /** waitResult resolves with the result once recorded (by any replica), or null after `timeoutMs`. */
  waitResult(opId: string, timeoutMs: number): Promise<OperationResult | null>;

  // ---- shared rate-limit counters (fixed windows)
  /** hit counts one request for `key` in the window containing `now`; returns the count and ms left. */
  hit(key: string, windowMs: number, now: number): Promise<{ count: number; ttlMs: number }>;

  close(): Promise<void>;
}
