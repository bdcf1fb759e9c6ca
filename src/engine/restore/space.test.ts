/**
 * restoreFootprint: what a restore will write, counted from the trees alone.
 */
import { describe, expect, it } from 'vitest';
import type { ContentRef, NodeType, TreeNode } from '../format/tree.js';
import { restoreFootprint, type TreeSource } from './space.js';

const node = (name: string, type: NodeType, extra: Partial<TreeNode> = {}): TreeNode => ({
  name: Buffer.from(name),
  type,
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtimeNs: 0n,
  ctimeNs: 0n,
  ino: 0n,
  nlink: 1,
  size: 0,
  ...extra,
});

const file = (name: string, content: ContentRef[], extra: Partial<TreeNode> = {}): TreeNode =>
  node(name, 'file', { content, size: content.reduce((n, c) => n + c.length, 0), ...extra });
const dir = (name: string, subtree: string): TreeNode => node(name, 'dir', { subtree });

/** A tree source over a map, recording what is read; each read takes a turn of the timers. */
class Trees implements TreeSource {
  readonly read: string[] = [];
  constructor(private readonly trees: Map<string, TreeNode[]>) {}

  async readTree(id: string): Promise<readonly TreeNode[]> {
    this.read.push(id);
    await new Promise((r) => setTimeout(r, 1));
    const t = this.trees.get(id);
    if (!t) throw new Error(`no tree ${id}`);
    return t;
  }
}

describe('restoreFootprint', () => {
  it('counts data without holes, a block per entry, hardlinked inodes once and symlink targets', async () => {
    const trees = new Map<string, TreeNode[]>([
      [
        'root',
        [
          file('a', [
            { id: 'x'.repeat(64), length: 5000 }, // two blocks
            { id: null, length: 1 << 20 }, // a hole: nothing
            { id: 'y'.repeat(64), length: 4096 }, // one block
          ]),
          file('b', [{ id: 'z'.repeat(64), length: 10 }], { linkGroup: 'g1', nlink: 2 }),
          file('c', [{ id: 'z'.repeat(64), length: 10 }], { linkGroup: 'g1', nlink: 2 }),
          node('l', 'symlink', { target: Buffer.from('../somewhere') }),
          dir('d', 'sub'),
        ],
      ],
      ['sub', [file('e', [{ id: 'w'.repeat(64), length: 1 }]), dir('f', 'empty')]],
      ['empty', []],
    ]);
    const src = new Trees(trees);
    const got = await restoreFootprint(src, dir('', 'root'));
    // Entries: the root, a, b, c, l, d, e, f (c, the second link of g1, takes
    // its entry but not the data again). Blocks: a 2 + 1, b 1, e 1.
    expect(got).toBe(8 * 4096 + 5 * 4096 + '../somewhere'.length);
    expect(src.read.sort()).toEqual(['empty', 'root', 'sub']);
  });

  it('names the directory whose tree cannot be read', async () => {
    const trees = new Map<string, TreeNode[]>([
      ['root', [dir('fine', 'fine'), dir('ok', 'ok')]],
      ['fine', [file('f', [{ id: 'a'.repeat(64), length: 1 }])]],
      ['ok', [dir('deeper', 'gone')]],
    ]);
    const failures: string[] = [];
    const err = await restoreFootprint(new Trees(trees), dir('', 'root'), (e, at) => {
      failures.push(at.map((b) => b.toString()).join('/'));
      return e;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('no tree gone');
    expect(failures).toEqual(['ok/deeper']);
  });
});
