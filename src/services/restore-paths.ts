/**
 * restore-paths: a restore of selected paths, checked before anything is
 * done: the request's shape, the chosen paths against the snapshot, and the
 * live volumes they go into.
 *
 * Paths are the browse API's: "service/volume/dir/file" (a trailing slash is
 * allowed; "service/" alone chooses all of that service's volumes). A path
 * inside another chosen one is part of it (merged). Each chosen path goes
 * into the current volume its snapshot volume maps to (volume-map), at the
 * same place inside it:
 *
 *   replace    the live entry at that place is exchanged with the
 *              snapshot's (a folder becomes exactly the snapshot's: entries
 *              added since are removed), or created when it is absent;
 *   alongside  all the chosen paths, which must be in one volume, are
 *              written under the folder `into` of that volume, at their
 *              place below the volume (e.g. `into/db/`).
 *
 * The live side is walked with lstat and never through a symlink: a symlink
 * (or a file) where a folder leading to a chosen path or to `into` should be
 * refuses the restore, so nothing is ever written outside the volume.
 * Checks on the live volumes are made when the restore is requested and
 * again, with the services stopped, right before each entry is moved.
 */
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConflictError, ValidationError, isErrno } from '../core/errors.js';
import { PathNotFoundError, type TreeNode, compareNames, resolvePath } from '../engine/index.js';
import type { RestoreItem, RestoreSelection } from '../db/restores.js';
import { parsePath } from './browse-service.js';
import { type VolumeMapping, VolumesChangedError } from './volume-map.js';

export type RestoreMode = 'replace' | 'alongside';

/** A restore request's optional selection, as the API receives it. */
export interface SelectionRequest {
  readonly paths?: readonly string[] | undefined;
  readonly mode?: RestoreMode | undefined;
  readonly into?: string | undefined;
}

/** `paths` is an empty list (HTTP 400). */
export class RestorePathsEmptyError extends ValidationError {
  constructor() {
    super('RESTORE_PATHS_EMPTY', 'paths is empty: give at least one path to restore, or leave paths out to restore everything');
  }
}

/** mode and into that do not fit together or with the paths (HTTP 400). */
export class InvalidRestoreModeError extends ValidationError {
  constructor(message: string) {
    super('INVALID_RESTORE_MODE', message);
  }
}

/** `into` would leave the volume: absolute, "..", or through a symlink or a file (HTTP 400). */
export class IntoUnsafeError extends ValidationError {
  constructor(into: string, why: string) {
    super('INTO_UNSAFE', `into ${JSON.stringify(into)} ${why}; give a folder inside the volume, e.g. "restored-2026-12-05"`, { into });
  }
}

/** `into` exists and is not an empty folder (HTTP 409). */
export class IntoNotEmptyError extends ConflictError {
  constructor(into: string) {
    super('INTO_NOT_EMPTY', `into ${JSON.stringify(into)} already exists and is not an empty folder; choose a new folder`, { into });
  }
}

/** Where a chosen path goes, the live volume has a symlink or a file in place of a folder (HTTP 409). */
export class PathBlockedError extends ConflictError {
  constructor(shown: string, blocker: string) {
    super(
      'RESTORE_PATH_BLOCKED',
      `cannot restore ${shown}: in the live volume ${blocker} is a symlink or a file, not a folder; nothing was changed`,
      { path: shown, blocker },
    );
  }
}

const joinShown = (parts: readonly string[]): string => parts.join('/');

/**
 * checkShape validates how paths, mode and into are combined; null means a
 * full restore (no paths).
 */
export function checkShape(req: SelectionRequest): { paths: readonly string[]; mode: RestoreMode; into: string | null } | null {
  if (req.paths === undefined) {
    if (req.mode !== undefined || req.into !== undefined) {
      throw new InvalidRestoreModeError('mode and into apply to a restore of selected paths: give paths too');
    }
    return null;
  }
  if (req.paths.length === 0) throw new RestorePathsEmptyError();
  const mode = req.mode ?? 'replace';
  if (mode === 'alongside' && (req.into === undefined || req.into === '')) {
    throw new InvalidRestoreModeError('mode "alongside" needs into: the folder of the volume to restore the paths under');
  }
  if (mode === 'replace' && req.into !== undefined) {
    throw new InvalidRestoreModeError('into applies to mode "alongside" only: mode "replace" restores the paths where they were');
  }
  return { paths: req.paths, mode, into: mode === 'alongside' ? req.into! : null };
}

/** intoParts splits `into` into folder names, refusing anything that could leave the volume. */
export function intoParts(into: string): string[] {
  if (into.startsWith('/')) throw new IntoUnsafeError(into, 'is absolute');
  if (into.includes('\0')) throw new IntoUnsafeError(into, 'contains a NUL character');
  const parts = into.split('/').filter((p, i, all) => !(p === '' && i === all.length - 1));
  if (parts.length === 0) throw new IntoUnsafeError(into, 'is empty');
  for (const p of parts) {
    if (p === '..') throw new IntoUnsafeError(into, 'goes up with ".."');
    if (p === '' || p === '.') throw new IntoUnsafeError(into, 'has an empty or "." component');
  }
  return parts;
}

