/**
 * views: the API's JSON of deployments, snapshots, restores, settings, API
 * keys and the caller. Each view builds exactly its type in the API contract
 * (src/api/contract.ts): `satisfies` flags a missing or unknown field here,
 * and views.test.ts checks that the built type equals the contract's, so the
 * answers, their response schemas and both clients cannot drift apart.
 * Shapes the customer fixed are kept exactly; extra fields are additions.
 */
import type * as Api from '../api/contract.js';
import { iso } from '../core/clock.js';
import { formatBytes, formatDuration } from '../core/units.js';
import type { ApiKey } from '../db/api-keys.js';
import type { Deployment } from '../db/deployments.js';
import type { Restore } from '../db/restores.js';
import { DEFAULT_VERIFICATION, type SnapshotSettings } from '../db/settings.js';
import type { Verification } from '../db/verifications.js';
import type { Snapshot } from '../db/snapshots.js';
import type { User } from '../db/users.js';
import type { ServiceStatus } from '../runtime/types.js';
import { describeRetention, retentionPolicy } from '../scheduler/retention.js';
import type { Delivery, Webhook } from '../db/webhooks.js';
import type { DiskStatus } from './disk-health.js';
import type { SnapshotHealth } from './snapshot-health.js';
import type { RetentionPreview } from './settings-service.js';
import type { RestorePlanResult } from './restore-service.js';
import { type VerificationStatus, partsFor } from './verification-service.js';

const isoOrNull = (t: number | null): string | null => (t === null ? null : iso(t));

function progress(done: number | null, total: number | null): Api.Progress | null {
  return done === null ? null : { bytesDone: done, bytesTotal: total };
}

/**
 * What /healthz and the console say while the process runtime serves: it
 * offers no isolation at all (docs/operations.md, Runtimes).
 */
export const PROCESS_ISOLATION_WARNING =
  'process runtime: services run as local processes of the user running kova, with no isolation; ' +
  'any deployment can read every volume, the database and the admin key (for development only)';

/**
 * healthView is /healthz: the runtime in use, how isolated its services are
 * and, given the data disk's status, whether the node is degraded.
 */
export function healthView(runtime: 'docker' | 'process', version: string, disk: DiskStatus | null = null) {
  const status = disk?.status ?? 'ok';
  const base =
    runtime === 'process'
      ? { status, runtime, isolation: 'none', warning: PROCESS_ISOLATION_WARNING, version }
      : { status, runtime, isolation: 'container', version };
  return disk ? { ...base, reasons: disk.reasons, freeBytes: disk.freeBytes } : base;
}

export function snapshotView(s: Snapshot) {
  return {
    id: s.id,
    label: s.label,
    status: s.status,
    size: formatBytes(s.sizeBytes ?? 0),
    automatic: s.trigger === 'automatic',
    createdAt: iso(s.createdAt),
    trigger: s.trigger,
    sizeBytes: s.sizeBytes,
    storedBytes: s.storedBytes,
    files: s.files,
    readyAt: isoOrNull(s.readyAt),
    consistency: s.consistency,
    freezeMs: s.freezeMs,
    error: s.error,
    warning: s.warning,
    progress: s.status === 'creating' ? progress(s.progressDone, s.progressTotal) : null,
    offsite: s.offsite ? { status: s.offsite.status, copiedAt: isoOrNull(s.offsite.copiedAt), error: s.offsite.error } : null,
    damaged: (s.damagedAt ?? null) !== null,
    damagedAt: isoOrNull(s.damagedAt ?? null),
  } satisfies Api.Snapshot;
}

export function restoreView(r: Restore) {
  return {
    id: r.id,
    snapshotId: r.snapshotId,
    status: r.status,
    safetySnapshot: r.safetySnapshot,
    safetySnapshotId: r.safetySnapshotId,
    createdAt: iso(r.createdAt),
    startedAt: isoOrNull(r.startedAt),
    finishedAt: isoOrNull(r.finishedAt),
    downtimeMs: r.downtimeMs,
    error: r.error,
    progress: r.status === 'restoring' ? progress(r.progressDone, r.progressTotal) : null,
    volumes: r.volumes ? r.volumes.pairs.map((v) => ({ ...v })) : null,
    untouchedVolumes: r.volumes ? [...r.volumes.notInSnapshot] : null,
    paths: r.selection ? [...r.selection.paths] : null,
    mode: r.selection?.mode ?? null,
    into: r.selection?.into ?? null,
  } satisfies Api.Restore;
}

