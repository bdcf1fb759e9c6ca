/**
 * schemas: JSON schemas of every request and of the main responses. They
 * validate input (unknown fields are rejected) and feed the OpenAPI document.
 */
import { type TSchema, Type } from '@sinclair/typebox';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const DeploymentParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
export const SnapshotParams = Type.Object(
  { id: Type.String({ maxLength: 64 }), snapshotId: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);
export const RestoreParams = Type.Object({ id: Type.String({ maxLength: 64 }), restoreId: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
export const KeyParams = Type.Object({ prefix: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

export const CreateDeploymentBody = Type.Object(
  {
    sdl: Type.String({ minLength: 1, description: 'The SDL, as YAML text (version 2.0).' }),
    name: Type.Optional(Type.String({ description: 'A display name; default: the first service name.' })),
  },
  { additionalProperties: false },
);

export const UpdateDeploymentBody = Type.Object(
  {
    sdl: Type.String({ minLength: 1 }),
    snapshot: Type.Optional(Type.Boolean({ description: 'Take a "before-update" snapshot first (default true).' })),
  },
  { additionalProperties: false },
);

export const CreateSnapshotBody = Type.Object(
  { label: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'At most 64 characters, no control characters.' })) },
  { additionalProperties: false },
);

export const RestoreBody = Type.Object(
  { safetySnapshot: Type.Optional(Type.Boolean({ description: 'Snapshot the current state first (default true).' })) },
  { additionalProperties: false },
);

export const CloneBody = Type.Object({ name: Type.Optional(Type.String()) }, { additionalProperties: false });

export const SettingsBody = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    interval: Type.Optional(Type.String({ description: 'A duration: 30m, 6h, 24h, 7d.' })),
    retention: Type.Optional(Type.Integer({ description: '1 to 100.' })),
  },
  { additionalProperties: false },
);

export const CreateKeyBody = Type.Object({ label: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false });

const Progress = Type.Union([Type.Object({ bytesDone: Type.Integer(), bytesTotal: Type.Union([Type.Integer(), Type.Null()]) }), Type.Null()]);

export const Snapshot = Type.Object({
  id: Type.String({ description: 'snap-…' }),
  label: Nullable(Type.String()),
  status: Type.Union([Type.Literal('creating'), Type.Literal('ready'), Type.Literal('failed'), Type.Literal('deleting')]),
  size: Type.String({ description: 'Logical size, decimal units: "2.4 GB".' }),
  automatic: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  trigger: Type.String({ description: 'manual, automatic, before-update or before-restore' }),
  sizeBytes: Type.Union([Type.Integer(), Type.Null()]),
  storedBytes: Type.Union([Type.Integer(), Type.Null()], { description: 'Bytes this snapshot added to the store.' }),
  files: Type.Union([Type.Integer(), Type.Null()]),
  readyAt: Nullable(Type.String({ format: 'date-time' })),
  consistency: Nullable(Type.String({ description: 'frozen or live' })),
  freezeMs: Type.Union([Type.Integer(), Type.Null()]),
  error: Nullable(Type.String()),
  warning: Nullable(Type.String()),
  progress: Progress,
});

const VolumePair = Type.Object({
  from: Type.String({ description: 'Snapshot volume, "service.volume".' }),
  to: Type.String({ description: 'Current volume, "service.volume".' }),
  match: Type.Union([Type.Literal('name'), Type.Literal('mount'), Type.Literal('position')]),
});

export const Restore = Type.Object({
  id: Type.String({ description: 'rst-…' }),
  snapshotId: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('restoring'), Type.Literal('swapping'), Type.Literal('completed'), Type.Literal('failed')]),
  safetySnapshot: Type.Boolean(),
  safetySnapshotId: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Nullable(Type.String({ format: 'date-time' })),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
  downtimeMs: Type.Union([Type.Integer(), Type.Null()]),
  error: Nullable(Type.String()),
  progress: Progress,
  volumes: Type.Union([Type.Array(VolumePair), Type.Null()], { description: 'Which snapshot volume goes into which current volume (null for restores older than this field).' }),
  untouchedVolumes: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'Current volumes the snapshot does not hold: left as they are.' }),
});

export const RestorePlan = Type.Object({
  volumes: Type.Array(VolumePair),
  untouchedVolumes: Type.Array(Type.String(), { description: 'Current volumes the snapshot does not hold: left as they are.' }),
  missingVolumes: Type.Array(Type.String(), { description: 'Snapshot volumes with no current volume to go into.' }),
  refusal: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()], { description: 'Why a restore would be refused (409), or null.' }),
});

export const Settings = Type.Object({
  enabled: Type.Boolean(),
  interval: Type.String(),
  retention: Type.Integer(),
  nextRunAt: Nullable(Type.String({ format: 'date-time' })),
  minInterval: Type.String({ description: "The server's minimum interval." }),
});

export const ErrorResponse = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});

/** ok wraps a response schema in the success envelope. */
export const ok = (props: Record<string, TSchema>) => Type.Object({ success: Type.Literal(true), ...props });
