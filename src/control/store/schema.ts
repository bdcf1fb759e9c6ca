/**
 * schema: the catalogue's tables as the query builder sees them. Times are
 * milliseconds since the epoch (BIGINT on PostgreSQL, parsed to numbers);
 * flags are 0/1 integers and documents are JSON text, the same on both
 * dialects so one code path reads and writes them.
 */
import type { Generated } from 'kysely';

export interface UsersTable {
  id: string;
  name: string;
  role: 'admin' | 'user';
  created_at: number;
}

/** The same columns as the node's api_keys table (src/db/api-keys.ts). */
export interface ApiKeysTable {
  prefix: string;
  user_id: string;
  secret_hash: string;
  label: string | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface NodesTable {
  id: string;
  name: string;
  token_hash: string;
  draining: number;
  created_at: number;
  last_heartbeat_at: number | null;
  /** Capacity as JSON text. */
  capacity: string | null;
  version: string | null;
  runtime: 'docker' | 'process' | null;
  boot_id: string | null;
  /** The off-node target it copies to (targetIdentity), from its last hello; null: none. */
  offsite_target: string | null;
}

/**
 * `placed` until the node confirms the deployment, then the status of the
 * document (`active` or `closed`). Placed and active rows count against
 * the node (it cannot be removed while it has one).
 */
export type PlacementStatus = 'placed' | 'active' | 'closed';

/**
 * deployments keeps each node document whole, as JSON text, with its version
 * beside it. Documents are replaced whole (the protocol converges by whole
 * documents) and read whole (GET of a deployment, its snapshots), where
 * normalised rows would turn every applyState into deleting and inserting
 * each snapshot and every read into joins. Reads stay fast for 1,000
 * snapshots because each catalogue keeps the documents it parsed by (id,
 * version) and a read fetches the state column only for a version it has
 * not parsed yet (deployments.ts).
 */
export interface DeploymentsTable {
  id: string;
  user_id: string;
  node_id: string;
  status: PlacementStatus;
  version: number | null;
  state: string | null;
  /** The volume storage its SDL asks for, recorded when placed (placement counts it). */
  reserved_bytes: number;
  /** The node it ran on before a recovery moved it (null: never moved). */
  moved_from: string | null;
  created_at: number;
  updated_at: number;
}

export interface OperationsTable {
  /** Ordering: the order operations were recorded in, per database. */
  seq: Generated<number>;
  id: string;
  node_id: string;
  user_id: string;
  deployment_id: string | null;
  kind: string;
  payload: string;
  status: 'queued' | 'delivered' | 'done' | 'failed' | 'cancelled';
  result: string | null;
  created_at: number;
  delivered_at: number | null;
  finished_at: number | null;
}

export interface RateCountersTable {
  key: string;
  window_start: number;
  count: number;
  expires_at: number;
}

/**
 * reads: a user's browse request waiting for, or being answered by, a node
 * (relay.ts). `queued` until a long poll hands it out, `delivered` until the
 * node's answer arrives on a replica other than the one waiting (`answered`,
 * with the status and meta the user sees). Short-lived: the waiting replica
 * deletes it when done, and anyone deletes it once `expires_at` passed.
 */
export interface ReadsTable {
  id: string;
  node_id: string;
  user_id: string;
  deployment_id: string;
  /** The ReadRequest as JSON text. */
  request: string;
  status: 'queued' | 'delivered' | 'answered';
  response_status: number | null;
  /** The answer's meta as JSON text (archive: `{ top }`), null: none. */
  response_meta: string | null;
  created_at: number;
  expires_at: number;
}

/** One piece of an answer's body crossing replicas, in `seq` order; `last` on the final one. Deleted once read. */
export interface ReadChunksTable {
  read_id: string;
  seq: number;
  data: Buffer;
  last: number;
}

/** A user's webhook (the same columns as the node's, src/db/webhooks.ts); events as JSON text. */
export interface WebhooksTable {
  id: string;
  user_id: string;
  url: string;
  events: string;
  secret: string;
  created_at: number;
}

/**
 * One delivery of an event to a webhook. `pending` deliveries are due at
 * `next_attempt_at`; a replica claiming one sets `lease` and pushes
 * `next_attempt_at` to the lease's end, so no other replica takes it
 * before then, and records the attempt only under that lease.
 */
export interface WebhookDeliveriesTable {
  /** Order of recording; the delivery log's cursor. */
  seq: Generated<number>;
  id: string;
  webhook_id: string;
  event_id: string;
  event: string;
  body: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number | null;
  lease: string | null;
  response_status: number | null;
  error: string | null;
  created_at: number;
  last_attempt_at: number | null;
  finished_at: number | null;
}

/** The id of every event a node reported, so a resent one is recorded once. */
export interface WebhookEventsTable {
  id: string;
  node_id: string;
  deployment_id: string;
  received_at: number;
}

export interface Schema {
  users: UsersTable;
  api_keys: ApiKeysTable;
  nodes: NodesTable;
  deployments: DeploymentsTable;
  operations: OperationsTable;
  rate_counters: RateCountersTable;
  reads: ReadsTable;
  read_chunks: ReadChunksTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_events: WebhookEventsTable;
}
