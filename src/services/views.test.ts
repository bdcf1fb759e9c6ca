/**
 * The views: each builds exactly the API contract's
 * type (checked by the compiler: `npm run typecheck` fails on a field added
 * or dropped on one side only), and the contract's response schema, which
 * serialises every answer, keeps every field a view builds; /healthz says
 * how isolated services are; a stored value never makes a view throw.
 */
import type { TSchema } from '@sinclair/typebox';
import Fastify from 'fastify';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as Api from '../api/contract.js';
import {
  ApiKey,
  Deployment,
  Me,
  Restore,
  Snapshot,
  SnapshotSettings,
  Verification,
  VerificationSummary,
  Webhook,
  WebhookDelivery,
  ok,
} from '../api/contract.js';
import type { ApiKey as ApiKeyRow } from '../db/api-keys.js';
import type { Deployment as DeploymentRow } from '../db/deployments.js';
import type { Restore as RestoreRow } from '../db/restores.js';
import type { SnapshotSettings as SettingsRow } from '../db/settings.js';
import type { Verification as VerificationRow } from '../db/verifications.js';
import type { VerificationStatus } from './verification-service.js';
import type { Snapshot as SnapshotRow } from '../db/snapshots.js';
import type { Delivery as DeliveryRow, Webhook as WebhookRow } from '../db/webhooks.js';
import type { snapshotHealthView } from './views.js';
import {
  PROCESS_ISOLATION_WARNING,
  apiKeyView,
  deliveryView,
  deploymentView,
  healthView,
  meView,
  restoreView,
  settingsView,
  snapshotView,
  verificationSummaryView,
  verificationView,
  webhookView,
} from './views.js';

describe('view types', () => {
  it('are exactly the contract types', () => {
    expectTypeOf<ReturnType<typeof snapshotView>>().toEqualTypeOf<Api.Snapshot>();
    expectTypeOf<ReturnType<typeof restoreView>>().toEqualTypeOf<Api.Restore>();
    expectTypeOf<ReturnType<typeof settingsView>>().toEqualTypeOf<Api.SnapshotSettings>();
    expectTypeOf<ReturnType<typeof deploymentView>>().toEqualTypeOf<Api.Deployment>();
    expectTypeOf<ReturnType<typeof apiKeyView>>().toEqualTypeOf<Api.ApiKey>();
    expectTypeOf<ReturnType<typeof meView>>().toEqualTypeOf<Api.Me>();
    expectTypeOf<ReturnType<typeof webhookView>>().toEqualTypeOf<Api.Webhook>();
    expectTypeOf<ReturnType<typeof deliveryView>>().toEqualTypeOf<Api.WebhookDelivery>();
    expectTypeOf<ReturnType<typeof snapshotHealthView>>().toEqualTypeOf<Api.SnapshotHealth>();
    expectTypeOf<ReturnType<typeof verificationView>>().toEqualTypeOf<Api.Verification>();
    expectTypeOf<ReturnType<typeof verificationSummaryView>>().toEqualTypeOf<Api.VerificationSummary>();
  });
});

/* Rows with every optional value present, so every field of a view has something to lose. */

const T0 = Date.UTC(2026, 1, 10, 9, 15, 0);

const snapshotRow: SnapshotRow = {
  id: 'snap-a1b2c3d4e5f6',
  deploymentId: 'dep-x7c2m4n5b6v8',
  label: 'before-migration',
  status: 'creating',
  trigger: 'before-update',
  createdAt: T0,
  readyAt: T0 + 4000,
  engineId: 'e'.repeat(64),
  sizeBytes: 2_400_000_000,
  storedBytes: 51_200_000,
  files: 1832,
  consistency: 'frozen',
  freezeMs: 38,
  error: 'a post hook failed',
  warning: 'hook exited 1',
  progressDone: 1000,
  progressTotal: 5000,
  offsite: { status: 'failed', copiedAt: T0, error: 'the endpoint answered 503' },
  damagedAt: T0 + 9000,
};

