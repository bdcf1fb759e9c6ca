/**
 * diff: what changed between two snapshots, computed from their trees.
 *
 * Both trees are walked together in name order; a directory whose subtree
 * id is the same on both sides is identical all the way down and is skipped
 * without being read, so the cost follows the size of the change, not of
 * the volume. Changes come out in a stable order (depth first, by name
 * bytes), which makes a path a usable cursor.
 *
 * What counts as a change:
 * - `added` / `removed`: the path exists on one side only. Everything below
 *   an added or removed directory is reported too, each path once.
 * - `type`: the path is of another type on each side (a file became a
 *   directory…); below it, the old side's entries are `removed` and the new
 *   side's `added`.
 * - `modified`: a file's content or size, a symlink's target, a device's
 *   numbers, or an entry's mode, owner or extended attributes differ. A
 *   change of modification time alone is not reported (directories' times
 *   change with every child), nor are inode numbers or link counts.
 */
import { compareNames, type ContentRef, type TreeNode } from '../format/tree.js';
import type { TreeSource } from './browse.js';

export type ChangeKind = 'added' | 'removed' | 'modified' | 'type';

export interface Change {
  readonly path: readonly Buffer[];
  readonly change: ChangeKind;
  /** Logical size before (files); null when the path did not exist before. */
  readonly sizeBefore: number | null;
  readonly sizeAfter: number | null;
  readonly before: TreeNode | null;
  readonly after: TreeNode | null;
}

export interface DiffOptions {
  /** Yield only changes whose path sorts after this one (a cursor). */
  readonly after?: readonly Buffer[] | undefined;
  /**
   * Whether two nodes of the same type at the same path differ. Default
   * isModified (two snapshots: content ids, target, mode, owner, xattrs);
   * a side with no content ids (the live volumes) brings its own test.
   */
  readonly modified?: ((before: TreeNode, after: TreeNode) => boolean) | undefined;
}

/**
 * comparePaths orders paths the way diffTrees yields them: component by
 * component, a directory before what it contains.
 */
export function comparePaths(a: readonly Buffer[], b: readonly Buffer[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareNames(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function sameContent(a: readonly ContentRef[] | undefined, b: readonly ContentRef[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.id !== b[i]!.id || a[i]!.length !== b[i]!.length) return false;
  return true;
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.equals(b));
}

function sameXattrs(a: TreeNode['xattrs'], b: TreeNode['xattrs']): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (!x[i]![0].equals(y[i]![0]) || !x[i]![1].equals(y[i]![1])) return false;
  return true;
}

/** isModified tells whether two nodes of the same type differ in a way diff reports. */
export function isModified(a: TreeNode, b: TreeNode): boolean {
  return (
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    a.size !== b.size ||
    !sameContent(a.content, b.content) ||
    !sameBytes(a.target, b.target) ||
    a.rdevMajor !== b.rdevMajor ||
    a.rdevMinor !== b.rdevMinor ||
    !sameXattrs(a.xattrs, b.xattrs)
  );
}

function sizeOf(n: TreeNode | null): number | null {
  return n === null ? null : n.size;
}

/**
 * diffTrees yields the changes from the directory `before` to the directory
 * `after` (usually two snapshots' roots). Either side may be null: an empty
 * directory.
 */
export async function* diffTrees(
  src: TreeSource,
  before: TreeNode | null,
  after: TreeNode | null,
  opts: DiffOptions = {},
): AsyncGenerator<Change> {
  const cursor = opts.after ?? null;
  const modified = opts.modified ?? isModified;

  /** Whether anything at or below `path` can sort after the cursor. */
  const reachable = (path: readonly Buffer[]): boolean => {
    if (!cursor) return true;
    const n = Math.min(path.length, cursor.length);
    for (let i = 0; i < n; i++) {
      const c = compareNames(path[i]!, cursor[i]!);
      if (c !== 0) return c > 0;
    }
    // path is a prefix of the cursor (its subtree may hold later paths) or below it.
    return true;
  };
  const emit = (c: Change): boolean => !cursor || comparePaths(c.path, cursor) > 0;

  const children = async (n: TreeNode | null): Promise<readonly TreeNode[]> =>
    n !== null && n.type === 'dir' && n.subtree !== undefined ? src.readTree(n.subtree) : [];

  async function* oneSide(n: TreeNode, path: readonly Buffer[], change: 'added' | 'removed'): AsyncGenerator<Change> {
    if (!reachable(path)) return;
    const c: Change =
      change === 'added'
        ? { path, change, sizeBefore: null, sizeAfter: n.size, before: null, after: n }
        : { path, change, sizeBefore: n.size, sizeAfter: null, before: n, after: null };
    if (emit(c)) yield c;
    for (const child of await children(n)) yield* oneSide(child, [...path, child.name], change);
  }

  async function* walk(a: TreeNode | null, b: TreeNode | null, path: readonly Buffer[]): AsyncGenerator<Change> {
    if (a && b && a.type === 'dir' && b.type === 'dir' && a.subtree === b.subtree) return;
    const left = await children(a);
    const right = await children(b);
    let i = 0;
    let j = 0;
    while (i < left.length || j < right.length) {
      const c = i >= left.length ? 1 : j >= right.length ? -1 : compareNames(left[i]!.name, right[j]!.name);
      if (c < 0) {
        const x = left[i++]!;
        yield* oneSide(x, [...path, x.name], 'removed');
      } else if (c > 0) {
        const y = right[j++]!;
        yield* oneSide(y, [...path, y.name], 'added');
      } else {
        const x = left[i++]!;
        const y = right[j++]!;
        const p = [...path, x.name];
        if (!reachable(p)) continue;
        if (x.type !== y.type) {
          const ch: Change = { path: p, change: 'type', sizeBefore: x.size, sizeAfter: y.size, before: x, after: y };
          if (emit(ch)) yield ch;
          for (const k of await children(x)) yield* oneSide(k, [...p, k.name], 'removed');
          for (const k of await children(y)) yield* oneSide(k, [...p, k.name], 'added');
          continue;
        }
        if (modified(x, y)) {
          const ch: Change = { path: p, change: 'modified', sizeBefore: sizeOf(x), sizeAfter: sizeOf(y), before: x, after: y };
          if (emit(ch)) yield ch;
        }
        if (x.type === 'dir') yield* walk(x, y, p);
      }
    }
  }

  yield* walk(before, after, []);
}
