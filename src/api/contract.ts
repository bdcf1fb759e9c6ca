/**
 * contract: the JSON the API answers with, written once. Each TypeBox schema
 * here is used three ways:
 *
 * - the server's routes use it as their response schema: it serialises the
 *   answer (a field missing here is dropped from the answer) and is published
 *   in /api/v1/openapi.json;
 * - the server's views (src/services/views.ts) must build exactly its static
 *   type: views.test.ts fails to compile when a view and its schema differ;
 * - the dashboard (web/src/api.ts) and the CLI (src/cli/client/api-client.ts)
 *   take their types from here, with type-only imports.
 *
 * This file imports nothing but TypeBox and the request schemas: the dashboard
 * compiles it, so no Node or server module may be imported from it.
 *
 * To add a field to an answer: add it to the schema here (nullable fields as
 * `Nullable(…)`, never optional, so every answer has the same keys), build it
 * in the view, and document it in docs/api.md. Both clients see the new field
 * as soon as they are compiled. Request bodies are validated by the schemas in
 * ./schemas.ts; their static types are re-exported at the end of this file.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type {
  CloneBody,
  CreateDeploymentBody,
  CreateKeyBody,
  CreateSnapshotBody,
  CreateWebhookBody,
  RestoreBody,
  SettingsBody,
  UpdateDeploymentBody,
} from './schemas.js';

const PRIMITIVE = new Set(['string', 'integer', 'number', 'boolean']);
/**
 * Nullable: `t` or null. A primitive becomes `type: [t, "null"]` rather than
 * `anyOf`: the response serializer checks each value against every branch
 * of an `anyOf` (a 5,000-entry listing page took 20-60 ms to serialize that
 * way, about 1-15 ms this way). The static type is the same either way.
 */
const Nullable = <T extends TSchema>(t: T, options: { description?: string } = {}): TSchema & { static: Static<T> | null } => {
  const type: unknown = t.type;
  if (typeof type === 'string' && PRIMITIVE.has(type)) return Type.Unsafe<Static<T> | null>({ ...t, ...options, type: [type, 'null'] });
  return Type.Union([t, Type.Null()], options);
};
const Time = (description?: string) => Type.String({ format: 'date-time', ...(description === undefined ? {} : { description }) });

/* ---- snapshots, restores, settings ------------------------------------------------ */

export const Progress = Type.Object({ bytesDone: Type.Integer(), bytesTotal: Nullable(Type.Integer()) });
export type Progress = Static<typeof Progress>;

export const SnapshotStatus = Type.Union([
  Type.Literal('creating'),
  Type.Literal('ready'),
  Type.Literal('failed'),
  Type.Literal('deleting'),
]);
export type SnapshotStatus = Static<typeof SnapshotStatus>;

export const SnapshotTrigger = Type.Union([
  Type.Literal('manual'),
  Type.Literal('automatic'),
  Type.Literal('before-update'),
  Type.Literal('before-restore'),
]);
export type SnapshotTrigger = Static<typeof SnapshotTrigger>;

export const Snapshot = Type.Object({
  id: Type.String({ description: 'snap-…' }),
  label: Nullable(Type.String()),
  status: SnapshotStatus,
  size: Type.String({ description: 'Logical size, decimal units: "2.4 GB".' }),
  automatic: Type.Boolean(),
  createdAt: Time(),
  trigger: SnapshotTrigger,
  sizeBytes: Nullable(Type.Integer()),
  storedBytes: Nullable(Type.Integer(), { description: 'Bytes this snapshot added to the store.' }),
  files: Nullable(Type.Integer()),
  readyAt: Nullable(Time()),
  consistency: Nullable(Type.Union([Type.Literal('frozen'), Type.Literal('live')])),
  freezeMs: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  warning: Nullable(Type.String()),
  progress: Nullable(Progress, { description: 'While creating.' }),
  offsite: Nullable(
    Type.Object({
      status: Type.Union([Type.Literal('pending'), Type.Literal('copying'), Type.Literal('copied'), Type.Literal('failed')]),
      copiedAt: Nullable(Time()),
      error: Nullable(Type.String({ description: 'Why the last attempt failed (it is retried).' })),
    }),
    { description: 'The off-node copy; null when the server has no off-node target or the snapshot was not queued for one.' },
  ),
  damaged: Type.Boolean({ description: 'A verification found that part of its data can no longer be read back intact.' }),
  damagedAt: Nullable(Time('When a verification first found it damaged.')),
});
export type Snapshot = Static<typeof Snapshot>;

export const RestoreStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('restoring'),
  Type.Literal('swapping'),
  Type.Literal('completed'),
  Type.Literal('failed'),
]);
export type RestoreStatus = Static<typeof RestoreStatus>;

