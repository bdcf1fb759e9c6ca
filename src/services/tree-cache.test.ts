import { describe, expect, it } from 'vitest';
import type { TreeNode } from '../engine/index.js';
import { TreeCache } from './tree-cache.js';

const nodes = (n: number): TreeNode[] =>
  Array.from(
    { length: n },
    (_, i) => ({ name: Buffer.from(`n${i}`), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 0 }) as TreeNode,
  );

describe('TreeCache', () => {
  it('reads a tree once, then answers from memory, frozen', async () => {
    const cache = new TreeCache();
    let reads = 0;
    const read = async () => {
      reads++;
      return nodes(3);
    };
    const a = await cache.get('/r', 't1', read);
    const b = await cache.get('/r', 't1', read);
    expect(reads).toBe(1);
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    // The same id in another repository is another tree.
    await cache.get('/other', 't1', read);
    expect(reads).toBe(2);
  });

  it('decodes once for concurrent requests of the same tree', async () => {
    const cache = new TreeCache();
    let reads = 0;
    let finish!: (v: TreeNode[]) => void;
    const read = () => {
      reads++;
      return new Promise<TreeNode[]>((r) => (finish = r));
    };
    const both = Promise.all([cache.get('/r', 't', read), cache.get('/r', 't', read)]);
    finish(nodes(2));
    const [x, y] = await both;
    expect(reads).toBe(1);
    expect(x).toBe(y);
  });

  it('keeps at most maxEntries entries, dropping the least recently used tree first', async () => {
    const cache = new TreeCache({ maxEntries: 10 });
    const reads: string[] = [];
    const read = (n: number) => async (id: string) => {
      reads.push(id);
      return nodes(n);
    };
    await cache.get('/r', 'a', read(4));
    await cache.get('/r', 'b', read(4));
    await cache.get('/r', 'a', read(4)); // a is now the most recent
    await cache.get('/r', 'c', read(4)); // 12 > 10: b goes
    expect(cache.size).toBe(8);
    await cache.get('/r', 'a', read(4));
    await cache.get('/r', 'b', read(4));
    expect(reads).toEqual(['a', 'b', 'c', 'b']);
    // A tree larger than the whole cache is served but not kept.
    await cache.get('/r', 'huge', read(11));
    await cache.get('/r', 'huge', read(11));
    expect(reads.filter((r) => r === 'huge')).toHaveLength(2);
    expect(cache.size).toBeLessThanOrEqual(10);
  });

  it('does not keep a failed read, and forgets one repository', async () => {
    const cache = new TreeCache();
    await expect(
      cache.get('/r', 'bad', async () => {
        throw new Error('corrupt');
      }),
    ).rejects.toThrow('corrupt');
    expect(cache.size).toBe(0);
    await cache.get('/r', 'x', async () => nodes(2));
    await cache.get('/s', 'x', async () => nodes(3));
    cache.forget('/r');
    expect(cache.size).toBe(3);
  });
});
