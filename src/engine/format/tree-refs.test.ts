/**
 * canonicalRefs / treeRefs: gc reads only the ids a tree refers to. They
 * must be exactly the ids of the nodes decodeTree gives, and the lean reader
 * must take exactly the trees the canonical decoder takes (the rest goes to
 * decodeTree, whose error stops gc).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../core/errors.js';
import { hashHex } from './hash.js';
import { type TreeNode, type TreeRefs, canonicalRefs, decodeCanonical, decodeTree, encodeTree, treeRefs } from './tree.js';

const H = (s: string): string => hashHex(Buffer.from(s));

function base(name: string | Buffer, type: TreeNode['type']): TreeNode {
  return {
    name: typeof name === 'string' ? Buffer.from(name) : name,
    type,
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    mtimeNs: 1_700_000_000_123_456_789n,
    ctimeNs: -5n,
    ino: 12345n,
    nlink: 1,
    size: 0,
  };
}

const fileNode = (name: string | Buffer, extra: Partial<TreeNode> = {}): TreeNode => ({
  ...base(name, 'file'),
  size: 30,
  content: [
    { id: H(`${String(name)}-1`), length: 10 },
    { id: null, length: 15 },
    { id: H(`${String(name)}-2`), length: 5 },
  ],
  ...extra,
});

/** One node of each kind, hostile names included, sorted. */
const kinds = (): TreeNode[] =>
  [
    fileNode('hard-1', { nlink: 2, linkGroup: '64769:12345' }),
    fileNode('hard-2', { nlink: 2, linkGroup: '64769:12345' }),
    { ...fileNode('empty'), size: 0, content: [] },
    fileNode('sparse', { size: 1 << 30, content: [{ id: null, length: 1 << 30 }] }),
    { ...base('dir', 'dir'), subtree: H('dir') },
    { ...base('dir2', 'dir'), subtree: H('dir2') },
    { ...base('link', 'symlink'), target: Buffer.from('../../etc/passwd') },
    { ...base('link-raw', 'symlink'), target: Buffer.from([0x2f, 0x65, 0xc3, 0x28, 0xff]) },
    { ...base('blk', 'blockdev'), rdevMajor: 8, rdevMinor: 1 },
    { ...base('fifo', 'fifo'), mtimeNs: -1_234_567_890n, ctimeNs: 0n, ino: 0n },
    { ...base('sock', 'socket') },
    fileNode(Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x80])), // nameB64
    fileNode('日本語-ünïcödé-😀'),
    fileNode(Buffer.alloc(255, 0x61)),
  ].sort((a, b) => Buffer.compare(a.name, b.name));

/** The ids decodeTree's nodes refer to, as treeRefs lists them. */
function refsOf(nodes: readonly TreeNode[]): TreeRefs {
  const refs: TreeRefs = { subtrees: [], data: [] };
  for (const n of nodes) {
    if (n.subtree !== undefined) refs.subtrees.push(n.subtree);
    for (const c of n.content ?? []) if (c.id !== null) refs.data.push(c.id);
  }
  return refs;
}

describe('canonicalRefs', () => {
  it('lists the ids of every kind of node, and of a directory of 10,000 entries, as the full decoder gives them', () => {
    const buf = encodeTree(kinds());
    const refs = canonicalRefs(buf);
    expect(refs).not.toBeNull();
    expect(refs).toEqual(refsOf(decodeTree(buf, 't')));
    expect(refs!.subtrees).toEqual([H('dir'), H('dir2')]);
    expect(canonicalRefs(encodeTree([]))).toEqual({ subtrees: [], data: [] });

    const big = Array.from({ length: 10_000 }, (_, i) =>
      i % 10 === 0 ? { ...base(`e${String(i).padStart(6, '0')}`, 'dir'), subtree: H(`d${i}`) } : fileNode(`e${String(i).padStart(6, '0')}`),
    );
    const bigBuf = encodeTree(big);
    expect(canonicalRefs(bigBuf)).toEqual(refsOf(decodeTree(bigBuf, 't')));
  });

  it('takes exactly the trees decodeCanonical takes, and agrees with it on their ids (mutated trees)', () => {
    const seeds = [encodeTree(kinds()), encodeTree([fileNode('a'), { ...base('b', 'dir'), subtree: H('b') }])];
    const bytes = [...'0123456789abcdef"\\,:[]{}.eE-+ anulltrue/', '\u0000', '\u001f']
      .map((c) => c.charCodeAt(0))
      .concat([0x80, 0xc3, 0xff]);
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.constantFrom('set', 'insert', 'delete'), fc.nat(), fc.constantFrom(...bytes)), { minLength: 1, maxLength: 3 }),
        (seed, edits) => {
          let buf = Buffer.from(seed);
          for (const [op, at, b] of edits) {
            const i = at % buf.length;
            if (op === 'set') buf[i] = b;
            else if (op === 'insert') buf = Buffer.concat([buf.subarray(0, i), Buffer.from([b]), buf.subarray(i)]);
            else buf = Buffer.concat([buf.subarray(0, i), buf.subarray(i + 1)]);
          }
          const full = decodeCanonical(buf);
          const lean = canonicalRefs(buf);
          expect(lean === null).toBe(full === null);
          if (full === null) return;
          accepted++;
          expect(lean).toEqual(refsOf(full));
        },
      ),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('treeRefs', () => {
  it('reads other layouts through decodeTree, and refuses what it refuses', () => {
    const nodes = [fileNode('a'), { ...base('b', 'dir'), subtree: H('b') }];
    const spaced = Buffer.from(JSON.stringify(JSON.parse(encodeTree(nodes).toString()), null, 1));
    expect(canonicalRefs(spaced)).toBeNull();
    expect(treeRefs(spaced, 't')).toEqual(refsOf(nodes));

    const unsafe = Buffer.from(
      encodeTree([fileNode('a')])
        .toString()
        .replace('"name":"a"', '"name":".."'),
    );
    expect(() => treeRefs(unsafe, 't')).toThrow(CorruptionError);
    const unsorted = Buffer.from(
      encodeTree([fileNode('a'), fileNode('b')])
        .toString()
        .replace('"name":"b"', '"name":"a"'),
    );
    expect(() => treeRefs(unsorted, 't')).toThrow(CorruptionError);
  });
});