export function restorePlanView(p: RestorePlanResult) {
  return {
    volumes: p.mapping.pairs.map((v) => ({ ...v })),
    untouchedVolumes: [...p.mapping.notInSnapshot],
    missingVolumes: [...p.mapping.missing],
    refusal: p.refusal ? { code: p.refusal.code, message: p.refusal.message } : null,
    mode: p.selection?.mode ?? null,
    into: p.selection?.into ?? null,
    paths: p.selection
      ? p.selection.paths.map((x) => ({
          path: x.path,
          volume: x.volume,
          target: x.target,
          type: x.type as string,
          action: x.action,
          live: x.live,
          removed: [...x.removed],
          removedMore: x.removedMore,
        }))
      : null,
  } satisfies Api.RestorePlan;
}

/** The last instant an ISO 8601 date with a four-digit year can say (9999-12-31T23:59:59.999Z). */
const LAST_ISO_MS = 253_402_300_799_999;

/**
 * settingsView never throws: a due time no client could read (see SettingsService) shows as null.
 * `verification` is where the checks stand (VerificationService.status); without it (a server that
 * does not hold the data) the setting alone is shown.
 */
export function settingsView(
  s: SnapshotSettings & { readonly offsite?: { readonly enabled: boolean } | null },
  minIntervalMs: number,
  verification: VerificationStatus | null = null,
) {
  const next = s.nextRunAt !== null && Number.isFinite(s.nextRunAt) && s.nextRunAt >= 0 && s.nextRunAt <= LAST_ISO_MS ? s.nextRunAt : null;
  return {
    enabled: s.enabled,
    interval: s.interval ?? formatDuration(s.intervalMs),
    retention: s.retention,
    nextRunAt: s.enabled ? isoOrNull(next) : null,
    minInterval: formatDuration(minIntervalMs),
    keepHourly: s.keepHourly,
    keepDaily: s.keepDaily,
    keepWeekly: s.keepWeekly,
    keepMonthly: s.keepMonthly,
    retentionDescription: describeRetention(retentionPolicy(s)),
    offsite: s.offsite ? { enabled: s.offsite.enabled } : null,
    verification: verificationSummaryView(verification ?? verificationSetting(s)),
  } satisfies Api.SnapshotSettings;
}

/** The problems a verification view lists. */
const PROBLEMS_SHOWN = 20;

export function verificationView(v: Verification) {
  return {
    id: v.id,
    trigger: v.trigger,
    part: v.part,
    parts: v.parts,
    status: v.status,
    createdAt: iso(v.createdAt),
    startedAt: isoOrNull(v.startedAt),
    finishedAt: isoOrNull(v.finishedAt),
    bytesRead: v.bytesRead,
    findings: v.findings,
    problems: v.findingList.slice(0, PROBLEMS_SHOWN).map((f) => ({ kind: f.kind, message: f.message })),
    damagedSnapshots: [...v.damagedSnapshots],
    error: v.error,
  } satisfies Api.Verification;
}

/** verificationSetting is a settings row's verification setting alone, with nothing known about its checks. */
function verificationSetting(s: SnapshotSettings): VerificationStatus {
  const intervalMs = s.verifyIntervalMs ?? DEFAULT_VERIFICATION.intervalMs;
  return {
    enabled: s.verifyEnabled ?? DEFAULT_VERIFICATION.enabled,
    intervalMs,
    interval: s.verifyInterval ?? formatDuration(intervalMs),
    nextRunAt: null,
    nextPart: 0,
    parts: partsFor(intervalMs),
    lastVerification: null,
    lastFullCheckAt: null,
  };
}

export function verificationSummaryView(s: VerificationStatus) {
  return {
    enabled: s.enabled,
    interval: s.interval,
    nextRunAt: isoOrNull(s.nextRunAt),
    nextPart: s.nextPart,
    parts: s.parts,
    lastVerification: s.lastVerification ? verificationView(s.lastVerification) : null,
    lastFullCheckAt: isoOrNull(s.lastFullCheckAt),
  } satisfies Api.VerificationSummary;
}

