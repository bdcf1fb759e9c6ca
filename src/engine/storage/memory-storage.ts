/**
 * memory-storage: a Storage held in memory, for tests. `failWrites` lets a
 * test make the n-th write fail, to check that a failed operation leaves the
 * repository as it was.
 */
import { CorruptionError } from '../../core/errors.js';
import { notFound, type Storage } from './storage.js';

export class MemoryStorage implements Storage {
  readonly location = 'memory:';
  readonly files = new Map<string, Buffer>();
  /** When set, the write with this 1-based number (and every later one) fails. */
  failWritesFrom: number | null = null;
  writes = 0;

  async write(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    this.writes++;
    if (this.failWritesFrom !== null && this.writes >= this.failWritesFrom) {
      const err: NodeJS.ErrnoException = new Error(`ENOSPC: injected failure writing ${name}`);
      err.code = 'ENOSPC';
      throw err;
    }
    this.files.set(name, Buffer.concat(Buffer.isBuffer(data) ? [data] : [...data]));
  }

  async read(name: string): Promise<Buffer> {
    const b = this.files.get(name);
    if (!b) throw notFound(name);
    return Buffer.from(b);
  }

  async readAt(name: string, offset: number, length: number): Promise<Buffer> {
    const b = this.files.get(name);
    if (!b) throw notFound(name);
    if (offset + length > b.length) {
      throw new CorruptionError(`${name} is shorter than expected (wanted ${length} bytes at ${offset})`, { file: name });
    }
    return Buffer.from(b.subarray(offset, offset + length));
  }

  async size(name: string): Promise<number> {
    const b = this.files.get(name);
    if (!b) throw notFound(name);
    return b.length;
  }

  async list(dir: string): Promise<string[]> {
    const prefix = `${dir}/`;
    return [...this.files.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async remove(name: string): Promise<void> {
    this.files.delete(name);
  }

  async cleanTemp(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}
