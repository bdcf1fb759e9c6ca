/**
 * browse-service: reading a ready snapshot without restoring it: listing
 * its directories, streaming one file (whole or a byte range), streaming a
 * directory as tar, and comparing it with another snapshot or with the
 * live volume directories.
 *
 * Paths are shown as `service/volume/...`: the repository's root holds one
 * directory per volume named "service.volume", and a virtual tree
 * (`VirtualTree`) presents it as one directory per service holding its
 * volumes, so every engine browse function works on the shown paths as they
 * are. Service names never contain a dot, so a root entry splits at its
 * first dot.
 *
 * Every read holds the repository open under a read lock, one shared by
 * the requests reading the same repository at the same time (open-repos.ts;
 * gc, which takes the exclusive lock, waits for it; a request waits for a
 * running gc at most `lockWaitMs`, then answers 409 REPOSITORY_BUSY); the
 * caller closes the `SnapshotReader` when its answer is sent, or when the
 * response stream ends or is aborted. Repositories and their indexes stay
 * open between requests (open-repos.ts), decoded directories too
 * (tree-cache.ts).
 *
 * Names that are not UTF-8 are shown with U+FFFD in their place and their
 * raw bytes in `nameBase64` (null for UTF-8 names); such paths are reached
 * with `pathBase64`. Cursors are opaque (base64url of raw bytes).
 */
import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { ConflictError, KovaError, NotFoundError, ValidationError } from '../core/errors.js';
import {
  type DiffOptions,
  LiveTree,
  type Repository,
  type TreeNode,
  compareNames,
  diffTrees,
  fileBytes,
  listDirectory,
  liveModified,
  resolvePath,
  tarStream,
} from '../engine/index.js';
import type { Snapshot } from '../db/snapshots.js';
import type { ServiceContext } from './context.js';
import { activeDeployment, ownedDeployment } from './guards.js';
import { type RepoLease, OpenRepos } from './open-repos.js';
import { TreeCache } from './tree-cache.js';
import { volumesOf } from './paths.js';

/** Listing and diff page sizes: the default, and the most one page may hold. */
export const BROWSE_LIMITS = { defaultPage: 1000, maxPage: 5000 } as const;

export interface BrowseOptions {
  /**
   * How long a request waits for the repository's read lock while gc or a
   * repair holds it exclusively, before answering 409 REPOSITORY_BUSY.
   * Default 15 s (a request should not hang for a whole gc).
   */
  readonly lockWaitMs?: number;
  /** Most directory entries kept decoded between requests (tree-cache.ts). Default 250,000. */
  readonly treeCacheEntries?: number;
  /** Most bytes of index kept for repositories no request reads (open-repos.ts). Default 128 MiB. */
  readonly indexCacheBytes?: number;
}

const DEFAULTS: Required<BrowseOptions> = { lockWaitMs: 15_000, treeCacheEntries: 250_000, indexCacheBytes: 128 * 1024 * 1024 };

/** The repository is held exclusively (gc, repair) for longer than a request waits (HTTP 409). */
export class RepositoryBusyError extends ConflictError {
  constructor() {
    super('REPOSITORY_BUSY', "the deployment's snapshot store is being cleaned up; try again in a minute");
  }
}

/** A directory entry as the API shows it. */
export interface FileEntryView {
  readonly name: string;
  /** The raw name, base64, when it is not UTF-8; null otherwise. */
  readonly nameBase64: string | null;
  readonly type: TreeNode['type'];
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** ISO 8601 UTC with nanoseconds (9 digits). */
  readonly mtime: string;
  /** Symlinks: the target, null otherwise. */
  readonly target: string | null;
  readonly targetBase64: string | null;
}

export interface ChangeView {
  readonly path: string;
  readonly pathBase64: string | null;
  readonly change: 'added' | 'removed' | 'modified' | 'type';
  readonly sizeBefore: number | null;
  readonly sizeAfter: number | null;
}

/** A byte range of a file, end exclusive. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** The path is not a directory (HTTP 400). */
export class NotADirectoryError extends ValidationError {
  constructor(shown: string) {
    super('NOT_A_DIRECTORY', `${shown} is not a directory`);
  }
}

/** The path is not a regular file (HTTP 400). */
export class NotAFileError extends ValidationError {
  constructor(shown: string) {
    super('NOT_A_FILE', `${shown} is not a regular file`);
  }
}