/** retentionPreviewView: a preview's times as ISO 8601. */
export function retentionPreviewView(p: RetentionPreview) {
  return {
    description: p.description,
    keep: p.keep.map((k) => ({ id: k.id, createdAt: iso(k.createdAt), reasons: [...k.reasons] })),
    prune: p.prune.map((s) => ({ id: s.id, createdAt: iso(s.createdAt) })),
  } satisfies Api.RetentionPreview;
}

export interface DeploymentExtras {
  readonly services?: readonly ServiceStatus[];
  readonly volumeBytes?: Readonly<Record<string, number>>;
  readonly snapshots?: Api.SnapshotSummary;
  readonly operation?: string | null;
  readonly snapshotHealth?: SnapshotHealth;
  /** The node it runs on (network mode only). */
  readonly node?: Api.DeploymentNode | null;
}

export function deploymentView(d: Deployment, extras: DeploymentExtras = {}) {
  const status = new Map((extras.services ?? []).map((s) => [s.name, s]));
  return {
    id: d.id,
    name: d.name,
    status: d.status,
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
    closedAt: isoOrNull(d.closedAt),
    clonedFrom: d.clonedFrom,
    sdl: d.sdl,
    operation: extras.operation ?? null,
    services: d.manifest.services.map(
      (s) =>
        ({
          name: s.name,
          image: s.image,
          state: d.status === 'closed' ? 'removed' : (status.get(s.name)?.state ?? 'unknown'),
          startedAt: status.get(s.name)?.startedAt ?? null,
          volumes: s.volumes.map((v) => {
            const used = extras.volumeBytes?.[`${s.name}.${v.name}`];
            return {
              name: v.name,
              mount: v.mount,
              sizeBytes: v.sizeBytes,
              size: formatBytes(v.sizeBytes),
              usedBytes: used ?? null,
            } satisfies Api.Volume;
          }),
        }) satisfies Api.Service,
    ),
    snapshots: extras.snapshots ?? null,
    snapshotHealth: extras.snapshotHealth ? snapshotHealthView(extras.snapshotHealth) : null,
    node: extras.node ?? null,
  } satisfies Api.Deployment;
}

export function snapshotHealthView(h: SnapshotHealth) {
  return { status: h.status, since: isoOrNull(h.since), message: h.message } satisfies Api.SnapshotHealth;
}

export function deliveryView(d: Delivery) {
  return {
    id: d.id,
    eventId: d.eventId,
    event: d.event,
    status: d.status,
    attempts: d.attempts,
    responseStatus: d.responseStatus,
    error: d.error,
    createdAt: iso(d.createdAt),
    lastAttemptAt: isoOrNull(d.lastAttemptAt),
    nextAttemptAt: d.status === 'pending' ? isoOrNull(d.nextAttemptAt) : null,
    finishedAt: isoOrNull(d.finishedAt),
  } satisfies Api.WebhookDelivery;
}

/** webhookView never carries the secret: it is shown once, in the answer that created the webhook. */
export function webhookView(w: Webhook, lastDelivery: Delivery | null) {
  return {
    id: w.id,
    url: w.url,
    events: [...w.events],
    createdAt: iso(w.createdAt),
    lastDelivery: lastDelivery ? deliveryView(lastDelivery) : null,
  } satisfies Api.Webhook;
}

export function apiKeyView(k: ApiKey) {
  return {
    prefix: k.prefix,
    label: k.label,
    createdAt: iso(k.createdAt),
    lastUsedAt: isoOrNull(k.lastUsedAt),
    revokedAt: isoOrNull(k.revokedAt),
  } satisfies Api.ApiKey;
}

/** What the server tells a signed-in client about itself. */
export interface ServerInfo {
  readonly version: string;
  readonly runtime: 'docker' | 'process';
  readonly minSnapshotIntervalMs: number;
  readonly mode: Api.ServerMode;
}

export function meView(user: User, role: Api.UserRole, server: ServerInfo) {
  return {
    user: { id: user.id, name: user.name, role },
    server: {
      version: server.version,
      runtime: server.runtime,
      minSnapshotInterval: formatDuration(server.minSnapshotIntervalMs),
      mode: server.mode,
    },
  } satisfies Api.Me;
}
