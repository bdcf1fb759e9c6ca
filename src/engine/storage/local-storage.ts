/**
 * local-storage: a Storage in a local directory.
 *
 * Writes go to tmp/<pid>-<start>-<random>.tmp first, are fdatasync'ed, renamed to their final
 * name and the directory is fsynced, so a crash at any point leaves either
 * nothing or the complete file (docs/format.md, "Crash safety"). Writes
 * and removes asked not to be durable (lock files) skip the syncs.
 * Open read handles are cached (LRU) because restores read many small ranges
 * from the same packs.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CorruptionError, isErrno } from '../../core/errors.js';
import { fsyncDir } from '../fsx/durable.js';
import { SELF_START, isAlive } from '../util/process-identity.js';
import type { Storage, WriteOptions } from './storage.js';

const TMP_DIR = 'tmp';
const MAX_OPEN_HANDLES = 64;

export class LocalStorage implements Storage {
  readonly location: string;
  private readonly handles = new Map<string, Promise<fs.FileHandle>>();
  private readonly knownDirs = new Set<string>();

  constructor(root: string) {
    this.location = path.resolve(root);
  }

  private abs(name: string): string {
    if (name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '')) {
      throw new Error(`invalid storage name ${name}`);
    }
    return path.join(this.location, name);
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    try {
      await fs.mkdir(dir);
      await fsyncDir(path.dirname(dir));
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) {
        if (!isErrno(err, 'ENOENT')) throw err;
        await this.ensureDir(path.dirname(dir));
        return this.ensureDir(dir);
      }
    }
    this.knownDirs.add(dir);
  }

  async write(name: string, data: Buffer | readonly Buffer[], opts: WriteOptions = {}): Promise<void> {
    const durable = opts.durable ?? true;
    const final = this.abs(name);
    const tmpDir = path.join(this.location, TMP_DIR);
    await this.ensureDir(tmpDir);
    // The owner is part of the name, so cleanTemp only removes files of dead writers.
    const tmp = path.join(tmpDir, `${process.pid}-${SELF_START}-${randomBytes(8).toString('hex')}.tmp`);
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      const parts = Buffer.isBuffer(data) ? [data] : data;
      await fh.writev(parts as Buffer[]);
      if (durable) await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
    const dir = path.dirname(final);
    try {
      await fh.close();
      await this.ensureDir(dir);
      await fs.rename(tmp, final);
    } catch (err) {
      // A full disk may fail the directory's creation: leave no temp file (cleanTemp spares a live writer's).
      await fs.rm(tmp, { force: true });
      throw err;
    }
    this.dropHandle(name);
    if (durable) await fsyncDir(dir);
  }

  async read(name: string): Promise<Buffer> {
    return fs.readFile(this.abs(name));
  }

  private handle(name: string): Promise<fs.FileHandle> {
    let h = this.handles.get(name);
    if (h) {
      // Refresh LRU position.
      this.handles.delete(name);
      this.handles.set(name, h);
      return h;
    }
    h = fs.open(this.abs(name), 'r');
    this.handles.set(name, h);
    h.catch(() => this.handles.delete(name));
    while (this.handles.size > MAX_OPEN_HANDLES) {
      const [oldest, oh] = this.handles.entries().next().value as [string, Promise<fs.FileHandle>];
      this.handles.delete(oldest);
      // Let in-flight reads on it finish: close after a tick.
      void oh.then((f) => setTimeout(() => void f.close().catch(() => undefined), 1000).unref()).catch(() => undefined);
    }
    return h;
  }

  async readAt(name: string, offset: number, length: number): Promise<Buffer> {
    const fh = await this.handle(name);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new CorruptionError(`${name} is shorter than expected (wanted ${length} bytes at ${offset})`, { file: name });
      }
      done += bytesRead;
    }
    return buf;
  }

  localPath(name: string): string {
    return this.abs(name);
  }

  async size(name: string): Promise<number> {
    return (await fs.stat(this.abs(name))).size;
  }

  async list(dir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(this.abs(rel), { withFileTypes: true });
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return;
        throw err;
      }
      for (const e of entries) {
        const child = `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(child);
        else if (e.isFile()) out.push(child);
      }
    };
    await walk(dir);
    return out.sort();
  }

  /** dropHandle forgets the cached read handle of a replaced or removed file. */
  private dropHandle(name: string): void {
    const h = this.handles.get(name);
    if (!h) return;
    this.handles.delete(name);
    void h.then((f) => f.close()).catch(() => undefined);
  }

  async remove(name: string, opts: WriteOptions = {}): Promise<void> {
    this.dropHandle(name);
    const abs = this.abs(name);
    try {
      await fs.unlink(abs);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    if (opts.durable ?? true) await fsyncDir(path.dirname(abs));
  }

  async cleanTemp(): Promise<number> {
    const tmpDir = path.join(this.location, TMP_DIR);
    let names: string[];
    try {
      names = await fs.readdir(tmpDir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return 0;
      throw err;
    }
    let removed = 0;
    for (const n of names) {
      const [pid, start] = n.split('-');
      if (pid !== undefined && start !== undefined && /^[0-9]+$/.test(pid) && isAlive(Number(pid), start)) continue;
      await fs.rm(path.join(tmpDir, n), { force: true, recursive: true });
      removed++;
    }
    if (removed) await fsyncDir(tmpDir);
    return removed;
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((h) => h.then((f) => f.close()).catch(() => undefined)));
  }
}
