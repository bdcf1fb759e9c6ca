/**
 * The Storage contract (storage.ts), checked against both implementations
 * with one shared suite, plus what only LocalStorage promises: writes leave
 * no temp file behind, and cleanTemp removes exactly the leftovers of writers
 * that no longer run.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EncryptedStorage } from '../crypto/encrypted-storage.js';
import { tempDir } from '../testing.js';
import { SELF_START, processStartTime } from '../util/process-identity.js';
import { LocalStorage } from './local-storage.js';
import { MemoryStorage } from './memory-storage.js';
import { type Harness, bytes, storageContract } from './testing.js';

const implementations: Array<[string, () => Harness | Promise<Harness>]> = [
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
  [
    'EncryptedStorage over MemoryStorage',
    async () => ({ storage: await EncryptedStorage.create(new MemoryStorage(), randomBytes(32)), cleanup: () => undefined }),
  ],
];
for (const [name, make] of implementations) storageContract(name, make);

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

  it('syncs file and directory for a durable write or remove, and not at all when asked for a volatile one', async () => {
    await s.write('locks/.keep', Buffer.alloc(0));
    // FileHandle is not exported: spy on the prototype of an open one.
    const probe = await fs.promises.open(path.join(dir, 'locks/.keep'), 'r');
    const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void>; sync(): Promise<void> };
    await probe.close();
    const datasync = vi.spyOn(proto, 'datasync');
    const sync = vi.spyOn(proto, 'sync');
    try {
      await s.write('locks/a', Buffer.from('held'), { durable: false });
      await s.write('locks/a', Buffer.from('refreshed'), { durable: false });
      await s.remove('locks/a', { durable: false });
      expect(datasync).not.toHaveBeenCalled();
      expect(sync).not.toHaveBeenCalled();
      expect(tmpFiles()).toEqual([]);
      expect(fs.existsSync(path.join(dir, 'locks/a'))).toBe(false);

      await s.write('locks/b', Buffer.from('durable'));
      expect(fs.readFileSync(path.join(dir, 'locks/b')).toString()).toBe('durable');
      expect(datasync).toHaveBeenCalledTimes(1);
      expect(sync).toHaveBeenCalledTimes(1); // the directory
      await s.remove('locks/b');
      expect(sync).toHaveBeenCalledTimes(2);
    } finally {
      datasync.mockRestore();
      sync.mockRestore();
    }
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