export const VolumePair = Type.Object({
  from: Type.String({ description: 'Snapshot volume, "service.volume".' }),
  to: Type.String({ description: 'Current volume, "service.volume".' }),
  match: Type.Union([Type.Literal('name'), Type.Literal('mount'), Type.Literal('position')]),
});
export type VolumePair = Static<typeof VolumePair>;

export const Restore = Type.Object({
  id: Type.String({ description: 'rst-…' }),
  snapshotId: Type.String(),
  status: RestoreStatus,
  safetySnapshot: Type.Boolean(),
  safetySnapshotId: Nullable(Type.String()),
  createdAt: Time(),
  startedAt: Nullable(Time()),
  finishedAt: Nullable(Time()),
  downtimeMs: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  progress: Nullable(Progress, { description: 'While restoring.' }),
  volumes: Nullable(Type.Array(VolumePair), {
    description: 'Which snapshot volume goes into which current volume (null for restores older than this field).',
  }),
  untouchedVolumes: Nullable(Type.Array(Type.String()), { description: 'Current volumes the snapshot does not hold: left as they are.' }),
  paths: Nullable(Type.Array(Type.String()), {
    description: 'The paths restored (merged: one inside another is dropped); null for a full restore.',
  }),
  mode: Nullable(Type.Union([Type.Literal('replace'), Type.Literal('alongside')]), { description: 'null for a full restore.' }),
  into: Nullable(Type.String(), { description: 'alongside: the folder, relative to the volume, the paths were restored under.' }),
});
export type Restore = Static<typeof Restore>;

export const RestorePlanPath = Type.Object({
  path: Type.String({ description: 'A chosen path, as the files API shows it: "service/volume/…".' }),
  volume: Type.String({ description: 'The current volume it goes into, "service.volume".' }),
  target: Type.String({ description: 'Where it goes: "service/volume/…" (under into when alongside).' }),
  type: Type.String({ description: 'Its type in the snapshot: file, dir, symlink, …' }),
  action: Type.Union([Type.Literal('replace'), Type.Literal('create')], {
    description: "replace: something is there now and is replaced (a folder becomes exactly the snapshot's); create: nothing is there now.",
  }),
  live: Nullable(Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink'), Type.Literal('other')]), {
    description: "The live entry's type now, null when absent.",
  }),
  removed: Type.Array(Type.String(), {
    description: 'Live entries below a replaced folder that the snapshot lacks: the restore removes them (at most 20 listed).',
  }),
  removedMore: Type.Boolean({ description: 'More such entries exist than removed lists.' }),
});
export type RestorePlanPath = Static<typeof RestorePlanPath>;

export const RestorePlan = Type.Object({
  volumes: Type.Array(VolumePair),
  untouchedVolumes: Type.Array(Type.String(), { description: 'Current volumes the snapshot does not hold: left as they are.' }),
  missingVolumes: Type.Array(Type.String(), { description: 'Snapshot volumes with no current volume to go into.' }),
  refusal: Nullable(Type.Object({ code: Type.String(), message: Type.String() }), {
    description: 'Why a restore would be refused (409), or null.',
  }),
  mode: Nullable(Type.Union([Type.Literal('replace'), Type.Literal('alongside')]), { description: 'null for a full restore.' }),
  into: Nullable(Type.String()),
  paths: Nullable(Type.Array(RestorePlanPath), { description: 'What the restore does to each chosen path; null for a full restore.' }),
});
export type RestorePlan = Static<typeof RestorePlan>;

/* ---- verification (routes/verifications.ts) --------------------------------------- */

export const VerificationStatus = Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('ok'), Type.Literal('failed')]);
export type VerificationStatus = Static<typeof VerificationStatus>;

export const Verification = Type.Object({
  id: Type.String({ description: 'ver-…' }),
  trigger: Type.Union([Type.Literal('scheduled'), Type.Literal('manual')]),
  part: Nullable(Type.Integer(), { description: 'The part of the stored data read, 0 to parts-1; null: all of it.' }),
  parts: Type.Integer({ description: 'How many parts the data was split into.' }),
  status: VerificationStatus,
  createdAt: Time(),
  startedAt: Nullable(Time()),
  finishedAt: Nullable(Time()),
  bytesRead: Type.Integer(),
  findings: Type.Integer({ description: 'Problems found (0 when ok).' }),
  problems: Type.Array(Type.Object({ kind: Type.String(), message: Type.String() }), {
    description: 'The first problems found (at most 20).',
  }),
  damagedSnapshots: Type.Array(Type.String(), { description: 'The snapshots the problems reach, now marked damaged.' }),
  error: Nullable(Type.String({ description: 'Why the check could not run (it then counts as failed).' })),
});
export type Verification = Static<typeof Verification>;