const restoreRow: RestoreRow = {
  id: 'rst-k2j4h5g6f7d8',
  deploymentId: 'dep-x7c2m4n5b6v8',
  snapshotId: 'snap-a1b2c3d4e5f6',
  status: 'restoring',
  safetySnapshot: true,
  safetySnapshotId: 'snap-q9w8e7r6t5y4',
  journal: {},
  createdAt: T0,
  startedAt: T0 + 2000,
  finishedAt: T0 + 9000,
  downtimeMs: 420,
  error: 'none yet',
  progressDone: 10,
  progressTotal: 20,
  volumes: { pairs: [{ from: 'app.data', to: 'web.data', match: 'mount' }], notInSnapshot: ['web.cache'] },
  selection: {
    paths: ['app/data/db'],
    mode: 'alongside',
    into: 'restored',
    items: [{ path: 'app/data/db', from: 'app.data', to: 'web.data', rel: 'db' }],
  },
};

const settingsRow: SettingsRow = {
  deploymentId: 'dep-x7c2m4n5b6v8',
  enabled: true,
  intervalMs: 6 * 3600_000,
  interval: '6h',
  retention: 14,
  keepHourly: 24,
  keepDaily: 7,
  keepWeekly: 4,
  keepMonthly: 12,
  nextRunAt: T0 + 3600_000,
  updatedAt: T0,
};

const deploymentRow: DeploymentRow = {
  id: 'dep-x7c2m4n5b6v8',
  userId: 'usr-1',
  name: 'app',
  sdl: 'version: "2.0"\n',
  manifest: {
    services: [
      {
        name: 'db',
        image: 'postgres:16',
        command: [],
        args: [],
        env: {},
        expose: [],
        volumes: [{ name: 'data', mount: '/var/lib/postgresql/data', sizeBytes: 10 * 1024 ** 3, readOnly: false }],
        hooks: { pre: null, post: null },
      },
    ],
  },
  status: 'active',
  clonedFrom: 'dep-aaaaaaaaaaaa',
  createdAt: T0,
  updatedAt: T0 + 1000,
  closedAt: T0 + 2000,
};

const keyRow: ApiKeyRow = {
  prefix: 'abcd1234',
  userId: 'usr-1',
  secretHash: 'scrypt$…',
  label: 'ci',
  createdAt: T0,
  lastUsedAt: T0 + 1000,
  revokedAt: T0 + 2000,
};

const hookRow: WebhookRow = {
  id: 'whk-a1b2c3d4e5f6',
  userId: 'usr-1',
  url: 'https://hooks.example.com/kova',
  events: ['snapshot.failed', 'restore.failed'],
  secret: 'whsec_never-shown',
  createdAt: T0,
};

const deliveryRow: DeliveryRow = {
  seq: 7,
  id: 'dlv-a1b2c3d4e5f6',
  webhookId: hookRow.id,
  eventId: 'evt-a1b2c3d4e5f6',
  event: 'snapshot.failed',
  body: '{}',
  status: 'pending',
  attempts: 2,
  nextAttemptAt: T0 + 60_000,
  responseStatus: 503,
  error: 'HTTP 503',
  createdAt: T0,
  lastAttemptAt: T0 + 30_000,
  finishedAt: T0 + 90_000,
};

const verificationRow: VerificationRow = {
  id: 'ver-1',
  deploymentId: 'dep-1',
  trigger: 'scheduled',
  part: 2,
  parts: 5,
  status: 'failed',
  createdAt: T0,
  startedAt: T0 + 1000,
  finishedAt: T0 + 60_000,
  stepsDone: 8,
  bytesRead: 1_048_576,
  packsRead: 3,
  findings: 1,
  findingList: [{ kind: 'pack-hash', message: 'pack abc does not match its name (damaged)', pack: 'abc' }],
  damagedSnapshots: ['snap-1'],
  error: 'the repository is locked by gc',
};

const verificationStatus: VerificationStatus = {
  enabled: true,
  intervalMs: 7 * 86_400_000,
  interval: '7d',
  nextRunAt: T0 + 86_400_000,
  nextPart: 3,
  parts: 5,
  lastVerification: verificationRow,
  lastFullCheckAt: T0 - 86_400_000,
};

