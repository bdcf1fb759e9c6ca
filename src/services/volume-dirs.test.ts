/**
 * What an SDL update does to volume directories: renamed volumes move,
 * orphans go only when empty or held by a snapshot, staging areas and data
 * nothing else holds stay.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../sdl/types.js';
import { Paths } from './paths.js';
import { moveVolumes, removeOrphans, volumeChanges } from './volume-dirs.js';

function manifest(services: Record<string, Record<string, string>>): Manifest {
  return {
    services: Object.entries(services).map(([name, vols]) => ({
      name,
      image: 'busybox',
      command: [],
      args: [],
      env: {},
      expose: [],
      hooks: { pre: null, post: null },
      volumes: Object.entries(vols).map(([v, mount]) => ({ name: v, mount, sizeBytes: 1, readOnly: false })),
    })),
  };
}

let dir = '';
let paths: Paths;
const dep = 'dep-test';
const vol = (service: string, volume: string) => paths.volume(dep, { service, volume });
const put = (service: string, volume: string, file: string) => {
  fs.mkdirSync(vol(service, volume), { recursive: true });
  fs.writeFileSync(path.join(vol(service, volume), file), file);
};
const tree = () => {
  const root = paths.deploymentVolumes(dep);
  return fs
    .readdirSync(root)
    .flatMap((s) =>
      fs.statSync(path.join(root, s)).isDirectory() ? [s, ...fs.readdirSync(path.join(root, s)).map((v) => `${s}/${v}`)] : [s],
    );
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-voldirs-'));
  paths = new Paths(dir);
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('volumeChanges', () => {
  it('moves a renamed service and names every volume that goes', () => {
    const c = volumeChanges(manifest({ app: { data: '/data', logs: '/logs' } }), manifest({ web: { data: '/data' } }));
    expect(c.moves.map((m) => [m.from.key, m.to.key])).toEqual([['app.data', 'web.data']]);
    expect(c.gone).toEqual(['app.data', 'app.logs']);
  });

  it('moves nothing when the rename is ambiguous', () => {
    const c = volumeChanges(
      manifest({ a: { data: '/data' }, b: { data: '/data' } }),
      manifest({ c: { data: '/data' }, d: { data: '/data' } }),
    );
    expect(c.moves).toEqual([]);
  });
});

describe('moveVolumes', () => {
  it('moves the data to the new name, replacing an empty directory; again is a no-op', async () => {
    put('app', 'data', 'f');
    fs.mkdirSync(vol('web', 'data'), { recursive: true });
    const c = volumeChanges(manifest({ app: { data: '/data' } }), manifest({ web: { data: '/data' } }));
    await moveVolumes(paths, dep, c);
    await moveVolumes(paths, dep, c);
    expect(fs.readFileSync(path.join(vol('web', 'data'), 'f'), 'utf8')).toBe('f');
    expect(fs.existsSync(vol('app', 'data'))).toBe(false);
  });

  it('keeps both when the new name already holds data', async () => {
    put('app', 'data', 'old');
    put('web', 'data', 'new');
    await moveVolumes(paths, dep, volumeChanges(manifest({ app: { data: '/data' } }), manifest({ web: { data: '/data' } })));
    expect(fs.readdirSync(vol('app', 'data'))).toEqual(['old']);
    expect(fs.readdirSync(vol('web', 'data'))).toEqual(['new']);
  });
});

describe('removeOrphans', () => {
  it('removes empty and captured orphans, keeps the rest and every staging area', async () => {
    put('app', 'data', 'live');
    put('app', 'logs', 'captured');
    put('old', 'cache', 'only-copy');
    fs.mkdirSync(vol('gone', 'empty'), { recursive: true });
    fs.mkdirSync(path.join(paths.deploymentVolumes(dep), '.restore-rst-1', 'app.data'), { recursive: true });

    const kept = await removeOrphans(paths, dep, manifest({ app: { data: '/data' } }), new Set(['app.logs']));
    expect(kept).toEqual(['old.cache']);
    expect(tree().sort()).toEqual(['.restore-rst-1', '.restore-rst-1/app.data', 'app', 'app/data', 'old', 'old/cache']);
    expect(fs.readFileSync(path.join(vol('old', 'cache'), 'only-copy'), 'utf8')).toBe('only-copy');
  });

  it('does nothing for a deployment without volume directories', async () => {
    expect(await removeOrphans(paths, dep, manifest({ app: { data: '/data' } }), new Set())).toEqual([]);
  });
});
