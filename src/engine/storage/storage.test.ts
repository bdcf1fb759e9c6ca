/**
 * The Storage contract (storage.ts), checked against both implementations
 * with one shared suite, plus what only LocalStorage promises: writes leave
 * no temp file behind, and cleanTemp removes exactly the leftovers of writers
 * that no longer run.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isErrno } from '../../core/errors.js';
import { tempDir } from '../testing.js';
import { SELF_START, processStartTime } from '../util/process-identity.js';
import { LocalStorage } from './local-storage.js';
import { MemoryStorage } from './memory-storage.js';
import type { Storage } from './storage.js';

interface Harness {
  storage: Storage;
  cleanup(): void;
}

const implementations: Array<[string, () => Harness]> = [
  [
    'LocalStorage',
    () => {
      const dir = tempDir('kova-storage-');
      const storage = new LocalStorage(dir);
      return {
        storage,
        cleanup: () => {
          void storage.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
  ['MemoryStorage', () => ({ storage: new MemoryStorage(), cleanup: () => undefined })],
];

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe.each(implementations)('Storage contract: %s', (_name, make) => {
  let h: Harness;
  let s: Storage;
  beforeEach(() => {
    h = make();
    s = h.storage;
  });
  afterEach(() => h.cleanup());

  it('reads back exactly what was written, whole and by range', async () => {
    const data = bytes(100_000, 7);
    await s.write('packs/ab/abcdef', data);
    expect((await s.read('packs/ab/abcdef')).equals(data)).toBe(true);
    expect(await s.size('packs/ab/abcdef')).toBe(100_000);
    expect((await s.readAt('packs/ab/abcdef', 0, 10)).equals(data.subarray(0, 10))).toBe(true);
    expect((await s.readAt('packs/ab/abcdef', 12_345, 4_321)).equals(data.subarray(12_345, 16_666))).toBe(true);
    expect((await s.readAt('packs/ab/abcdef', 99_990, 10)).equals(data.subarray(99_990))).toBe(true);
    expect((await s.readAt('packs/ab/abcdef', 500, 0)).length).toBe(0);
  });

  it('writes a list of buffers as their concatenation', async () => {
    const parts = [Buffer.from('KOVA'), Buffer.alloc(0), bytes(3000, 3), Buffer.from('END')];
    await s.write('index/x', parts);
    expect((await s.read('index/x')).equals(Buffer.concat(parts))).toBe(true);
    expect(await s.size('index/x')).toBe(3000 + 7);
  });

  it('writes and reads an empty file', async () => {
    await s.write('snapshots/.keep', Buffer.alloc(0));
    expect((await s.read('snapshots/.keep')).length).toBe(0);
    expect(await s.size('snapshots/.keep')).toBe(0);
    expect(await s.list('snapshots')).toEqual(['snapshots/.keep']);
  });

  it('does not keep a reference to the written buffer', async () => {
    const data = Buffer.from('original');
    await s.write('a/file', data);
    data.write('CHANGED!');
    expect((await s.read('a/file')).toString()).toBe('original');
    const back = await s.read('a/file');
    back.write('XXXXXXXX');
    expect((await s.read('a/file')).toString()).toBe('original');
  });

  it('rejects with ENOENT for a missing file on read, readAt and size', async () => {
    await s.write('a/present', Buffer.from('x'));
    // Started one at a time: a rejection nobody awaits yet is reported as unhandled.
    const calls = [() => s.read('a/missing'), () => s.readAt('a/missing', 0, 1), () => s.size('a/missing'), () => s.read('nodir/missing')];
    for (const call of calls) {
      const err = await rejection(call());
      expect(isErrno(err, 'ENOENT'), String(err)).toBe(true);
    }
  });

  it('replaces a file on overwrite, for read, size and readAt', async () => {
    await s.write('locks/l', Buffer.from('first version, long'));
    expect((await s.readAt('locks/l', 0, 5)).toString()).toBe('first');
    await s.write('locks/l', Buffer.from('second'));
    expect((await s.read('locks/l')).toString()).toBe('second');
    expect(await s.size('locks/l')).toBe(6);
    expect((await s.readAt('locks/l', 0, 6)).toString()).toBe('second');
    expect(await s.list('locks')).toEqual(['locks/l']);
  });

  it('rejects a readAt that reaches beyond the end', async () => {
    await s.write('p/f', bytes(100));
    await expect(s.readAt('p/f', 90, 11)).rejects.toThrow();
    await expect(s.readAt('p/f', 100, 1)).rejects.toThrow();
    await expect(s.readAt('p/f', 5000, 10)).rejects.toThrow();
    // The file is still readable afterwards.
    expect((await s.readAt('p/f', 90, 10)).equals(bytes(100).subarray(90))).toBe(true);
  });

  it('lists recursively, sorted, only below the directory asked for', async () => {
    const names = ['d/b', 'd/a/z', 'd/a/b/c', 'd/a-x', 'd/A', 'dd/x', 'e/y', 'd/0'];
    for (const n of names) await s.write(n, Buffer.from(n));
    expect(await s.list('d')).toEqual(['d/0', 'd/A', 'd/a-x', 'd/a/b/c', 'd/a/z', 'd/b']);
    expect(await s.list('d/a')).toEqual(['d/a/b/c', 'd/a/z']);
    expect(await s.list('dd')).toEqual(['dd/x']);
    expect(await s.list('nothing')).toEqual([]);
  });

  it('lists names in sorted order whatever the write order', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => ((i * 7919) % 251).toString(16).padStart(2, '0') + 'ff' + i);
    for (const id of ids) await s.write(`packs/${id.slice(0, 2)}/${id}`, Buffer.from(id));
    const listed = await s.list('packs');
    expect(listed).toHaveLength(60);
    expect(listed).toEqual([...listed].sort());
    expect(new Set(listed)).toEqual(new Set(ids.map((id) => `packs/${id.slice(0, 2)}/${id}`)));
  });

  it('removes files, and removing a missing file is not an error', async () => {
    await s.write('x/a', Buffer.from('a'));
    await s.write('x/b', Buffer.from('b'));
    await s.readAt('x/a', 0, 1);
    await s.remove('x/a');
    expect(await s.list('x')).toEqual(['x/b']);
    expect(isErrno(await rejection(s.read('x/a')), 'ENOENT')).toBe(true);
    expect(isErrno(await rejection(s.readAt('x/a', 0, 1)), 'ENOENT')).toBe(true);
    await s.remove('x/a');
    await s.remove('nowhere/at/all');
    expect((await s.read('x/b')).toString()).toBe('b');
  });

  it('can write a name again after removing it', async () => {
    await s.write('r/f', Buffer.from('one'));
    expect((await s.readAt('r/f', 0, 3)).toString()).toBe('one');
    await s.remove('r/f');
    await s.write('r/f', Buffer.from('two'));
    expect((await s.readAt('r/f', 0, 3)).toString()).toBe('two');
  });

  it('keeps concurrent writes of different names apart', async () => {
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => s.write(`c/${String(i).padStart(3, '0')}`, bytes(1000 + i, i + 1))));
    const listed = await s.list('c');
    expect(listed).toHaveLength(n);
    for (let i = 0; i < n; i++) expect((await s.read(`c/${String(i).padStart(3, '0')}`)).equals(bytes(1000 + i, i + 1))).toBe(true);
  });

  it('close releases handles and the storage stays usable', async () => {
    await s.write('h/f', Buffer.from('handle'));
    await s.readAt('h/f', 0, 6);
    await s.close();
    expect((await s.readAt('h/f', 0, 6)).toString()).toBe('handle');
  });
});

/* ---- LocalStorage only --------------------------------------------------------- */