async function lstatOrNull(p: string | Buffer): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

/**
 * resolveSelection turns the asked paths into items: each checked against
 * the snapshot (404 PATH_NOT_FOUND naming it), merged, and mapped to a
 * current volume (409 VOLUMES_CHANGED when its volume has none). Returns the
 * items and the snapshot node of each (by item path).
 */
export async function resolveSelection(
  src: { readTree(id: string): Promise<readonly TreeNode[]> },
  root: TreeNode,
  snapshotId: string,
  shape: { paths: readonly string[]; mode: RestoreMode; into: string | null },
  mapping: VolumeMapping,
): Promise<{ selection: RestoreSelection; nodes: Map<string, TreeNode> }> {
  const volumes = root.subtree ? await src.readTree(root.subtree) : [];
  const asked: Array<{ from: string; rel: string[]; node: TreeNode }> = [];
  for (const p of shape.paths) {
    const parts = parsePath(p).map((b) => b.toString('utf8'));
    if (parts.length === 0) {
      throw new ValidationError('INVALID_PATH', 'a path names at least a service ("app/"); leave paths out to restore everything');
    }
    if (parts.length === 1) {
      const mine = volumes.filter((v) => v.name.toString('utf8').startsWith(`${parts[0]}.`));
      if (mine.length === 0) throw new PathNotFoundError(JSON.stringify(p));
      for (const v of mine) asked.push({ from: v.name.toString('utf8'), rel: [], node: v });
      continue;
    }
    const key = `${parts[0]}.${parts[1]}`;
    const volume = volumes.find((v) => v.name.toString('utf8') === key);
    if (!volume) throw new PathNotFoundError(JSON.stringify(joinShown(parts.slice(0, 2))));
    const rel = parts.slice(2);
    const node = await resolvePath(
      src,
      volume,
      rel.map((r) => Buffer.from(r)),
    ).catch((err: unknown) => {
      // Name the whole path as asked, volume included.
      throw err instanceof PathNotFoundError ? new PathNotFoundError(JSON.stringify(joinShown(parts))) : err;
    });
    asked.push({ from: key, rel, node });
  }
  // Merge: shortest first, so a path inside one already kept is dropped.
  const kept: typeof asked = [];
  for (const a of [...asked].sort((x, y) => x.rel.length - y.rel.length)) {
    const inside = kept.some((k) => k.from === a.from && k.rel.length <= a.rel.length && k.rel.every((c, i) => c === a.rel[i]));
    if (!inside) kept.push(a);
  }
  const order = (a: (typeof asked)[number]): number => asked.indexOf(a);
  kept.sort((x, y) => order(x) - order(y));

  const pairs = new Map(mapping.pairs.map((p) => [p.from, p.to]));
  const unmapped = [...new Set(kept.filter((k) => !pairs.has(k.from)).map((k) => k.from))];
  if (unmapped.length > 0) throw new VolumesChangedError(snapshotId, { ...mapping, missing: unmapped });
  const items: RestoreItem[] = kept.map((k) => {
    const [service, ...vol] = k.from.split('.');
    return { path: joinShown([service!, vol.join('.'), ...k.rel]), from: k.from, to: pairs.get(k.from)!, rel: k.rel.join('/') };
  });
  if (shape.mode === 'alongside') {
    const targets = new Set(items.map((i) => i.to));
    if (targets.size > 1) {
      throw new InvalidRestoreModeError(
        `mode "alongside" restores into one volume, but the paths are in ${[...targets].join(', ')}; restore each volume's paths separately`,
      );
    }
    intoParts(shape.into!);
  }
  const nodes = new Map(items.map((it, i) => [it.path, kept[i]!.node]));
  return { selection: { paths: items.map((i) => i.path), mode: shape.mode, into: shape.into, items }, nodes };
}

/**
 * checkLiveAncestors checks that every existing folder leading to `rel`
 * inside the live volume `base` is a real folder (PathBlockedError
 * otherwise); missing ones are fine (they will be created).
 */
export async function checkLiveAncestors(base: string, rel: string, shown: string): Promise<void> {
  const parts = rel === '' ? [] : rel.split('/');
  let at = base;
  for (let i = 0; i < parts.length - 1; i++) {
    at = path.join(at, parts[i]!);
    const st = await lstatOrNull(at);
    if (st === null) return;
    if (!st.isDirectory()) throw new PathBlockedError(shown, JSON.stringify(parts.slice(0, i + 1).join('/')));
  }
}

/**
 * makeLiveAncestors creates the missing folders leading to `rel` inside the
 * live volume `base`, each with the owner, mode and times of its
 * counterpart under `staged` (the snapshot's), refusing a symlink or file
 * on the way.
 */
