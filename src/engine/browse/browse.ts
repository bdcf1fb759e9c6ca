/**
 * browse: reading a snapshot's directories straight from the repository,
 * without restoring anything: resolving a path, listing a directory page by
 * page, and finding entries by name below a directory.
 *
 * Paths are arrays of raw name components (Buffers), so names that are not
 * UTF-8 can be reached; callers translate their own path syntax. Every tree
 * read goes through the source's verified readTree, so what is listed is
 * what the snapshot holds, and names are already known safe (format/tree.ts).
 */
import { NotFoundError } from '../../core/errors.js';
import { compareNames, type TreeNode } from '../format/tree.js';

/** The narrow view of a repository that browsing needs. */
export interface TreeSource {
  readTree(id: string): Promise<readonly TreeNode[]>;
}

/** A path inside a snapshot does not exist (HTTP 404). */
export class PathNotFoundError extends NotFoundError {
  constructor(shown: string) {
    super('PATH_NOT_FOUND', `the snapshot has no ${shown}`);
  }
}

/** showPath renders path components for messages, escaping what is not printable UTF-8. */
export function showPath(components: readonly Buffer[]): string {
  if (components.length === 0) return 'root directory';
  return components.map((c) => JSON.stringify(c.toString('utf8')).slice(1, -1)).join('/');
}

/**
 * findChild returns the child named `name` of the sorted listing `nodes`,
 * by binary search (listings are sorted by name bytes).
 */
export function findChild(nodes: readonly TreeNode[], name: Buffer): TreeNode | undefined {
  let lo = 0;
  let hi = nodes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareNames(nodes[mid]!.name, name);
    if (c === 0) return nodes[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/**
 * resolvePath walks `components` down from `root` (a snapshot's root node)
 * and returns the node there. A missing component, or one below something
 * that is not a directory, is a PathNotFoundError; symlinks are never
 * followed.
 */
export async function resolvePath(src: TreeSource, root: TreeNode, components: readonly Buffer[]): Promise<TreeNode> {
  let node = root;
  for (let i = 0; i < components.length; i++) {
    if (node.type !== 'dir' || node.subtree === undefined) throw new PathNotFoundError(showPath(components.slice(0, i + 1)));
    const child = findChild(await src.readTree(node.subtree), components[i]!);
    if (!child) throw new PathNotFoundError(showPath(components.slice(0, i + 1)));
    node = child;
  }
  return node;
}

export interface ListOptions {
  /** Start after this name (the cursor of the previous page). */
  readonly after?: Buffer | undefined;
  /** At most this many entries. Default 1000. */
  readonly limit?: number | undefined;
  /** Keep only entries whose name contains this text, case-insensitively. */
  readonly contains?: string | undefined;
}

export interface ListPage {
  readonly entries: readonly TreeNode[];
  /** The name to pass as `after` for the next page; null on the last page. */
  readonly next: Buffer | null;
}

/** nameMatcher returns a case-insensitive "name contains text" test for raw names. */
export function nameMatcher(text: string): (name: Buffer) => boolean {
  const needle = text.toLowerCase();
  return (name) => name.toString('utf8').toLowerCase().includes(needle);
}

/**
 * listDirectory returns one page of a directory's entries, in name order.
 * The cost is one tree read and a binary search for the cursor, whatever
 * the page.
 */
export async function listDirectory(src: TreeSource, dir: TreeNode, opts: ListOptions = {}): Promise<ListPage> {
  if (dir.type !== 'dir' || dir.subtree === undefined) throw new NotFoundError('NOT_A_DIRECTORY', 'that path is not a directory');
  const limit = opts.limit ?? 1000;
  const nodes = await src.readTree(dir.subtree);
  let start = 0;
  if (opts.after) {
    let lo = 0;
    let hi = nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareNames(nodes[mid]!.name, opts.after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const match = opts.contains ? nameMatcher(opts.contains) : null;
  const entries: TreeNode[] = [];
  let i = start;
  for (; i < nodes.length && entries.length < limit; i++) {
    if (!match || match(nodes[i]!.name)) entries.push(nodes[i]!);
  }
  // More may follow only if the page filled up before the end.
  const more = entries.length === limit && i < nodes.length;
  return { entries, next: more ? entries[entries.length - 1]!.name : null };
}

export interface FoundEntry {
  readonly path: readonly Buffer[];
  readonly node: TreeNode;
}

/**
 * findByName yields every entry below `dir` whose name contains `text`
 * (case-insensitive), depth first in name order, with its path relative to
 * `dir`. Stop iterating to stop reading trees.
 */
export async function* findByName(src: TreeSource, dir: TreeNode, text: string): AsyncGenerator<FoundEntry> {
  const match = nameMatcher(text);
  async function* walk(node: TreeNode, prefix: readonly Buffer[]): AsyncGenerator<FoundEntry> {
    if (node.type !== 'dir' || node.subtree === undefined) return;
    for (const child of await src.readTree(node.subtree)) {
      const path = [...prefix, child.name];
      if (match(child.name)) yield { path, node: child };
      yield* walk(child, path);
    }
  }
  yield* walk(dir, []);
}