export const VerificationSummary = Type.Object(
  {
    enabled: Type.Boolean(),
    interval: Type.String({
      description: 'How often a part of the stored data is checked: every byte is read at least once every 30 days.',
    }),
    nextRunAt: Nullable(Time(), { description: 'When the next scheduled check is due (null when disabled or not scheduled yet).' }),
    nextPart: Type.Integer({ description: 'The part the next check reads.' }),
    parts: Type.Integer(),
    lastVerification: Nullable(Verification, { description: 'The newest check, whatever its status.' }),
    lastFullCheckAt: Nullable(Time(), {
      description: 'Every byte stored was read back intact at least once since this time, with no problem found since; null when not yet.',
    }),
  },
  {
    description:
      "Scheduled verification of the stored data. From a control plane: as the deployment's node last reported it; before a node reported it (an older node), nextRunAt, lastVerification and lastFullCheckAt are null.",
  },
);
export type VerificationSummary = Static<typeof VerificationSummary>;

export const SnapshotSettings = Type.Object({
  enabled: Type.Boolean(),
  interval: Type.String(),
  retention: Type.Integer(),
  nextRunAt: Nullable(Time()),
  minInterval: Type.String({ description: "The server's minimum interval." }),
  keepHourly: Nullable(Type.Integer(), { description: 'Keep the newest automatic snapshot of each of the last N hours (null: not set).' }),
  keepDaily: Nullable(Type.Integer(), { description: 'Likewise per day (UTC).' }),
  keepWeekly: Nullable(Type.Integer(), { description: 'Likewise per ISO week (UTC).' }),
  keepMonthly: Nullable(Type.Integer(), { description: 'Likewise per month (UTC).' }),
  retentionDescription: Type.String({ description: 'What the retention policy keeps, in plain words.' }),
  offsite: Nullable(Type.Object({ enabled: Type.Boolean() }), {
    description: "Off-node copies of this deployment's snapshots; null when the server has no off-node target.",
  }),
  verification: VerificationSummary,
});
export type SnapshotSettings = Static<typeof SnapshotSettings>;

/* ---- browsing snapshots (routes/files.ts) ----------------------------------------- */

export const FileType = Type.Union([
  Type.Literal('file'),
  Type.Literal('dir'),
  Type.Literal('symlink'),
  Type.Literal('fifo'),
  Type.Literal('chardev'),
  Type.Literal('blockdev'),
  Type.Literal('socket'),
]);
export type FileType = Static<typeof FileType>;

export const FileEntry = Type.Object({
  name: Type.String({ description: 'Not UTF-8: invalid bytes shown as U+FFFD, the raw name in nameBase64' }),
  nameBase64: Nullable(Type.String()),
  type: FileType,
  size: Type.Integer(),
  mode: Type.Integer({ description: 'Permission bits (mode & 0o7777)' }),
  uid: Type.Integer(),
  gid: Type.Integer(),
  mtime: Type.String({ description: 'ISO 8601 UTC with nanoseconds' }),
  target: Nullable(Type.String()),
  targetBase64: Nullable(Type.String()),
});
export type FileEntry = Static<typeof FileEntry>;

export const ChangeKind = Type.Union([Type.Literal('added'), Type.Literal('removed'), Type.Literal('modified'), Type.Literal('type')]);
export type ChangeKind = Static<typeof ChangeKind>;

export const FileChange = Type.Object({
  path: Type.String(),
  pathBase64: Nullable(Type.String()),
  change: ChangeKind,
  sizeBefore: Nullable(Type.Integer()),
  sizeAfter: Nullable(Type.Integer()),
});
export type FileChange = Static<typeof FileChange>;

/* ---- retention preview ------------------------------------------------------------ */

export const KeepReason = Type.Union([
  Type.Literal('last'),
  Type.Literal('hourly'),
  Type.Literal('daily'),
  Type.Literal('weekly'),
  Type.Literal('monthly'),
]);

export const RetentionPreview = Type.Object({
  description: Type.String({ description: 'What the policy keeps, in plain words.' }),
  keep: Type.Array(Type.Object({ id: Type.String(), createdAt: Time(), reasons: Type.Array(KeepReason) }), {
    description: 'Ready automatic snapshots kept, newest first, with the rules that keep each.',
  }),
  prune: Type.Array(Type.Object({ id: Type.String(), createdAt: Time() }), {
    description: 'Ready automatic snapshots the next automatic snapshot deletes, newest first.',
  }),
});
export type RetentionPreview = Static<typeof RetentionPreview>;