export async function makeLiveAncestors(base: string, staged: string, rel: string, shown: string): Promise<void> {
  const parts = rel === '' ? [] : rel.split('/');
  let at = base;
  let from = staged;
  for (let i = 0; i < parts.length - 1; i++) {
    at = path.join(at, parts[i]!);
    from = path.join(from, parts[i]!);
    const st = await lstatOrNull(at);
    if (st !== null) {
      if (!st.isDirectory()) throw new PathBlockedError(shown, JSON.stringify(parts.slice(0, i + 1).join('/')));
      continue;
    }
    const model = await fs.lstat(from);
    await fs.mkdir(at, { mode: 0o700 });
    if (process.getuid?.() === 0) await fs.lchown(at, model.uid, model.gid);
    await fs.chmod(at, model.mode & 0o7777);
    await fs.utimes(at, model.atime, model.mtime);
  }
}

/**
 * checkInto checks `into` against the live volume `base`: every existing
 * part a real folder (IntoUnsafeError for a symlink or a file), and the
 * folder itself absent or empty (IntoNotEmptyError).
 */
export async function checkInto(base: string, into: string): Promise<void> {
  const parts = intoParts(into);
  let at = base;
  for (let i = 0; i < parts.length; i++) {
    at = path.join(at, parts[i]!);
    const st = await lstatOrNull(at);
    if (st === null) return;
    if (st.isSymbolicLink()) throw new IntoUnsafeError(into, `crosses the symlink ${JSON.stringify(parts.slice(0, i + 1).join('/'))}`);
    if (!st.isDirectory()) {
      if (i === parts.length - 1) throw new IntoNotEmptyError(into);
      throw new IntoUnsafeError(into, `goes through the file ${JSON.stringify(parts.slice(0, i + 1).join('/'))}`);
    }
  }
  if ((await fs.readdir(at)).length > 0) throw new IntoNotEmptyError(into);
}

/** What replacing one chosen path does to the live volume, for the restore plan. */
export interface LivePlan {
  /** The live entry's type now, null when absent. */
  readonly live: 'file' | 'dir' | 'symlink' | 'other' | null;
  /** Live entries below the path that the snapshot's folder lacks (removed), shown paths, at most `limit`. */
  readonly removed: string[];
  /** More were found than `removed` lists. */
  readonly removedMore: boolean;
}

const typeOf = (st: Stats): LivePlan['live'] =>
  st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';

/**
 * livePlan compares the live entry at `liveAbs` with the snapshot's `node`:
 * which live entries below it the snapshot lacks (a replaced folder loses
 * them). Walks only folders present on both sides, never through symlinks;
 * lists at most `limit` entries (the topmost of each missing subtree).
 */
export async function livePlan(
  src: { readTree(id: string): Promise<readonly TreeNode[]> },
  node: TreeNode,
  liveAbs: string,
  shown: string,
  limit = 20,
): Promise<LivePlan> {
  const st = await lstatOrNull(liveAbs);
  if (st === null) return { live: null, removed: [], removedMore: false };
  const removed: string[] = [];
  let more = false;
  const walk = async (snap: TreeNode, dir: Buffer, shownDir: string): Promise<void> => {
    const inSnap = snap.subtree ? await src.readTree(snap.subtree) : [];
    const names = (await fs.readdir(dir, { encoding: 'buffer' })).sort(compareNames);
    for (const name of names) {
      const child = inSnap.find((n) => n.name.equals(name));
      const childShown = `${shownDir}/${name.toString('utf8')}`;
      if (!child) {
        if (removed.length < limit) removed.push(childShown);
        else more = true;
        continue;
      }
      if (child.type !== 'dir' || more) continue;
      const childPath = Buffer.concat([dir, Buffer.from('/'), name]);
      if ((await lstatOrNull(childPath))?.isDirectory()) await walk(child, childPath, childShown);
    }
  };
  if (st.isDirectory() && node.type === 'dir') await walk(node, Buffer.from(liveAbs), shown);
  return { live: typeOf(st), removed, removedMore: more };
}

/**
 * makeIntoParents creates the missing folders above `into` inside the live
 * volume `base` (0755) and returns the folder that will hold it; a symlink
 * or a file on the way is refused (IntoUnsafeError).
 */
export async function makeIntoParents(base: string, into: string): Promise<string> {
  const parts = intoParts(into);
  await fs.mkdir(base, { recursive: true });
  let at = base;
  for (let i = 0; i < parts.length - 1; i++) {
    at = path.join(at, parts[i]!);
    const st = await lstatOrNull(at);
    if (st === null) await fs.mkdir(at, { mode: 0o755 });
    else if (!st.isDirectory())
      throw new IntoUnsafeError(into, `crosses ${JSON.stringify(parts.slice(0, i + 1).join('/'))}, which is not a folder`);
  }
  return at;
}
