/**
 * testing: the Storage contract (storage.ts) as one shared suite, run against
 * every implementation (storage.test.ts for the local ones, test/ for S3).
 * Not part of the build.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isErrno } from '../../core/errors.js';
import type { Storage } from './storage.js';

export interface Harness {
  storage: Storage;
  cleanup(): void | Promise<void>;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

export function bytes(n: number, seed = 1): Buffer {
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

/**
 * storageContract registers the shared suite for one implementation; `make`
 * gives each test a fresh, empty storage and a cleanup.
 */
export function storageContract(name: string, make: () => Harness | Promise<Harness>): void {
  describe(`Storage contract: ${name}`, () => {
    let h: Harness;
    let s: Storage;
    beforeEach(async () => {
      h = await make();
      s = h.storage;
    });
    afterEach(async () => {
      await h.cleanup();
    });

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
      const calls = [
        () => s.read('a/missing'),
        () => s.readAt('a/missing', 0, 1),
        () => s.size('a/missing'),
        () => s.read('nodir/missing'),
      ];
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
}