/** A Range header that no byte of the file satisfies (HTTP 416). */
export class RangeNotSatisfiableError extends KovaError {
  constructor(readonly size: number) {
    super('RANGE_NOT_SATISFIABLE', `the requested range is outside the file (${size} bytes)`, { status: 416 });
  }
}

/* ---- paths, names, cursors ---------------------------------------------------- */

const SLASH = 0x2f;

/** shownName is a raw name as JSON shows it, and its base64 when it is not UTF-8. */
export function shownName(raw: Buffer): { text: string; base64: string | null } {
  return { text: raw.toString('utf8'), base64: isUtf8(raw) ? null : raw.toString('base64') };
}

function splitBytes(raw: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i === raw.length || raw[i] === SLASH) {
      parts.push(raw.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

/**
 * parsePath turns a shown path (UTF-8 text, or raw bytes from pathBase64)
 * into components. Leading and trailing slashes are ignored; empty, "." and
 * ".." components are refused (400 INVALID_PATH).
 */
export function parsePath(path: string | undefined, pathBase64?: string): Buffer[] {
  if (path !== undefined && pathBase64 !== undefined) throw new ValidationError('INVALID_PATH', 'give path or pathBase64, not both');
  const raw = pathBase64 !== undefined ? Buffer.from(pathBase64, 'base64') : Buffer.from(path ?? '', 'utf8');
  let from = 0;
  let to = raw.length;
  while (from < to && raw[from] === SLASH) from++;
  while (to > from && raw[to - 1] === SLASH) to--;
  if (from === to) return [];
  const parts = splitBytes(raw.subarray(from, to));
  for (const p of parts) {
    const s = p.toString('latin1');
    if (s === '' || s === '.' || s === '..' || p.includes(0)) {
      throw new ValidationError('INVALID_PATH', 'a path is names separated by "/", without empty, "." or ".." components');
    }
  }
  return parts;
}

function joinPath(components: readonly Buffer[]): Buffer {
  const out: Buffer[] = [];
  components.forEach((c, i) => {
    if (i > 0) out.push(Buffer.from('/'));
    out.push(c);
  });
  return Buffer.concat(out);
}

function shownPath(components: readonly Buffer[]): string {
  return components.length === 0 ? 'the root directory' : JSON.stringify(joinPath(components).toString('utf8'));
}

function encodeCursor(raw: Buffer): string {
  return raw.toString('base64url');
}

function decodeCursor(cursor: string): Buffer {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new ValidationError('INVALID_CURSOR', 'cursor is not one this API gave out');
  return Buffer.from(cursor, 'base64url');
}

/** The last whole second isoNs rendered, and its text: a directory's files often share their second. */
let lastSecond = NaN;
let lastSecondText = '';

function isoSecond(sec: number): string {
  if (sec !== lastSecond) {
    lastSecondText = new Date(sec * 1000).toISOString().slice(0, 19);
    lastSecond = sec;
  }
  return lastSecondText;
}

/** isoNs renders nanoseconds since the epoch as ISO 8601 UTC with 9 fractional digits. */
export function isoNs(ns: bigint): string {
  if (ns >= 0n) {
    // Split the decimal digits: cheaper than bigint division, and listings render thousands.
    const digits = ns.toString().padStart(10, '0');
    const cut = digits.length - 9;
    return `${isoSecond(Number(digits.slice(0, cut)))}.${digits.slice(cut)}Z`;
  }
  const NS = 1_000_000_000n;
  let sec = ns / NS;
  let frac = ns % NS;
  if (frac < 0n) {
    frac += NS;
    sec -= 1n;
  }
  const base = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
  return `${base}.${frac.toString().padStart(9, '0')}Z`;
}

export function entryView(n: TreeNode): FileEntryView {
  const name = shownName(n.name);
  const target = n.type === 'symlink' && n.target ? shownName(n.target) : null;
  return {
    name: name.text,
    nameBase64: name.base64,
    type: n.type,
    size: n.type === 'file' ? n.size : 0,
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    mtime: isoNs(n.mtimeNs),
    target: target?.text ?? null,
    targetBase64: target?.base64 ?? null,
  };
}

/**
 * parseRange reads a Range header against a file of `size` bytes. One range
 * only (`bytes=a-b`, `bytes=a-`, `bytes=-n`); null when there is none or it
 * can't be parsed (the whole file is sent, as RFC 9110 allows); a range
 * that no byte satisfies is a RangeNotSatisfiableError.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null {
  if (header === undefined) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw new RangeNotSatisfiableError(size);
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Number(m[2]);
  if (m[2] !== '' && last < start) return null;
  if (start >= size) throw new RangeNotSatisfiableError(size);
  return { start, end: Math.min(last, size - 1) + 1 };
}

/* ---- the virtual top levels ----------------------------------------------------- */

const VIRTUAL = 'virtual:';

/**
 * VirtualTree reads trees from the repository, and answers the two virtual
 * levels of each snapshot root it was given (addRoot): the root (one
 * directory per service) and each service (its volumes). Virtual ids hold
 * the real root's id, so two snapshots share one only when their roots are
 * the same (diffTrees skips equal ids, rightly then).
 */
class VirtualTree {
  /** By virtual root id: the real root, and once read, its services' volumes. */
  private readonly roots = new Map<string, { real: TreeNode; services: Map<string, TreeNode[]> | null; list: TreeNode[] }>();

  constructor(private readonly repo: { readTree(id: string): Promise<readonly TreeNode[]>; readBlob(id: string): Promise<Buffer> }) {}

  /** addRoot returns the virtual root node for a snapshot's real root. */
  addRoot(real: TreeNode): TreeNode {
    const id = `${VIRTUAL}${real.subtree ?? ''}`;
    if (!this.roots.has(id)) this.roots.set(id, { real, services: null, list: [] });
    return { ...real, subtree: id };
  }

  private async load(id: string): Promise<{ services: Map<string, TreeNode[]>; list: TreeNode[] }> {
    const entry = this.roots.get(id);
    if (!entry) return { services: new Map(), list: [] };
    if (entry.services) return { services: entry.services, list: entry.list };
    const volumes = entry.real.subtree ? await this.repo.readTree(entry.real.subtree) : [];
    const services = new Map<string, TreeNode[]>();
    for (const v of volumes) {
      const dot = v.name.indexOf(0x2e);
      const service = (dot < 0 ? v.name : v.name.subarray(0, dot)).toString('latin1');
      const list = services.get(service) ?? [];
      if (dot >= 0) list.push({ ...v, name: v.name.subarray(dot + 1) });
      services.set(service, list);
    }
    const list: TreeNode[] = [];
    for (const [service, vols] of services) {
      vols.sort((a, b) => compareNames(a.name, b.name));
      const { content: _content, ...dir } = entry.real;
      list.push({ ...dir, name: Buffer.from(service, 'latin1'), subtree: `${id}/${service}` });
    }
    list.sort((a, b) => compareNames(a.name, b.name));
    entry.services = services;
    entry.list = list;
    return { services, list };
  }

  async readTree(id: string): Promise<readonly TreeNode[]> {
    if (!id.startsWith(VIRTUAL)) return this.repo.readTree(id);
    const slash = id.indexOf('/');
    if (slash < 0) return (await this.load(id)).list;
    return (await this.load(id.slice(0, slash))).services.get(id.slice(slash + 1)) ?? [];
  }

  readBlob(id: string): Promise<Buffer> {
    return this.repo.readBlob(id);
  }
}

/**
 * SnapshotReader holds one snapshot's repository open (read lock) for one
 * request. close() is idempotent; call it once the answer is sent.
 */
export class SnapshotReader {
  private closed = false;
  private readonly repo: Repository;

  constructor(
    private readonly lease: RepoLease,
    readonly snapshot: Snapshot,
    private readonly realRoot: TreeNode,
    trees: TreeCache,
  ) {
    const repo = lease.repo;
    this.repo = repo;
    const key = repo.location;
    this.tree = new VirtualTree({
      // The service's tree cache keeps what it decodes: the repository's own need not.
      readTree: (id) => trees.get(key, id, (i) => lease.retry(() => repo.readTree(i, { cache: false }))),
      readBlob: (id) => lease.retry(() => repo.readBlob(id)),
    });
    this.root = this.tree.addRoot(realRoot);
  }

  private readonly tree: VirtualTree;
  /** The snapshot's (virtual) root directory. */
  private readonly root: TreeNode;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lease.release();
  }

  async resolve(components: readonly Buffer[]): Promise<TreeNode> {
    return components.length === 0 ? this.root : resolvePath(this.tree, this.root, components);
  }

  /** list returns one page of a directory; `cursor` from the previous page. */
  async list(
    components: readonly Buffer[],
    opts: { cursor?: string | undefined; limit?: number | undefined; q?: string | undefined },
  ): Promise<{ entries: FileEntryView[]; cursor: string | null }> {
    const dir = await this.resolve(components);
    if (dir.type !== 'dir') throw new NotADirectoryError(shownPath(components));
    const page = await listDirectory(this.tree, dir, {
      after: opts.cursor !== undefined ? decodeCursor(opts.cursor) : undefined,
      limit: opts.limit ?? BROWSE_LIMITS.defaultPage,
      contains: opts.q || undefined,
    });
    return { entries: page.entries.map(entryView), cursor: page.next ? encodeCursor(page.next) : null };
  }

  /** file resolves a regular file and returns its node and a stream factory. */
  async file(components: readonly Buffer[]): Promise<{ node: TreeNode; name: string; stream(range: ByteRange | null): Readable }> {
    const node = await this.resolve(components);
    if (node.type !== 'file') throw new NotAFileError(shownPath(components));
    return {
      node,
      name: node.name.toString('utf8'),
      stream: (range) => ReadableStream.from(fileBytes(this.tree, node, range?.start ?? 0, range?.end ?? node.size), { objectMode: false }),
    };
  }

  /** diff returns one page of the changes from the snapshot `beforeEngineId` to this one. */
  async diff(beforeEngineId: string, page: DiffPageOptions): Promise<{ changes: ChangeView[]; cursor: string | null }> {
    const before = this.tree.addRoot((await this.repo.findSnapshot(beforeEngineId)).root);
    return diffPage(this.tree, before, this.root, {}, page);
  }

  /**
   * diffLive returns one page of the changes from this snapshot (before) to
   * the live volume directories `volumes` (after), named as in the
   * snapshot's root ("service.volume"). Only metadata is read on the live
   * side (see engine/browse/live.ts).
   */
  async diffLive(
    volumes: ReadonlyArray<{ key: string; path: string }>,
    page: DiffPageOptions,
  ): Promise<{ changes: ChangeView[]; cursor: string | null }> {
    const live = new LiveTree(
      volumes.map((v) => ({ name: Buffer.from(v.key), path: v.path })),
      this.repo,
    );
    const tree = new VirtualTree({ readTree: (id) => live.readTree(id), readBlob: (id) => this.repo.readBlob(id) });
    // The live root carries the snapshot root's metadata, as the service levels do: both are virtual.
    const before = tree.addRoot(this.realRoot);
    const now = tree.addRoot({ ...this.realRoot, subtree: live.rootId });
    return diffPage(tree, before, now, { modified: liveModified }, page);
  }

  /** archive streams a directory as tar (zstd-compressed when asked); its top directory is named `top`. */
  async archive(components: readonly Buffer[], zstd: boolean): Promise<{ top: string; stream: Readable }> {
    const dir = await this.resolve(components);
    if (dir.type !== 'dir') throw new NotADirectoryError(shownPath(components));
    const top = components.length > 0 ? components[components.length - 1]! : Buffer.from(this.snapshot.id);
    return { top: top.toString('utf8'), stream: tarStream(this.tree, dir, { top, zstd }) };
  }
}

/** Which changes one page of a diff holds, and from where. */
export interface DiffPageOptions {
  /** Only changes after this path (a decoded cursor). */
  readonly after?: readonly Buffer[] | undefined;
  readonly limit: number;
  /** Only these kinds of change; all when absent. */
  readonly kinds?: ReadonlySet<ChangeView['change']> | undefined;
}

/**
 * diffPage collects one page of diffTrees' changes (of the kinds asked
 * for), and the cursor after them: the path of the last one, null on the
 * last page.
 */
async function diffPage(
  tree: VirtualTree,
  before: TreeNode,
  after: TreeNode,
  opts: DiffOptions,
  page: DiffPageOptions,
): Promise<{ changes: ChangeView[]; cursor: string | null }> {
  const { limit, kinds } = page;
  const changes: ChangeView[] = [];
  let last: readonly Buffer[] | null = null;
  let more = false;
  for await (const c of diffTrees(tree, before, after, { ...opts, after: page.after })) {
    if (kinds && !kinds.has(c.change)) continue;
    if (changes.length === limit) {
      more = true;
      break;
    }
    const p = shownName(joinPath(c.path));
    changes.push({ path: p.text, pathBase64: p.base64, change: c.change, sizeBefore: c.sizeBefore, sizeAfter: c.sizeAfter });
    last = c.path;
  }
  return { changes, cursor: more && last ? encodeCursor(joinPath(last)) : null };
}

export class BrowseService {
  private readonly opts: Required<BrowseOptions>;
  /** Decoded directories shared by requests (tree-cache.ts). */
  readonly trees: TreeCache;
  /** Repositories kept open between requests, with their indexes and shared read locks (open-repos.ts). */
  readonly repos: OpenRepos;

  constructor(
    private readonly ctx: ServiceContext,
    opts: BrowseOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...opts };
    this.trees = new TreeCache({ maxEntries: this.opts.treeCacheEntries });
    this.repos = new OpenRepos({
      lockWaitMs: this.opts.lockWaitMs,
      maxIndexBytes: this.opts.indexCacheBytes,
      busy: () => new RepositoryBusyError(),
    });
  }

  private readySnapshot(userId: string, depId: string, snapId: string): Snapshot {
    ownedDeployment(this.ctx.store, userId, depId);
    const snap = this.ctx.store.snapshots.inDeployment(depId, snapId);
    if (!snap) throw new NotFoundError('SNAPSHOT_NOT_FOUND', `snapshot ${snapId} not found`);
    if (snap.status !== 'ready' || !snap.engineId) {
      throw new ConflictError('SNAPSHOT_NOT_READY', `snapshot ${snapId} is ${snap.status}, not ready`);
    }
    return snap;
  }

  /**
   * open checks that the user owns the deployment and that the snapshot is
   * ready, then opens its repository under a read lock. The caller closes
   * the reader.
   */
  async open(userId: string, depId: string, snapId: string): Promise<SnapshotReader> {
    const snap = this.readySnapshot(userId, depId, snapId);
    const lease = await this.repos.acquire(this.ctx.paths.repo(depId));
    try {
      const record = await lease.repo.findSnapshot(snap.engineId!);
      return new SnapshotReader(lease, snap, record.root, this.trees);
    } catch (err) {
      await lease.release();
      throw err;
    }
  }

  /** read opens the snapshot, runs `fn` and closes it. */
  async read<T>(userId: string, depId: string, snapId: string, fn: (r: SnapshotReader) => Promise<T>): Promise<T> {
    const reader = await this.open(userId, depId, snapId);
    try {
      return await fn(reader);
    } finally {
      await reader.close();
    }
  }

  /**
   * diff lists what changed from snapshot `against` (before) to `snapId`
   * (after), one page at a time in path order; `cursor` from the previous
   * page; `kinds` keeps only those kinds of change. Both must be ready
   * snapshots of the deployment. With `against`
   * "live", it lists what changed from `snapId` (before) to the
   * deployment's volume directories as they are now (after): the
   * deployment must be active; its current SDL's volumes are compared, by
   * path. Each page walks the live directories afresh.
   */
  async diff(
    userId: string,
    depId: string,
    snapId: string,
    against: string,
    opts: { cursor?: string | undefined; limit?: number | undefined; kinds?: ReadonlySet<ChangeView['change']> | undefined },
  ): Promise<{ changes: ChangeView[]; cursor: string | null }> {
    const page: DiffPageOptions = {
      after: opts.cursor === undefined ? undefined : splitBytes(decodeCursor(opts.cursor)),
      limit: opts.limit ?? BROWSE_LIMITS.defaultPage,
      kinds: opts.kinds,
    };
    if (against === 'live') {
      const dep = activeDeployment(this.ctx.store, userId, depId);
      const volumes = volumesOf(dep.manifest).map((v) => ({ key: v.key, path: this.ctx.paths.volume(depId, v) }));
      return this.read(userId, depId, snapId, (r) => r.diffLive(volumes, page));
    }
    const before = this.readySnapshot(userId, depId, against);
    return this.read(userId, depId, snapId, (r) => r.diff(before.engineId!, page));
  }
}
