/**
 * volume-dirs: what an SDL update does to the volume directories of the
 * volumes it renames or removes.
 *
 * - A renamed volume (matched one-to-one like a restore matches a snapshot's
 *   volumes: see volume-map) keeps its data: its directory is moved to the
 *   new name while the services are stopped, unless a non-empty directory
 *   is already there (then both are kept).
 * - A directory no volume of the SDL uses any more (an orphan) is removed
 *   when it is empty, or when the before-update snapshot, taken with the
 *   services stopped, holds its last data. Any other orphan is kept (nothing
 *   a user can't get back is deleted) until the deployment is closed.
 *
 * Both are idempotent: a job re-run after a crash finds moved directories
 * moved and removed ones gone.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { isErrno } from '../core/errors.js';
import { fsyncDir } from '../engine/index.js';
import type { Manifest } from '../sdl/types.js';
import { type Paths, type VolumeRef, volumesOf } from './paths.js';
import { mapVolumes } from './volume-map.js';

export interface VolumeChanges {
  /** Volumes that keep their data under a new name. */
  readonly moves: ReadonlyArray<{ readonly from: VolumeRef; readonly to: VolumeRef }>;
  /** Keys of the old SDL's volumes the new SDL no longer has (renamed or removed). */
  readonly gone: readonly string[];
}

/** volumeChanges compares the volumes of two SDLs. */
export function volumeChanges(before: Manifest, after: Manifest): VolumeChanges {
  const old = volumesOf(before);
  const now = volumesOf(after);
  const m = mapVolumes(
    old.map((v, i) => ({ key: v.key, mount: v.mount, position: i })),
    now,
  );
  const byKey = new Map([...old, ...now].map((v) => [v.key, v]));
  const nowKeys = new Set(now.map((v) => v.key));
  return {
    moves: m.pairs.filter((p) => p.from !== p.to).map((p) => ({ from: byKey.get(p.from)!, to: byKey.get(p.to)! })),
    gone: old.filter((v) => !nowKeys.has(v.key)).map((v) => v.key),
  };
}

async function entries(dir: string): Promise<string[] | null> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/** moveVolumes moves renamed volumes' directories to their new names (services stopped). */
export async function moveVolumes(paths: Paths, depId: string, changes: VolumeChanges): Promise<void> {
  for (const { from, to } of changes.moves) {
    const src = paths.volume(depId, from);
    const dst = paths.volume(depId, to);
    if ((await entries(src)) === null) continue; // moved before a crash, or never created
    const there = await entries(dst);
    if (there !== null && there.length > 0) continue; // keep both: the old one stays an orphan
    if (there !== null) await fs.rmdir(dst);
    await fs.mkdir(path.dirname(dst), { recursive: true });
    await fs.rename(src, dst);
    await fsyncDir(path.dirname(dst));
    await fsyncDir(path.dirname(src));
  }
}

/**
 * removeOrphans removes the directories under the deployment's volumes that
 * no volume of `manifest` uses: empty ones, and those whose keys are in
 * `captured`. It returns the keys of the orphans it kept.
 */
export async function removeOrphans(paths: Paths, depId: string, manifest: Manifest, captured: ReadonlySet<string>): Promise<string[]> {
  const root = paths.deploymentVolumes(depId);
  const used = new Set(volumesOf(manifest).map((v) => v.key));
  const services = new Set(manifest.services.map((s) => s.name));
  const kept: string[] = [];
  const top = await entries(root);
  if (top === null) return kept;
  for (const service of top) {
    if (service.startsWith('.')) continue; // a restore's staging directory
    const svcDir = path.join(root, service);
    const volumes = await entries(svcDir);
    if (volumes === null) continue;
    for (const volume of volumes) {
      const key = `${service}.${volume}`;
      if (used.has(key)) continue;
      const dir = path.join(svcDir, volume);
      const inside = await entries(dir);
      if (inside === null) continue;
      if (inside.length === 0) await fs.rmdir(dir);
      else if (captured.has(key)) await fs.rm(dir, { recursive: true, force: true });
      else kept.push(key);
    }
    if (!services.has(service) && ((await entries(svcDir)) ?? ['?']).length === 0) await fs.rmdir(svcDir);
  }
  await fsyncDir(root);
  return kept;
}
