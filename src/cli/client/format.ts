/**
 * format: how the client shows API objects as text (tables, key/value
 * blocks, relative times). --json output never goes through here.
 */
import { printable } from '../../core/text.js';
import { formatBytes, formatElapsed } from '../../core/units.js';
import { type Io, println, table } from '../output.js';
import type { Deployment, Restore, Snapshot, SnapshotSettings } from './api-client.js';

/** ago renders a time relative to now: "12s ago", "3h ago", "in 5m". */
export function ago(isoTime: string | null | undefined, now = Date.now()): string {
  if (!isoTime) return '';
  const t = Date.parse(isoTime);
  if (Number.isNaN(t)) return isoTime;
  const diff = now - t;
  const s = Math.round(Math.abs(diff) / 1000);
  let v: string;
  if (s < 60) v = `${s}s`;
  else if (s < 3600) v = `${Math.floor(s / 60)}m`;
  else if (s < 86_400) v = `${Math.floor(s / 3600)}h`;
  else if (s < 86_400 * 60) v = `${Math.floor(s / 86_400)}d`;
  else return isoTime.slice(0, 10);
  return diff >= -1000 ? `${v} ago` : `in ${v}`;
}

/** at renders an absolute time with its relative one: "2026-02-10T09:15:00Z (3h ago)". */
export function at(isoTime: string | null | undefined): string {
  return isoTime ? `${isoTime} (${ago(isoTime)})` : '-';
}

