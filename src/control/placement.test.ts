/** placement: which node a new deployment lands on, from the nodes' reported capacity. */
import { describe, expect, it } from 'vitest';
import type { Capacity } from '../network/protocol.js';
import { MARGIN_MAX_BYTES, type PlacementNode, place, roomOf } from './placement.js';

const GB = 1e9;
const cap = (over: Partial<Capacity> = {}): Capacity => ({
  diskFreeBytes: 100 * GB,
  diskTotalBytes: 200 * GB,
  volumeUsedBytes: 0,
  volumeReservedBytes: 0,
  deployments: 0,
  runningServices: 0,
  health: 'ok',
  ...over,
});
const node = (name: string, capacity: Capacity | null, status: PlacementNode['status'] = 'online'): PlacementNode => ({
  id: `node-${name}`,
  name,
  status,
  capacity,
});

describe('roomOf', () => {
  it('takes promised but unused volume space and a margin off the free space', () => {
    // 100 GB free, 30 GB promised of which 10 GB used: 20 GB may still be written; margin min(1 GiB, 5% of 200 GB).
    expect(roomOf(cap({ volumeReservedBytes: 30 * GB, volumeUsedBytes: 10 * GB }))).toBe(100 * GB - 20 * GB - MARGIN_MAX_BYTES);
  });

  it('never counts volumes using more than promised as extra room', () => {
    expect(roomOf(cap({ volumeReservedBytes: 10 * GB, volumeUsedBytes: 30 * GB }))).toBe(100 * GB - MARGIN_MAX_BYTES);
  });

  it('uses 5% of a small disk as the margin', () => {
    expect(roomOf(cap({ diskTotalBytes: 10 * GB, diskFreeBytes: 10 * GB }))).toBe(10 * GB - 0.5 * GB);
  });
});

describe('place', () => {
  it('picks the node with the most room left after placing', () => {
    const r = place([node('a', cap({ diskFreeBytes: 50 * GB })), node('b', cap({ diskFreeBytes: 80 * GB })), node('c', cap())], 5 * GB);
    expect(r).toMatchObject({ ok: true, node: { name: 'c' } });
  });

  it('spreads: a node whose volumes were promised most of its disk loses to an emptier one', () => {
    const busy = node('busy', cap({ diskFreeBytes: 100 * GB, volumeReservedBytes: 90 * GB, volumeUsedBytes: 5 * GB }));
    const empty = node('empty', cap({ diskFreeBytes: 40 * GB }));
    expect(place([busy, empty], 1 * GB)).toMatchObject({ ok: true, node: { name: 'empty' } });
  });

  it('counts deployments placed since the last heartbeat: equal nodes take turns', () => {
    const a = { ...node('a', cap()), reservedBytes: 5 * GB };
    const b = { ...node('b', cap()), reservedBytes: 0 };
    expect(place([a, b], 5 * GB)).toMatchObject({ ok: true, node: { name: 'b' } });
    // The node's own report wins when it promised more than the catalogue knows of.
    const c = { ...node('c', cap({ volumeReservedBytes: 20 * GB })), reservedBytes: 5 * GB };
    expect(roomOf(c.capacity!, c.reservedBytes)).toBe(100 * GB - 20 * GB - MARGIN_MAX_BYTES);
  });

  it('skips draining, offline, degraded and never-reported nodes', () => {
    const r = place(
      [
        node('draining', cap({ diskFreeBytes: 999 * GB }), 'draining'),
        node('offline', cap({ diskFreeBytes: 999 * GB }), 'offline'),
        node('degraded', cap({ diskFreeBytes: 999 * GB, health: 'degraded' })),
        node('silent', null),
        node('small', cap({ diskFreeBytes: 10 * GB })),
      ],
      1 * GB,
    );
    expect(r).toMatchObject({ ok: true, node: { name: 'small' } });
  });

  it('refuses when no online node has room, saying how many were online and the largest room', () => {
    const r = place([node('a', cap({ diskFreeBytes: 3 * GB })), node('b', cap({ diskFreeBytes: 50 * GB }), 'draining')], 5 * GB);
    expect(r).toEqual({ ok: false, online: 1, largestRoom: 3 * GB - MARGIN_MAX_BYTES });
  });

  it('refuses with no node at all', () => {
    expect(place([], 1)).toEqual({ ok: false, online: 0, largestRoom: null });
  });

  it('fits exactly at the room, not a byte beyond', () => {
    const c = cap();
    expect(place([node('a', c)], roomOf(c))).toMatchObject({ ok: true, roomAfter: 0 });
    expect(place([node('a', c)], roomOf(c) + 1)).toMatchObject({ ok: false });
  });

  it('breaks ties by fewer deployments, then by name, whatever the order given', () => {
    const many = node('a', cap({ deployments: 5 }));
    const few = node('b', cap({ deployments: 1 }));
    expect(place([many, few], GB)).toMatchObject({ node: { name: 'b' } });
    expect(place([few, many], GB)).toMatchObject({ node: { name: 'b' } });
    expect(place([node('y', cap()), node('x', cap())], GB)).toMatchObject({ node: { name: 'x' } });
  });
});