/* ---- deployments ------------------------------------------------------------------ */

export const DeploymentStatus = Type.Union([Type.Literal('active'), Type.Literal('closed')]);
export type DeploymentStatus = Static<typeof DeploymentStatus>;

export const ServiceState = Type.Union([
  Type.Literal('running'),
  Type.Literal('paused'),
  Type.Literal('stopped'),
  Type.Literal('missing'),
  Type.Literal('unknown'),
  Type.Literal('removed'),
]);
export type ServiceState = Static<typeof ServiceState>;

export const Volume = Type.Object({
  name: Type.String(),
  mount: Type.String(),
  sizeBytes: Type.Integer({ description: 'The size the SDL asks for.' }),
  size: Type.String({ description: 'sizeBytes in decimal units.' }),
  usedBytes: Nullable(Type.Integer(), { description: 'Bytes in use, once measured.' }),
});
export type Volume = Static<typeof Volume>;

export const Service = Type.Object({
  name: Type.String(),
  image: Type.String(),
  state: ServiceState,
  startedAt: Nullable(Time()),
  volumes: Type.Array(Volume),
});
export type Service = Static<typeof Service>;

export const SnapshotSummary = Type.Object({
  count: Type.Integer(),
  sizeBytes: Type.Integer(),
  storedBytes: Type.Integer(),
  lastSnapshotAt: Nullable(Time()),
});
export type SnapshotSummary = Static<typeof SnapshotSummary>;

export const SnapshotHealth = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('overdue')], {
    description: 'failed: the newest finished automatic snapshot failed; overdue: one is missed (due + grace passed, none started).',
  }),
  since: Nullable(Time(), { description: 'overdue: the due time missed; failed: when the current run of failures began; null when ok.' }),
  message: Nullable(Type.String(), { description: 'What is wrong, in plain words (the failure message); null when ok.' }),
});
export type SnapshotHealth = Static<typeof SnapshotHealth>;
/* ---- nodes (network mode: `kova control-plane`) ---------------------------------- */

export const NodeStatus = Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('draining')]);
export type NodeStatus = Static<typeof NodeStatus>;

/** The node a deployment runs on, as its deployment shows it. */
export const DeploymentNode = Type.Object({
  id: Type.String({ description: 'node-…' }),
  name: Type.String(),
  status: NodeStatus,
  lastHeartbeatAt: Nullable(Time(), { description: 'When the node was last heard from; null before its first heartbeat.' }),
});
export type DeploymentNode = Static<typeof DeploymentNode>;

export const NodeCapacity = Type.Object({
  diskFreeBytes: Type.Integer(),
  diskTotalBytes: Type.Integer(),
  volumeUsedBytes: Type.Integer(),
  volumeReservedBytes: Type.Integer({ description: "The sum of the node's volumes' SDL sizes." }),
  deployments: Type.Integer(),
  runningServices: Type.Integer(),
  health: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
});
export type NodeCapacity = Static<typeof NodeCapacity>;

export const NodeSummary = Type.Object({
  id: Type.String(),
  name: Type.String(),
  status: NodeStatus,
  lastHeartbeatAt: Nullable(Time()),
  capacity: Nullable(NodeCapacity, { description: 'As of the last heartbeat; null before the first.' }),
  deployments: Type.Integer({ description: 'Active deployments placed on the node.' }),
  offsiteTarget: Type.Optional(
    Nullable(Type.String(), {
      description:
        'The off-node target it copies to (s3:// URL and endpoint origin, no credentials); null: none. Recovery moves deployments only between nodes naming the same.',
    }),
  ),
});
export type NodeSummary = Static<typeof NodeSummary>;

/** A recovery on another node (network mode): POST /api/v1/deployments/:id/recover. */
export const Recovery = Type.Object({
  operationId: Type.String({ description: 'op-…: the operation the new node carries out, once.' }),
  snapshotId: Type.String({ description: 'The snapshot the volumes start from.' }),
  fromNode: Type.Object({ id: Type.String(), name: Nullable(Type.String()) }, { description: 'The node it ran on (name null: removed).' }),
  toNode: Type.Object({ id: Type.String(), name: Type.String() }, { description: 'The node it runs on now.' }),
  createdAt: Time(),
});
export type Recovery = Static<typeof Recovery>;