/** fields prints "KEY  value" lines, keys padded to the widest, values made printable. Empty values are left out. */
export function fields(io: Io, rows: ReadonlyArray<readonly [string, string | null | undefined]>): void {
  const shown = rows.filter((r): r is readonly [string, string] => r[1] !== null && r[1] !== undefined && r[1] !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  for (const [k, v] of shown) println(io, `${k.padEnd(width)}  ${printable(v)}`);
}

/** snapshotType is "manual" or "automatic", with the reason of a snapshot the service took itself. */
export function snapshotType(s: Snapshot): string {
  if (s.automatic) return 'automatic';
  return s.trigger && s.trigger !== 'manual' && s.trigger !== 'automatic' ? `manual (${s.trigger})` : 'manual';
}

export const SNAPSHOT_HEADERS = ['ID', 'LABEL', 'STATUS', 'SIZE', 'TYPE', 'CREATED', 'CONSISTENCY', 'STORED'] as const;

/**
 * storedWhere says where a ready snapshot is kept: `local`, `local+offsite`
 * once its off-node copy is complete, or the copy's state while it is not.
 */
export function storedWhere(s: Pick<Snapshot, 'status' | 'offsite'>): string {
  if (s.status !== 'ready') return '';
  const o = s.offsite;
  if (!o) return 'local';
  return o.status === 'copied' ? 'local+offsite' : `local (offsite ${o.status})`;
}

export function snapshotRow(s: Snapshot, now = Date.now()): string[] {
  return [
    s.id,
    s.label ?? '',
    s.damaged ? `${s.status} DAMAGED` : s.status,
    s.size,
    snapshotType(s),
    ago(s.createdAt, now),
    s.consistency ?? '',
    storedWhere(s),
  ];
}

export function printSnapshot(io: Io, s: Snapshot): void {
  const progress =
    s.status === 'creating' && s.progress
      ? `${formatBytes(s.progress.bytesDone)}${s.progress.bytesTotal !== null ? ` of ${formatBytes(s.progress.bytesTotal)}` : ''}`
      : null;
  fields(io, [
    ['ID', s.id],
    ['LABEL', s.label ?? '-'],
    ['STATUS', s.status],
    ['PROGRESS', progress],
    ['ERROR', s.error],
    ['WARNING', s.warning],
    ['DAMAGED', s.damagedAt ? `a verification found part of its data damaged ${at(s.damagedAt)}` : null],
    ['TYPE', snapshotType(s)],
    ['SIZE', s.sizeBytes === null || s.sizeBytes === undefined ? s.size : `${s.size} (${s.sizeBytes} bytes)`],
    ['FILES', s.files === null || s.files === undefined ? null : String(s.files)],
    ['ADDED', s.storedBytes === null || s.storedBytes === undefined ? null : `${formatBytes(s.storedBytes)} to the store`],
    [
      'CONSISTENCY',
      s.consistency
        ? `${s.consistency}${s.freezeMs !== null && s.freezeMs !== undefined && s.consistency === 'frozen' ? ` (services paused ${formatElapsed(s.freezeMs)})` : ''}`
        : null,
    ],
    ['CREATED', at(s.createdAt)],
    ['READY', s.readyAt ? at(s.readyAt) : null],
    ['STORED', storedWhere(s) || null],
    ['OFFSITE', s.offsite?.copiedAt ? `copied ${at(s.offsite.copiedAt)}` : (s.offsite?.error ?? null)],
  ]);
}

export function printRestore(io: Io, r: Restore): void {
  fields(io, [
    ['ID', r.id],
    ['SNAPSHOT', r.snapshotId],
    ['STATUS', r.status],
    ['ERROR', r.error],
    ['SAFETY SNAPSHOT', r.safetySnapshotId ?? (r.safetySnapshot === false ? 'none' : null)],
    ['DOWNTIME', r.downtimeMs === null || r.downtimeMs === undefined ? null : formatElapsed(r.downtimeMs)],
    ['STARTED', r.startedAt ? at(r.startedAt) : null],
    ['FINISHED', r.finishedAt ? at(r.finishedAt) : null],
  ]);
}

/** servicesSummary renders "app running, db stopped". */
export function servicesSummary(d: Deployment): string {
  return (d.services ?? []).map((s) => `${s.name} ${s.state}`).join(', ');
}

export function deploymentStatus(d: Deployment): string {
  return d.operation ? `${d.status} (${d.operation})` : d.status;
}

/**
 * deploymentNode renders the node a deployment runs on (network mode): "node-1 (online)", and
 * for an offline node when it was last heard from; null when there is none (the all-in-one).
 */
export function deploymentNode(d: Deployment, now = Date.now()): string | null {
  const n = d.node;
  if (!n) return null;
  if (n.status !== 'offline') return `${n.name} (${n.status})`;
  return `${n.name} (offline, ${n.lastHeartbeatAt ? `last seen ${ago(n.lastHeartbeatAt, now)}` : 'never seen'})`;
}

export const DEPLOYMENT_HEADERS = ['ID', 'NAME', 'STATUS', 'SERVICES', 'SNAPSHOTS', 'CREATED'] as const;

/** deploymentTable: the headers and rows of `kova deployments ls`, with a NODE column when a deployment has a node. */
export function deploymentTable(list: readonly Deployment[], now = Date.now()): { headers: string[]; rows: string[][] } {
  const withNodes = list.some((d) => d.node);
  const headers: string[] = [...DEPLOYMENT_HEADERS];
  if (withNodes) headers.splice(3, 0, 'NODE');
  const rows = list.map((d) => {
    const row = deploymentRow(d, now);
    if (withNodes) row.splice(3, 0, deploymentNode(d, now) ?? '');
    return row;
  });
  return { headers, rows };
}

export function deploymentRow(d: Deployment, now = Date.now()): string[] {
  return [d.id, d.name, deploymentStatus(d), servicesSummary(d), d.snapshots ? String(d.snapshots.count) : '', ago(d.createdAt, now)];
}

export function printDeployment(io: Io, d: Deployment): void {
  const snaps = d.snapshots
    ? `${d.snapshots.count}, ${formatBytes(d.snapshots.sizeBytes)} of data in ${formatBytes(d.snapshots.storedBytes)} stored` +
      (d.snapshots.lastSnapshotAt ? `, last ${ago(d.snapshots.lastSnapshotAt)}` : '')
    : null;
  fields(io, [
    ['ID', d.id],
    ['NAME', d.name],
    ['STATUS', deploymentStatus(d)],
    ['NODE', deploymentNode(d)],
    ['CLONED FROM', d.clonedFrom],
    ['CREATED', at(d.createdAt)],
    ['UPDATED', d.updatedAt && d.updatedAt !== d.createdAt ? at(d.updatedAt) : null],
    ['CLOSED', d.closedAt ? at(d.closedAt) : null],
    ['SNAPSHOTS', snaps],
  ]);
  const services = d.services ?? [];
  if (services.length === 0) return;
  println(io);
  const rows = services.map((s) => [
    s.name,
    s.image,
    s.state,
    s.volumes
      .map((v) => `${v.name} at ${v.mount} (${v.usedBytes === null ? '' : `${formatBytes(v.usedBytes)} used of `}${v.size})`)
      .join(', ') || '-',
  ]);
  table(io, ['SERVICE', 'IMAGE', 'STATE', 'VOLUMES'], rows);
}

/** calendarTiers lists the calendar retention tiers set ("daily 7, monthly 12"), or "none". */
function calendarTiers(s: SnapshotSettings): string {
  const tiers = (
    [
      ['hourly', s.keepHourly],
      ['daily', s.keepDaily],
      ['weekly', s.keepWeekly],
      ['monthly', s.keepMonthly],
    ] as const
  )
    .filter(([, n]) => typeof n === 'number')
    .map(([name, n]) => `${name} ${n}`);
  return tiers.length === 0 ? 'none' : tiers.join(', ');
}

export function printSettings(io: Io, s: SnapshotSettings): void {
  fields(io, [
    ['AUTOMATIC SNAPSHOTS', s.enabled ? 'enabled' : 'disabled'],
    ['INTERVAL', `every ${s.interval}${s.minInterval ? ` (server minimum ${s.minInterval})` : ''}`],
    ['RETENTION', `keep the newest ${s.retention} automatic snapshot${s.retention === 1 ? '' : 's'}`],
    ['CALENDAR', calendarTiers(s)],
    ['POLICY', s.retentionDescription ?? null],
    ['NEXT RUN', s.enabled ? (s.nextRunAt ? at(s.nextRunAt) : 'not scheduled') : null],
    ['OFF-NODE COPIES', s.offsite ? (s.offsite.enabled ? 'on: every ready snapshot is copied' : 'off') : null],
  ]);
}
