/**
 * schemas: JSON schemas of every request's parameters and body. They validate
 * input (unknown fields are rejected) and feed the OpenAPI document. The
 * answers' schemas are in ./contract.ts, which also gives the clients the
 * bodies' types; like it, this file imports nothing but TypeBox.
 */
import { Type } from '@sinclair/typebox';

export const DeploymentParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
export const SnapshotParams = Type.Object(
  { id: Type.String({ maxLength: 64 }), snapshotId: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);
export const RestoreParams = Type.Object(
  { id: Type.String({ maxLength: 64 }), restoreId: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);
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
  {
    label: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description: 'At most 64 characters of printable text (see the text rule in docs/api.md).',
      }),
    ),
  },
  { additionalProperties: false },
);

/** The selection of a restore of chosen paths, in a body or (plan) a query. */
const RestorePaths = {
  mode: Type.Optional(
    Type.Union([Type.Literal('replace'), Type.Literal('alongside')], {
      description: 'With paths: replace them in place (default), or restore them alongside, under into.',
    }),
  ),
  into: Type.Optional(
    Type.String({ maxLength: 4096, description: 'alongside: a folder of the volume, absent or empty, e.g. "restored-2026-12-05".' }),
  ),
};

export const RestoreBody = Type.Object(
  {
    safetySnapshot: Type.Optional(Type.Boolean({ description: 'Snapshot the current state first (default true; never when alongside).' })),
    paths: Type.Optional(
      Type.Array(Type.String({ maxLength: 4096 }), {
        maxItems: 1000,
        description: 'Restore only these paths, as the files API shows them ("app/data/db/"); without it, everything.',
      }),
    ),
    ...RestorePaths,
  },
  { additionalProperties: false },
);

export const RestorePlanQuery = Type.Object(
  {
    paths: Type.Optional(
      Type.Union([Type.String({ maxLength: 4096 }), Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 1000 })], {
        description: 'Repeat for several paths: ?paths=app/data/db&paths=app/data/conf',
      }),
    ),
    ...RestorePaths,
  },
  { additionalProperties: false },
);

export const CloneBody = Type.Object({ name: Type.Optional(Type.String()) }, { additionalProperties: false });

/** A calendar retention tier: 0 to 1000, or null to unset. */
function Tier(periods: string) {
  return Type.Union([Type.Integer({ minimum: 0, maximum: 1000 }), Type.Null()], {
    description: `Keep the newest automatic snapshot of each of the last N ${periods}; 0 to 1000, null for none.`,
  });
}

export const SettingsBody = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    interval: Type.Optional(Type.String({ description: 'A duration: 30m, 6h, 24h, 7d.' })),
    retention: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Automatic snapshots kept, 1 to 100.' })),
    keepHourly: Type.Optional(Tier('hours')),
    keepDaily: Type.Optional(Tier('days (UTC)')),
    keepWeekly: Type.Optional(Tier('ISO weeks (UTC)')),
    keepMonthly: Type.Optional(Tier('months (UTC)')),
    offsite: Type.Optional(
      Type.Object(
        { enabled: Type.Optional(Type.Boolean()) },
        { additionalProperties: false, description: 'Off-node copies (default on when the server has a target).' },
      ),
    ),
    verification: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          interval: Type.Optional(Type.String({ description: 'A duration from the minimum interval to 30d: 1d, 7d.' })),
        },
        { additionalProperties: false, description: 'Scheduled verification of the stored data; absent fields stay as they are.' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const CreateKeyBody = Type.Object({ label: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false });

export const WebhookParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

export const CreateWebhookBody = Type.Object(
  {
    url: Type.String({ description: 'http:// or https://, at most 2048 characters.' }),
    events: Type.Array(Type.String(), {
      maxItems: 20,
      description: 'snapshot.failed, snapshot.missed, restore.completed, restore.failed, offsite.failed, verification.failed.',
    }),
    secret: Type.Optional(Type.String({ description: 'The signing secret, 16 to 256 printable ASCII characters; generated when absent.' })),
  },
  { additionalProperties: false },
);

export const DeliveriesQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ maxLength: 32 })),
    limit: Type.Optional(Type.String({ maxLength: 12, description: '1 to 200; default 50' })),
  },
  { additionalProperties: false },
);

export const RequestVerificationBody = Type.Object(
  { full: Type.Optional(Type.Boolean({ description: 'Read all the data, not only the next part; default false.' })) },
  { additionalProperties: false },
);

export const VerificationsQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ maxLength: 64, description: 'The cursor of the previous page.' })),
    limit: Type.Optional(Type.String({ maxLength: 12, description: '1 to 200; default 50' })),
  },
  { additionalProperties: false },
);

export const RecoverDeploymentBody = Type.Object(
  {
    snapshotId: Type.Optional(
      Type.String({ maxLength: 64, description: 'The snapshot to start from; default the newest whose off-node copy is copied.' }),
    ),
  },
  { additionalProperties: false },
);