/** A pid that certainly belongs to no running process: one that just exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  expect(pid).toBeGreaterThan(0);
  expect(processStartTime(pid)).toBeNull();
  return pid;
}

describe('LocalStorage', () => {
  let dir: string;
  let s: LocalStorage;
  beforeEach(() => {
    dir = tempDir('kova-local-');
    s = new LocalStorage(dir);
  });
  afterEach(async () => {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const tmpFiles = (): string[] => {
    try {
      return fs.readdirSync(path.join(dir, 'tmp'));
    } catch {
      return [];
    }
  };

  it('leaves no temp file behind after writes, overwrites and removes', async () => {
    for (let i = 0; i < 20; i++) await s.write(`packs/${i % 3}/p${i}`, bytes(5000 + i, i + 1));
    await s.write('packs/0/p0', Buffer.from('again'));
    await Promise.all(Array.from({ length: 10 }, (_, i) => s.write(`index/i${i}`, [Buffer.from('a'), bytes(100, i + 1)])));
    await s.remove('packs/1/p1');
    expect(tmpFiles()).toEqual([]);
    // And the files are where the names say, not in tmp/.
    expect(fs.readFileSync(path.join(dir, 'packs/0/p0')).toString()).toBe('again');
    expect(fs.existsSync(path.join(dir, 'index/i9'))).toBe(true);
    expect(await s.list('tmp')).toEqual([]);
  });

  it('writes files readable by others only as complete files (final name appears with full content)', async () => {
    const data = bytes(2 * 1024 * 1024, 9);
    await s.write('big/file', data);
    expect(fs.statSync(path.join(dir, 'big/file')).size).toBe(data.length);
    expect(fs.readFileSync(path.join(dir, 'big/file')).equals(data)).toBe(true);
  });

  it('rejects names that could leave the directory', async () => {
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/']) {
      await expect(s.write(bad, Buffer.from('x'))).rejects.toThrow(/invalid storage name/);
    }
    expect(fs.readdirSync(path.dirname(dir)).includes('x')).toBe(false);
  });

  it('cleanTemp removes temp files of dead processes and keeps those of live ones', async () => {
    await s.write('seed', Buffer.from('x')); // creates tmp/
    const tmp = path.join(dir, 'tmp');
    const dead = deadPid();
    const ours = `${process.pid}-${SELF_START}-0123456789abcdef.tmp`;
    const deadOne = `${dead}-12345-aaaaaaaaaaaaaaaa.tmp`;
    // Our pid, but another start time: the pid was reused, the writer is gone.
    const reused = `${process.pid}-${SELF_START}9-bbbbbbbbbbbbbbbb.tmp`;
    const parent = `${process.ppid}-${processStartTime(process.ppid) ?? ''}-cccccccccccccccc.tmp`;
    const junk = 'not-a-temp-name';
    for (const n of [ours, deadOne, reused, parent, junk]) fs.writeFileSync(path.join(tmp, n), 'partial');
    expect(SELF_START).toMatch(/^[0-9]+$/);

    const removed = await s.cleanTemp();
    expect(fs.readdirSync(tmp).sort()).toEqual([ours, parent].sort());
    expect(removed).toBe(3);
    // Nothing else was touched.
    expect((await s.read('seed')).toString()).toBe('x');
    expect(await s.cleanTemp()).toBe(0);
    expect(fs.readdirSync(tmp).sort()).toEqual([ours, parent].sort());
  });

  it('cleanTemp on a storage that never wrote returns 0', async () => {
    expect(await s.cleanTemp()).toBe(0);
  });

  it('cleanTemp does not disturb a write in progress in this process', async () => {
    const data = bytes(8 * 1024 * 1024, 5);
    const writing = s.write('w/big', data);
    const cleaned = s.cleanTemp();
    await Promise.all([writing, cleaned]);
    expect((await s.read('w/big')).equals(data)).toBe(true);
    expect(tmpFiles()).toEqual([]);
  });
});
