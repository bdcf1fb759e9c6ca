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
import type { AttemptRecord, Delivery, Webhook } from '../db/webhooks.js';
import type { ClaimedDelivery, EventRecord, RecordOutcome } from '../services/webhooks/store.js';
import type { Capacity, DeploymentState, Operation, OperationResult, OperationsReply, ReadRequest } from '../network/protocol.js';

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

export type ReadStatus = 'queued' | 'delivered' | 'answered';

/** A read relayed to a node (relay.ts), as the replica waiting for it sees it. */
export interface CatalogueRead {
  readonly id: string;
  readonly nodeId: string;
  readonly status: ReadStatus;
  /** Once `answered`: the status the user sees and the answer's meta. */
  readonly response: { readonly status: number; readonly meta: Readonly<Record<string, unknown>> | null } | null;
  readonly expiresAt: number;
}

/** One piece of a relayed answer's body. */
export interface ReadChunk {
  readonly data: Buffer;
  /** The final piece: nothing follows. */
  readonly last: boolean;
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

  // ---- reads relayed to nodes (relay.ts): handed out once, never journalled
  /** addRead records a read for a node (`queued`) and wakes its long poll; expired reads are pruned on the way. */
  addRead(read: ReadRequest, nodeId: string, expiresAt: number): Promise<void>;
  /**
   * poll is `pending` for the node's long poll, and with `reads` also hands
   * out its queued reads (each once: marked `delivered`). Waits up to
   * `waitMs` for either to appear.
   */
  poll(nodeId: string, waitMs: number, opts: { readonly reads: boolean; readonly signal?: AbortSignal }): Promise<OperationsReply>;
  /** The read, or undefined once deleted (answered, withdrawn, cancelled or expired). */
  readRow(id: string): Promise<CatalogueRead | undefined>;
  /**
   * waitRead resolves with the read (or undefined once it is deleted) as
   * soon as `until` holds for it; null after `timeoutMs` or on abort.
   */
  waitRead(
    id: string,
    timeoutMs: number,
    until: (r: CatalogueRead | undefined) => boolean,
    signal?: AbortSignal,
  ): Promise<CatalogueRead | undefined | null>;
  /** withdrawRead deletes a read no node has been handed yet; false if one was. */
  withdrawRead(id: string): Promise<boolean>;
  /**
   * answerRead records the node's answer head on a delivered read of that
   * node (`answered`); false when it is not that node's, not delivered, or
   * gone (cancelled, expired).
   */
  answerRead(
    id: string,
    nodeId: string,
    response: { status: number; meta: Readonly<Record<string, unknown>> | null },
    expiresAt: number,
  ): Promise<boolean>;
  /**
   * pushChunk stores piece `seq` of an answered read's body once fewer than
   * `window` pieces wait unread (the reader deletes what it read), pushing
   * the read's expiry to `expiresAt`. `gone` when the read was deleted
   * (the user went away), `full` when no room came within `timeoutMs`.
   */
  pushChunk(
    id: string,
    seq: number,
    chunk: ReadChunk,
    opts: { readonly window: number; readonly timeoutMs: number; readonly expiresAt: number; readonly signal?: AbortSignal },
  ): Promise<'stored' | 'gone' | 'full'>;
  /** pullChunk takes (reads and deletes) piece `seq`, waiting up to `timeoutMs` for it; `gone` once the read is deleted, null on timeout. */
  pullChunk(id: string, seq: number, timeoutMs: number, signal?: AbortSignal): Promise<ReadChunk | 'gone' | null>;
  /** dropRead deletes a read and whatever of its body is stored (idempotent), and wakes whoever waits on it. */
  dropRead(id: string): Promise<void>;
  /** Reads still stored, and their chunks (for checks that nothing is left behind). */
  countReads(): Promise<{ reads: number; chunks: number }>;

  // ---- webhooks and their deliveries (store/webhooks.ts; the WebhookStore contract of services/webhooks/store.ts)
  webhook(id: string): Promise<Webhook | undefined>;
  /** A user's webhooks, newest first. */
  webhooksOf(userId: string): Promise<Webhook[]>;
  lastDelivery(webhookId: string): Promise<Delivery | undefined>;
  /** insertWebhook stores the webhook unless its user has `max` already (false then), counted and inserted in one transaction. */
  insertWebhook(w: Webhook, max: number): Promise<boolean>;
  /** deleteWebhook removes a webhook and its deliveries. */
  deleteWebhook(id: string): Promise<void>;
  /** One page of a webhook's deliveries, newest first, below `beforeSeq` when given. */
  webhookDeliveries(webhookId: string, limit: number, beforeSeq: number | null): Promise<Delivery[]>;
  /**
   * recordEvent records, in one transaction, the event id (once: a repeat
   * is `duplicate`) and a pending delivery per subscribed webhook of the
   * deployment's owner; `refused` when the deployment is not placed on
   * `nodeId` (any node when null).
   */
  recordEvent(ev: EventRecord, nodeId: string | null, newDeliveryId: () => string): Promise<RecordOutcome>;
  /** claimDeliveries leases up to `limit` due deliveries for `leaseMs` to the caller: never the same to two callers. */
  claimDeliveries(now: number, limit: number, leaseMs: number): Promise<ClaimedDelivery[]>;
  /** recordDeliveryAttempt counts an attempt made under `lease`; false when that lease is no longer the delivery's. */
  recordDeliveryAttempt(id: string, lease: string, a: AttemptRecord): Promise<boolean>;
  /** pruneDeliveries deletes finished deliveries and recorded event ids older than `before`. */
  pruneDeliveries(before: number): Promise<number>;

  // ---- shared rate-limit counters (fixed windows)
  /** hit counts one request for `key` in the window containing `now`; returns the count and ms left. */
  hit(key: string, windowMs: number, now: number): Promise<{ count: number; ttlMs: number }>;

  close(): Promise<void>;
}
