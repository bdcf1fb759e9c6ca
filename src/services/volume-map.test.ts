/**
 * Where a snapshot's volumes go after services or volumes were renamed:
 * name, then mount path, then position; one-to-one or not at all.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { VolumeRef } from './paths.js';
import { type SnapshotVolume, assertRestorable, mapVolumes, snapshotVolumes, volumeTags } from './volume-map.js';

function cur(...specs: string[]): VolumeRef[] {
  // "service.volume:/mount"
  return specs.map((s) => {
    const [key, mount] = s.split(':') as [string, string];
    const [service, volume] = key.split('.') as [string, string];
    return { service, volume, key, mount };
  });
}

/** A snapshot taken of a deployment with these volumes (as the capture records it). */
function snapOf(volumes: VolumeRef[]): SnapshotVolume[] {
  return snapshotVolumes(
    volumeTags(volumes),
    volumes.map((v) => v.key),
  );
}

describe('snapshotVolumes', () => {
  it('reads mount paths and SDL order from the tags, whatever the order of the root', () => {
    const tags = ['kova:snap-1', ...volumeTags(cur('web.data:/data', 'db.pg:/var/lib/pg=x'))];
    expect(snapshotVolumes(tags, ['db.pg', 'web.data'])).toEqual([
      { key: 'web.data', mount: '/data', position: 0 },
      { key: 'db.pg', mount: '/var/lib/pg=x', position: 1 },
    ]);
  });

  it('without recorded layout: no mount; a position only for a single volume', () => {
    expect(snapshotVolumes(['kova:snap-1'], ['app.data'])).toEqual([{ key: 'app.data', mount: null, position: 0 }]);
    expect(snapshotVolumes([], ['a.x', 'b.y'])).toEqual([
      { key: 'a.x', mount: null, position: null },
      { key: 'b.y', mount: null, position: null },
    ]);
  });

  it('ignores a layout that does not describe every directory of the root', () => {
    expect(snapshotVolumes(volumeTags(cur('a.x:/x')), ['a.x', 'b.y'])).toEqual([
      { key: 'a.x', mount: null, position: null },
      { key: 'b.y', mount: null, position: null },
    ]);
  });
});

describe('mapVolumes', () => {
  it('maps a renamed service by its mount path (app -> web)', () => {
    const m = mapVolumes(snapOf(cur('app.data:/data')), cur('web.data:/data'));
    expect(m).toEqual({ pairs: [{ from: 'app.data', to: 'web.data', match: 'mount' }], missing: [], notInSnapshot: [] });
    expect(() => assertRestorable('snap-1', m)).not.toThrow();
  });

  it('prefers exact names, and leaves a volume the snapshot lacks out of the restore', () => {
    const m = mapVolumes(snapOf(cur('app.data:/data')), cur('app.data:/data', 'app.cache:/cache'));
    expect(m).toEqual({ pairs: [{ from: 'app.data', to: 'app.data', match: 'name' }], missing: [], notInSnapshot: ['app.cache'] });
  });

  it('maps by position when the service is renamed and the mount path changed too', () => {
    const m = mapVolumes(snapOf(cur('app.data:/data', 'app.logs:/logs')), cur('web.data:/srv/data', 'web.logs:/srv/logs'));
    expect(m.pairs).toEqual([
      { from: 'app.data', to: 'web.data', match: 'position' },
      { from: 'app.logs', to: 'web.logs', match: 'position' },
    ]);
    expect(m.missing).toEqual([]);
  });

  it('maps a legacy single-volume snapshot (no recorded layout) by position', () => {
    const m = mapVolumes(snapshotVolumes([], ['app.data']), cur('web.data:/data'));
    expect(m.pairs).toEqual([{ from: 'app.data', to: 'web.data', match: 'position' }]);
  });

  it('refuses when two snapshot volumes share the mount path of the renamed ones', () => {
    // Two services both mounting /data, both renamed: which is which is a guess.
    const m = mapVolumes(snapOf(cur('a.data:/data', 'b.data:/data')), cur('c.data:/data', 'd.data:/data'));
    expect(m.pairs).toEqual([]);
    expect(m.missing).toEqual(['a.data', 'b.data']);
    expect(m.notInSnapshot).toEqual(['c.data', 'd.data']);
    expect(() => assertRestorable('snap-1', m)).toThrow(
      expect.objectContaining({
        code: 'VOLUMES_CHANGED',
        status: 409,
        message: expect.stringMatching(/a\.data, b\.data.*not in the snapshot: c\.data, d\.data/),
      }),
    );
  });

  it('does not follow a volume whose service, volume name and mount path all changed', () => {
    const m = mapVolumes(snapOf(cur('app.data:/data', 'db.pg:/pg')), cur('app.data:/data', 'cache.tmp:/tmp'));
    expect(m.pairs).toEqual([{ from: 'app.data', to: 'app.data', match: 'name' }]);
    expect(m.missing).toEqual(['db.pg']);
    expect(m.notInSnapshot).toEqual(['cache.tmp']);
  });

  it('refuses a removed volume', () => {
    const m = mapVolumes(snapOf(cur('app.data:/data', 'app.logs:/logs')), cur('app.data:/data'));
    expect(m.missing).toEqual(['app.logs']);
    expect(() => assertRestorable('snap-1', m)).toThrow(expect.objectContaining({ code: 'VOLUMES_CHANGED' }));
  });

  it('refuses a snapshot that holds no volume', () => {
    const m = mapVolumes([], cur('app.data:/data'));
    expect(() => assertRestorable('snap-1', m)).toThrow(expect.objectContaining({ code: 'NOTHING_TO_RESTORE', status: 409 }));
  });

  it('is one-to-one and accounts for every volume on both sides', () => {
    const name = fc.constantFrom('a', 'b', 'c');
    const vol = fc.record({ service: name, volume: name, mount: fc.constantFrom('/x', '/y', '/z') });
    const uniq = (vs: { service: string; volume: string; mount: string }[]): VolumeRef[] => {
      const seen = new Set<string>();
      return vs.flatMap((v) => {
        const key = `${v.service}.${v.volume}`;
        if (seen.has(key)) return [];
        seen.add(key);
        return [{ ...v, key }];
      });
    };
    fc.assert(
      fc.property(fc.array(vol, { maxLength: 6 }), fc.array(vol, { maxLength: 6 }), (a, b) => {
        const before = uniq(a);
        const now = uniq(b);
        const m = mapVolumes(snapOf(before), now);
        const froms = m.pairs.map((p) => p.from);
        const tos = m.pairs.map((p) => p.to);
        expect(new Set(froms).size).toBe(froms.length);
        expect(new Set(tos).size).toBe(tos.length);
        expect([...froms, ...m.missing].sort()).toEqual(before.map((v) => v.key).sort());
        expect([...tos, ...m.notInSnapshot].sort()).toEqual(now.map((v) => v.key).sort());
        for (const p of m.pairs) if (p.match === 'name') expect(p.from).toBe(p.to);
        // An unchanged layout maps every volume to itself.
        expect(mapVolumes(snapOf(now), now).pairs.every((p) => p.from === p.to && p.match === 'name')).toBe(true);
      }),
    );
  });
});
