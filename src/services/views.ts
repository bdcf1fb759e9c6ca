/**
 * views: the API's JSON shapes of deployments, snapshots, restores and
 * settings (SPEC.md section 4). Shapes the customer fixed are kept exactly;
 * extra fields are additions.
 */
import { iso } from '../core/clock.js';
import type { KovaError } from '../core/errors.js';
import { formatBytes, formatDuration } from '../core/units.js';
import type { Deployment } from '../db/deployments.js';
import type { Restore } from '../db/restores.js';
import type { SnapshotSettings } from '../db/settings.js';
import type { Snapshot } from '../db/snapshots.js';
import type { ServiceStatus } from '../runtime/types.js';
import type { VolumeMapping } from './volume-map.js';

const isoOrNull = (t: number | null): string | null => (t === null ? null : iso(t));

function progress(done: number | null, total: number | null): { bytesDone: number; bytesTotal: number | null } | null {
  return done === null ? null : { bytesDone: done, bytesTotal: total };
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
  };
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
    volumes: r.volumes ? r.volumes.pairs : null,
    untouchedVolumes: r.volumes ? r.volumes.notInSnapshot : null,
  };
}

export function restorePlanView(p: { mapping: VolumeMapping; refusal: KovaError | null }) {
  return {
    volumes: p.mapping.pairs,
    untouchedVolumes: p.mapping.notInSnapshot,
    missingVolumes: p.mapping.missing,
    refusal: p.refusal ? { code: p.refusal.code, message: p.refusal.message } : null,
  };
}

export function settingsView(s: SnapshotSettings, minIntervalMs: number) {
  return {
    enabled: s.enabled,
    interval: s.interval ?? formatDuration(s.intervalMs),
    retention: s.retention,
    nextRunAt: s.enabled ? isoOrNull(s.nextRunAt) : null,
    minInterval: formatDuration(minIntervalMs),
  };
}

export interface DeploymentExtras {
  readonly services?: readonly ServiceStatus[];
  readonly volumeBytes?: Readonly<Record<string, number>>;
  readonly snapshots?: { count: number; sizeBytes: number; storedBytes: number; lastSnapshotAt: string | null };
  readonly operation?: string | null;
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
    services: d.manifest.services.map((s) => ({
      name: s.name,
      image: s.image,
      state: d.status === 'closed' ? 'removed' : (status.get(s.name)?.state ?? 'unknown'),
      startedAt: status.get(s.name)?.startedAt ?? null,
      volumes: s.volumes.map((v) => {
        const used = extras.volumeBytes?.[`${s.name}.${v.name}`];
        return { name: v.name, mount: v.mount, sizeBytes: v.sizeBytes, size: formatBytes(v.sizeBytes), usedBytes: used ?? null };
      }),
    })),
    snapshots: extras.snapshots ?? null,
  };
}
