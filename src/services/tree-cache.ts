/**
 * tree-cache: decoded snapshot directories kept between browse requests.
 *
 * A tree blob is named by the hash of its bytes, so what an id decodes to
 * never changes: a cached listing can't go stale. Paging through a large
 * directory would otherwise read, verify and decode the same tree once per
 * page (a 100,000-entry directory is 20 pages of 5,000). Each request still
 * opens the repository under its read lock and checks that the snapshot is
 * ready and recorded; only the decoding is shared.
 *
 * The cache is bounded by the number of entries it holds (whole trees, least
 * recently used first out); a tree larger than the bound is not kept. Cached
 * arrays are frozen: callers must not change them.
 */
import type { TreeNode } from '../engine/index.js';

export interface TreeCacheOptions {
  /** Most directory entries held across all cached trees (default 250,000, tens of MB). */
  readonly maxEntries?: number;
}

/** An empty directory counts as one entry, so the bound holds for many of them too. */
const cost = (nodes: readonly TreeNode[]): number => Math.max(1, nodes.length);

export class TreeCache {
  private readonly trees = new Map<string, readonly TreeNode[]>();
  private entries = 0;
  private readonly maxEntries: number;
  /** Reads of the same tree that are in progress, so concurrent pages decode it once. */
  private readonly pending = new Map<string, Promise<readonly TreeNode[]>>();

  constructor(opts: TreeCacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 250_000;
  }

  /** Entries held now (for tests and metrics). */
  get size(): number {
    return this.entries;
  }

  /**
   * get returns the tree `id` of the repository `repo` (any stable name of
   * it, e.g. its directory), reading it with `read` when it is not cached.
   */
  async get(repo: string, id: string, read: (id: string) => Promise<readonly TreeNode[]>): Promise<readonly TreeNode[]> {
    const key = `${repo}\0${id}`;
    const hit = this.trees.get(key);
    if (hit) {
      this.trees.delete(key);
      this.trees.set(key, hit);
      return hit;
    }
    const running = this.pending.get(key);
    if (running) return running;
    const p = read(id).then((nodes) => {
      const frozen = Object.freeze(nodes.slice());
      this.put(key, frozen);
      return frozen;
    });
    this.pending.set(key, p);
    try {
      return await p;
    } finally {
      this.pending.delete(key);
    }
  }

  /** forget drops every tree of `repo` (its repository was removed or rewritten). */
  forget(repo: string): void {
    const prefix = `${repo}\0`;
    for (const [key, nodes] of this.trees) {
      if (!key.startsWith(prefix)) continue;
      this.trees.delete(key);
      this.entries -= cost(nodes);
    }
  }

  private put(key: string, nodes: readonly TreeNode[]): void {
    if (cost(nodes) > this.maxEntries) return;
    this.trees.set(key, nodes);
    this.entries += cost(nodes);
    for (const [old, n] of this.trees) {
      if (this.entries <= this.maxEntries) break;
      this.trees.delete(old);
      this.entries -= cost(n);
    }
  }
}
