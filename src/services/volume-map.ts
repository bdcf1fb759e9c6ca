/**
 * volume-map: which volume of a snapshot goes into which volume of the
 * deployment as it is now, after services or volumes were renamed.
 *
 * A snapshot holds one directory per volume, named "service.volume". Each
 * snapshot volume is matched, in this order:
 *   1. name      a current volume with the same "service.volume";
 *   2. mount     else the one current volume with the same mount path, when
 *                no other unmatched snapshot volume has that mount path
 *                either (a renamed service keeps where it sees its data);
 *                several candidates make it ambiguous: no match at all;
 *   3. position  else, when no current volume has its mount path, the
 *                current volume at the same position in the SDL
 *                (services in order, their volumes in order) when it shares
 *                its service name or its volume name: a rename of one of the
 *                two, never both at once with a new mount path.
 * Every match is one-to-one. A snapshot volume left unmatched has no place
 * to go: restoring would lose it, so the restore is refused (VOLUMES_CHANGED).
 * A current volume the snapshot lacks is left as it is.
 *
 * The snapshot's layout (mount path and position of each volume) is recorded
 * in its engine tags at capture (`volume:<key>=<mount>`, in SDL order);
 * snapshots taken before that carry only their directory names, and match by
 * name, or by position when they hold a single volume.
 */
import { ConflictError } from '../core/errors.js';
import type { VolumeRef } from './paths.js';

/** A volume as a snapshot holds it. */
export interface SnapshotVolume {
  /** "service.volume": its directory in the snapshot. */
  readonly key: string;
  /** Where the service saw it when the snapshot was taken (null: not recorded). */
  readonly mount: string | null;
  /** Its position in the SDL when the snapshot was taken (null: not recorded). */
  readonly position: number | null;
}

export type VolumeMatch = 'name' | 'mount' | 'position';

export interface VolumePair {
  /** Snapshot volume ("service.volume"). */
  readonly from: string;
  /** Current volume it is restored into. */
  readonly to: string;
  readonly match: VolumeMatch;
}

export interface VolumeMapping {
  /** In the order of the current SDL. */
  readonly pairs: readonly VolumePair[];
  /** Snapshot volumes with no current volume to go into. */
  readonly missing: readonly string[];
  /** Current volumes the snapshot does not hold: a restore leaves them as they are. */
  readonly notInSnapshot: readonly string[];
}

const TAG = 'volume:';

/** volumeTags records a manifest's volumes (mount and order) in a snapshot's tags. */
export function volumeTags(volumes: readonly Pick<VolumeRef, 'key' | 'mount'>[]): string[] {
  return volumes.map((v) => `${TAG}${v.key}=${v.mount}`);
}

/**
 * snapshotVolumes lists the volumes a snapshot holds: its root's directory
 * names, with mount path and position from its tags when it has them.
 */
export function snapshotVolumes(tags: readonly string[], rootNames: readonly string[]): SnapshotVolume[] {
  const layout = new Map<string, { mount: string; position: number }>();
  for (const t of tags) {
    if (!t.startsWith(TAG)) continue;
    const eq = t.indexOf('=', TAG.length);
    if (eq < 0) continue;
    layout.set(t.slice(TAG.length, eq), { mount: t.slice(eq + 1), position: layout.size });
  }
  const names = [...rootNames];
  const known = layout.size > 0 && names.every((n) => layout.has(n));
  const ordered = known ? names.sort((a, b) => layout.get(a)!.position - layout.get(b)!.position) : names;
  return ordered.map((key) => {
    const l = known ? layout.get(key)! : undefined;
    return { key, mount: l?.mount ?? null, position: l ? l.position : names.length === 1 ? 0 : null };
  });
}

function split(key: string): { service: string; volume: string } {
  const dot = key.indexOf('.');
  return dot < 0 ? { service: key, volume: '' } : { service: key.slice(0, dot), volume: key.slice(dot + 1) };
}

/** mapVolumes decides where each snapshot volume is restored (see the top of this file). */
export function mapVolumes(snapshot: readonly SnapshotVolume[], current: readonly VolumeRef[]): VolumeMapping {
  const target = new Map<string, { to: string; match: VolumeMatch }>();
  const currentKeys = new Set(current.map((c) => c.key));
  for (const s of snapshot) if (currentKeys.has(s.key)) target.set(s.key, { to: s.key, match: 'name' });
  const taken = new Set([...target.values()].map((t) => t.to));

  // Mount path: decided on the unmatched sets as they are before this step, so the order of volumes does not matter.
  const restS = snapshot.filter((s) => !target.has(s.key));
  const restC = current.filter((c) => !taken.has(c.key));
  const ambiguous = new Set<string>();
  for (const s of restS) {
    if (s.mount === null) continue;
    const cands = restC.filter((c) => c.mount === s.mount);
    const rivals = restS.filter((x) => x.mount === s.mount);
    if (cands.length === 1 && rivals.length === 1) {
      target.set(s.key, { to: cands[0]!.key, match: 'mount' });
      taken.add(cands[0]!.key);
    } else if (cands.length > 0) {
      ambiguous.add(s.key);
    }
  }

  for (const s of snapshot) {
    if (target.has(s.key) || ambiguous.has(s.key) || s.position === null) continue;
    const c = current[s.position];
    if (!c || taken.has(c.key)) continue;
    const { service, volume } = split(s.key);
    if (c.service !== service && c.volume !== volume) continue;
    target.set(s.key, { to: c.key, match: 'position' });
    taken.add(c.key);
  }

  const byTarget = new Map([...target].map(([from, t]) => [t.to, { from, to: t.to, match: t.match }]));
  return {
    pairs: current.flatMap((c) => byTarget.get(c.key) ?? []),
    missing: snapshot.filter((s) => !target.has(s.key)).map((s) => s.key),
    notInSnapshot: current.filter((c) => !taken.has(c.key)).map((c) => c.key),
  };
}

/** The snapshot holds volumes the deployment no longer has: restoring it would lose their data. */
export class VolumesChangedError extends ConflictError {
  constructor(snapshotId: string, m: VolumeMapping) {
    const lacking = m.notInSnapshot.length > 0 ? `; the deployment's volumes not in the snapshot: ${m.notInSnapshot.join(', ')}` : '';
    super(
      'VOLUMES_CHANGED',
      `snapshot ${snapshotId} holds volumes the deployment no longer has: ${m.missing.join(', ')}${lacking}. ` +
        'They were renamed or removed in a way that cannot be matched unambiguously, so their data would be restored nowhere; nothing was changed. ' +
        'Restore after an SDL update that brings these volumes back (same service and volume names, or the same mount path).',
      { missing: m.missing, notInSnapshot: m.notInSnapshot },
    );
  }
}

/** The snapshot holds no volume at all: a restore would put no data back. */
export class NothingToRestoreError extends ConflictError {
  constructor(snapshotId: string) {
    super('NOTHING_TO_RESTORE', `snapshot ${snapshotId} holds no volume: restoring it would put no data back; nothing was changed`);
  }
}

/** assertRestorable throws when a mapping would leave snapshot data behind or restore nothing. */
export function assertRestorable(snapshotId: string, m: VolumeMapping): void {
  if (m.missing.length > 0) throw new VolumesChangedError(snapshotId, m);
  if (m.pairs.length === 0) throw new NothingToRestoreError(snapshotId);
}
