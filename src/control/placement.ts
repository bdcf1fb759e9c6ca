/**
 * placement: which node a new deployment goes to. A pure function of the
 * nodes' last reported capacity, so every replica decides alike and tests
 * need no database.
 *
 * A node is a candidate when it is `online` (not draining, not offline), has
 * reported a capacity and is not degraded. Its room is its free disk, minus
 * what its volumes were promised but do not use yet (they may grow into it),
 * minus a safety margin (the smaller of MARGIN_MAX_BYTES and MARGIN_FRACTION
 * of the disk: the point where a node reports itself short of space). A
 * deployment fits where its SDL's volumes fit in that room; among those,
 * the node with the most room left after placing wins, which spreads
 * deployments. Ties go to the node with fewer deployments, then by name.
 */
import type { Capacity } from '../network/protocol.js';
import type { NodeStatus } from './catalogue.js';

export const MARGIN_FRACTION = 0.05;
export const MARGIN_MAX_BYTES = 1024 ** 3;

export interface PlacementNode {
  readonly id: string;
  readonly name: string;
  readonly status: NodeStatus;
  readonly capacity: Capacity | null;
  /** Storage promised to the deployments placed on it, as the catalogue counts it (0 if unknown). */
  readonly reservedBytes?: number;
}

/**
 * roomOf is the bytes a node can still promise to new volumes (negative:
 * none). What is promised is the larger of the node's last report and the
 * catalogue's count, which already holds deployments placed since that
 * report: two deployments created between two heartbeats are not both
 * given the same room.
 */
export function roomOf(c: Capacity, catalogueReserved = 0): number {
  const promisedUnused = Math.max(0, Math.max(c.volumeReservedBytes, catalogueReserved) - c.volumeUsedBytes);
  const margin = Math.min(MARGIN_MAX_BYTES, MARGIN_FRACTION * c.diskTotalBytes);
  return c.diskFreeBytes - promisedUnused - margin;
}

export type Placement =
  | { readonly ok: true; readonly node: PlacementNode; readonly roomAfter: number }
  /** Why no node fits: counts for the error message. */
  | { readonly ok: false; readonly online: number; readonly largestRoom: number | null };

/** place picks the node for a deployment whose volumes total `neededBytes`. */
export function place(nodes: readonly PlacementNode[], neededBytes: number): Placement {
  let best: { node: PlacementNode; roomAfter: number } | null = null;
  let online = 0;
  let largestRoom: number | null = null;
  for (const n of nodes) {
    if (n.status !== 'online' || !n.capacity || n.capacity.health !== 'ok') continue;
    online++;
    const room = roomOf(n.capacity, n.reservedBytes);
    largestRoom = largestRoom === null ? room : Math.max(largestRoom, room);
    const roomAfter = room - neededBytes;
    if (roomAfter < 0) continue;
    if (!best || better({ node: n, roomAfter }, best)) best = { node: n, roomAfter };
  }
  return best ? { ok: true, ...best } : { ok: false, online, largestRoom };
}

function better(a: { node: PlacementNode; roomAfter: number }, b: { node: PlacementNode; roomAfter: number }): boolean {
  if (a.roomAfter !== b.roomAfter) return a.roomAfter > b.roomAfter;
  const da = a.node.capacity?.deployments ?? 0;
  const db = b.node.capacity?.deployments ?? 0;
  if (da !== db) return da < db;
  return a.node.name < b.node.name;
}