export const Deployment = Type.Object({
  id: Type.String({ description: 'dep-…' }),
  name: Type.String(),
  status: DeploymentStatus,
  createdAt: Time(),
  updatedAt: Time(),
  closedAt: Nullable(Time()),
  clonedFrom: Nullable(Type.String()),
  sdl: Type.String(),
  operation: Nullable(Type.String(), {
    description: 'The operation queued or running: deploy, snapshot, restore, update, restart, close, clone.',
  }),
  services: Type.Array(Service),
  snapshots: Nullable(SnapshotSummary, { description: 'Ready snapshots; null once closed.' }),
  snapshotHealth: Nullable(SnapshotHealth, {
    description: 'Whether automatic snapshots are being taken (always ok while they are off); null once closed.',
  }),
  node: Nullable(DeploymentNode, { description: 'The node it runs on (network mode); null in the all-in-one (`kova serve`).' }),
});
export type Deployment = Static<typeof Deployment>;

/* ---- identity and API keys -------------------------------------------------------- */

export const UserRole = Type.Union([Type.Literal('admin'), Type.Literal('user')], {
  description: 'admin: may list the nodes (network mode). In the all-in-one the user named `admin` is the admin.',
});
export type UserRole = Static<typeof UserRole>;

export const ServerMode = Type.Union([Type.Literal('all-in-one'), Type.Literal('network')], {
  description:
    'network: the server places deployments on nodes (`kova control-plane`, GET /api/v1/nodes exists); all-in-one: `kova serve`.',
});
export type ServerMode = Static<typeof ServerMode>;

export const Me = Type.Object({
  user: Type.Object({ id: Type.String(), name: Type.String(), role: UserRole }),
  server: Type.Object({
    version: Type.String(),
    runtime: Type.Union([Type.Literal('docker'), Type.Literal('process')]),
    minSnapshotInterval: Type.String({ description: 'The shortest interval automatic snapshots may have.' }),
    mode: ServerMode,
  }),
});
export type Me = Static<typeof Me>;

export const ApiKey = Type.Object({
  prefix: Type.String(),
  label: Nullable(Type.String()),
  createdAt: Time(),
  lastUsedAt: Nullable(Time()),
  revokedAt: Nullable(Time()),
});
export type ApiKey = Static<typeof ApiKey>;

/* ---- webhooks -------------------------------------------------------------------- */

export const DeliveryStatus = Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]);
export type DeliveryStatus = Static<typeof DeliveryStatus>;

export const WebhookDelivery = Type.Object({
  id: Type.String({ description: 'dlv-…, sent as X-Kova-Delivery (the same on every attempt).' }),
  eventId: Type.String({ description: "evt-…, the body's id (the same for every webhook the event went to)." }),
  event: Type.String(),
  status: DeliveryStatus,
  attempts: Type.Integer(),
  responseStatus: Nullable(Type.Integer(), { description: "The last attempt's HTTP status; null when no answer came." }),
  error: Nullable(Type.String(), { description: 'Why the last attempt failed.' }),
  createdAt: Time(),
  lastAttemptAt: Nullable(Time()),
  nextAttemptAt: Nullable(Time(), { description: 'While pending.' }),
  finishedAt: Nullable(Time(), { description: 'When it was delivered or given up.' }),
});
export type WebhookDelivery = Static<typeof WebhookDelivery>;

export const Webhook = Type.Object({
  id: Type.String({ description: 'whk-…' }),
  url: Type.String(),
  events: Type.Array(Type.String()),
  createdAt: Time(),
  lastDelivery: Nullable(WebhookDelivery),
});
export type Webhook = Static<typeof Webhook>;

/* ---- envelopes -------------------------------------------------------------------- */

export const ErrorResponse = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});
export type ErrorResponse = Static<typeof ErrorResponse>;

/** ok wraps a response schema in the success envelope. */
export const ok = <P extends Record<string, TSchema>>(props: P) => Type.Object({ success: Type.Literal(true), ...props });

/** The error statuses every /api/v1 route may answer, for the routes' response schemas. */
export const errorResponses = {
  400: ErrorResponse,
  401: ErrorResponse,
  404: ErrorResponse,
  409: ErrorResponse,
  429: ErrorResponse,
} as const;

/* ---- request bodies (validated by ./schemas.ts) ----------------------------------- */

export type CreateDeploymentRequest = Static<typeof CreateDeploymentBody>;
export type UpdateDeploymentRequest = Static<typeof UpdateDeploymentBody>;
export type CreateSnapshotRequest = Static<typeof CreateSnapshotBody>;
export type RestoreRequest = Static<typeof RestoreBody>;
export type CloneRequest = Static<typeof CloneBody>;
export type SettingsChange = Static<typeof SettingsBody>;
export type CreateKeyRequest = Static<typeof CreateKeyBody>;
export type CreateWebhookRequest = Static<typeof CreateWebhookBody>;
