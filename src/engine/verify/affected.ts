/**
 * affected: which snapshots a verify report's damage reaches, so they can be
 * marked and their owners told.
 *
 * A snapshot is affected when any tree reachable from its root, or any data
 * blob one of those trees references, is named by an error finding, or lies
 * in a pack an error finding names (a missing, short or damaged pack loses
 * every blob in it). Trees are shared between snapshots, so the answer for
 * each tree is computed once for all of them.
 */
import type { SnapshotRecord } from '../format/snapshot-record.js';
import type { TreeNode } from '../format/tree.js';
import type { Finding } from './verify.js';

/** The narrow view of a repository this needs. */
export interface AffectedSource {
  listSnapshots(): Promise<SnapshotRecord[]>;
  readTree(id: string): Promise<readonly TreeNode[]>;
  /** The pack holding a blob, or undefined when the index does not list it. */
  packOf(blobId: string): string | undefined;
}

/**
 * affectedSnapshots returns the ids of the snapshots the error findings
 * reach, oldest first. A tree that can no longer be read counts as damage.
 */
export async function affectedSnapshots(src: AffectedSource, findings: readonly Finding[]): Promise<string[]> {
  const packs = new Set<string>();
  const blobs = new Set<string>();
  for (const f of findings) {
    if (f.severity !== 'error') continue;
    if (f.blob !== undefined) blobs.add(f.blob);
    else if (f.pack !== undefined) packs.add(f.pack);
  }
  if (packs.size === 0 && blobs.size === 0) return [];
  const damaged = (id: string): boolean => {
    if (blobs.has(id)) return true;
    const pack = src.packOf(id);
    return pack === undefined || packs.has(pack);
  };
  const memo = new Map<string, Promise<boolean>>();
  const treeHit = (id: string): Promise<boolean> => {
    let p = memo.get(id);
    if (!p) {
      p = (async () => {
        if (damaged(id)) return true;
        let nodes: readonly TreeNode[];
        try {
          nodes = await src.readTree(id);
        } catch {
          return true;
        }
        for (const n of nodes) {
          if (n.content?.some((c) => c.id !== null && damaged(c.id))) return true;
          if (n.subtree !== undefined && (await treeHit(n.subtree))) return true;
        }
        return false;
      })();
      memo.set(id, p);
    }
    return p;
  };
  const out: string[] = [];
  const snapshots = (await src.listSnapshots()).sort((a, b) => a.time.localeCompare(b.time));
  for (const s of snapshots) if (s.root.subtree !== undefined && (await treeHit(s.root.subtree))) out.push(s.id);
  return out;
}