const views: Array<[string, TSchema, object]> = [
  ['verification', Verification, verificationView(verificationRow)],
  ['verification summary', VerificationSummary, verificationSummaryView(verificationStatus)],
  ['snapshot', Snapshot, snapshotView(snapshotRow)],
  ['restore', Restore, restoreView(restoreRow)],
  ['settings', SnapshotSettings, settingsView({ ...settingsRow, offsite: { enabled: true } }, 3600_000, verificationStatus)],
  [
    'deployment',
    Deployment,
    deploymentView(deploymentRow, {
      services: [{ name: 'db', state: 'running', startedAt: new Date(T0).toISOString(), exitCode: null }],
      volumeBytes: { 'db.data': 52_428_800 },
      snapshots: { count: 4, sizeBytes: 209_715_200, storedBytes: 62_914_560, lastSnapshotAt: new Date(T0).toISOString() },
      operation: 'snapshot',
      snapshotHealth: { status: 'failed', since: T0, message: 'a pre hook failed' },
      node: { id: 'node-1', name: 'node-a', status: 'online', lastHeartbeatAt: new Date(T0).toISOString() },
    }),
  ],
  ['API key', ApiKey, apiKeyView(keyRow)],
  ['webhook', Webhook, webhookView(hookRow, deliveryRow)],
  ['delivery', WebhookDelivery, deliveryView(deliveryRow)],
  [
    'me',
    Me,
    meView({ id: 'usr-1', name: 'admin', createdAt: T0 }, 'admin', {
      version: '0.1.0',
      runtime: 'docker',
      minSnapshotIntervalMs: 3600_000,
      mode: 'network',
    }),
  ],
];

describe('response schemas', () => {
  it.each(views)('serialise the %s view without losing or changing a field', async (_name, schema, view) => {
    const app = Fastify({ logger: false });
    app.get('/', { schema: { response: { 200: ok({ value: schema }) } } }, async () => ({ success: true, value: view }));
    try {
      const res = await app.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ success: true, value: JSON.parse(JSON.stringify(view)) });
    } finally {
      await app.close();
    }
  });

  it('are checked by these tests with every nullable field filled in', () => {
    // A null would survive a schema that lacks the field's value type; the rows above fill everything.
    for (const [name, , view] of views) {
      const nulls: string[] = [];
      const walk = (v: unknown, path: string): void => {
        if (v === null) nulls.push(path);
        else if (typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
      };
      walk(view, name);
      expect(nulls).toEqual([]);
    }
  });
});

describe('healthView', () => {
  it('reports container isolation for Docker, and none with a warning for local processes', () => {
    expect(healthView('docker', '1.2.3')).toEqual({ status: 'ok', runtime: 'docker', isolation: 'container', version: '1.2.3' });
    expect(healthView('process', '1.2.3')).toEqual({
      status: 'ok',
      runtime: 'process',
      isolation: 'none',
      warning: PROCESS_ISOLATION_WARNING,
      version: '1.2.3',
    });
    expect(PROCESS_ISOLATION_WARNING).toMatch(/no isolation/);
  });
});

describe('settingsView and stored values', () => {
  const base = {
    deploymentId: 'dep-aaaaaaaaaaaa',
    enabled: true,
    intervalMs: 3_600_000,
    interval: '1h',
    retention: 7,
    updatedAt: 0,
    keepHourly: null,
    keepDaily: null,
    keepWeekly: null,
    keepMonthly: null,
  };

  it.each([253_402_300_800_000, 8.64e15, 9e18, -1, Number.NaN])(
    'shows a due time no client could read (%d) as null instead of throwing',
    (nextRunAt) => {
      expect(settingsView({ ...base, nextRunAt }, 3_600_000).nextRunAt).toBeNull();
    },
  );

  it('shows the last readable instant and the epoch as they are', () => {
    expect(settingsView({ ...base, nextRunAt: 253_402_300_799_999 }, 3_600_000).nextRunAt).toBe('9999-12-31T23:59:59.999Z');
    expect(settingsView({ ...base, nextRunAt: 0 }, 3_600_000).nextRunAt).toBe('1970-01-01T00:00:00.000Z');
  });
});
