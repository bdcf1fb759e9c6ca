/**
 * Tree blobs: encode/decode round trips every field (raw-byte names and
 * targets included), and decodeTree refuses, as corruption, every name or
 * structure that could make a restore escape its target or be ambiguous.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../core/errors.js';
import { hashHex } from './hash.js';
import { encodeSnapshotRecord, decodeSnapshotRecord, type NewSnapshotRecord } from './snapshot-record.js';
import {
  type TreeNode,
  compareNames,
  decodeCanonical,
  decodeTree,
  decodeTreeJson,
  encodeTree,
  isSafeName,
  keptEncoding,
  nodeToJson,
  sameNode,
  sameNodes,
} from './tree.js';

const H1 = hashHex(Buffer.from('one'));
const H2 = hashHex(Buffer.from('two'));

function base(name: string | Buffer, type: TreeNode['type']): TreeNode {
  return {
    name: typeof name === 'string' ? Buffer.from(name) : name,
    type,
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    mtimeNs: 1_700_000_000_123_456_789n,
    ctimeNs: 1_700_000_001_000_000_001n,
    ino: 12345n,
    nlink: 1,
    size: 0,
  };
}

const fileNode = (name: string | Buffer, extra: Partial<TreeNode> = {}): TreeNode => ({
  ...base(name, 'file'),
  size: 30,
  content: [
    { id: H1, length: 10 },
    { id: null, length: 15 },
    { id: H2, length: 5 },
  ],
  ...extra,
});
const dirNode = (name: string | Buffer, subtree = H1): TreeNode => ({ ...base(name, 'dir'), mode: 0o755, subtree });
const symlinkNode = (name: string | Buffer, target: Buffer | string): TreeNode => ({
  ...base(name, 'symlink'),
  mode: 0o777,
  target: typeof target === 'string' ? Buffer.from(target) : target,
});

/** A tree buffer from raw JSON nodes, bypassing encodeTree's assumptions. */
const rawTree = (nodes: unknown[], v: unknown = 1): Buffer => Buffer.from(JSON.stringify({ v, nodes }));

function expectCorrupt(buf: Buffer): CorruptionError {
  let caught: unknown;
  try {
    decodeTree(buf, 'tree under test');
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CorruptionError);
  expect((caught as CorruptionError).code).toBe('REPO_CORRUPT');
  return caught as CorruptionError;
}

/** A valid JSON node with some fields replaced. */
const jsonNode = (n: TreeNode, patch: Record<string, unknown> = {}): Record<string, unknown> => {
  const o = { ...nodeToJson(n), ...patch };
  for (const [k, v] of Object.entries(o)) if (v === undefined) delete o[k];
  return o;
};

describe('tree ids', () => {
  it('are the same as the format has always given (new snapshots dedup against existing repositories)', () => {
    const nodes: TreeNode[] = [
      {
        ...base('a.txt', 'file'),
        size: 25,
        content: [
          { id: H1, length: 10 },
          { id: null, length: 15 },
        ],
      },
      dirNode('dir'),
      symlinkNode('link', 'a.txt'),
      { ...base('x', 'file'), size: 0, content: [], nlink: 2, linkGroup: '1:2', xattrs: [[Buffer.from('user.k'), Buffer.from('v')]] },
    ];
    expect(hashHex(encodeTree(nodes))).toBe('c72cd5b4976fdc19cdd1a703dfe6a5d007eb7c48edab1ffa626fe06a1f762a8e');
  });
});

describe('compareNames', () => {
  it('orders names as Buffer.compare does: bytes unsigned, a prefix first', () => {
    const byte = fc.constantFrom(0x00, 0x01, 0x41, 0x61, 0x7f, 0x80, 0xc3, 0xff);
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 6 }), fc.array(byte, { maxLength: 6 }), (x, y) => {
        const [a, b] = [Buffer.from(x), Buffer.from(y)];
        expect(Math.sign(compareNames(a, b))).toBe(Buffer.compare(a, b));
        expect(Math.sign(compareNames(b, a))).toBe(Buffer.compare(b, a));
      }),
      { numRuns: 3000 },
    );
    expect(compareNames(Buffer.alloc(255, 0x61), Buffer.alloc(254, 0x61))).toBeGreaterThan(0);
  });
});

describe('encodeTree / decodeTree round trip', () => {
  it('keeps every field of every node type', () => {
    const nonUtf8Name = Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x80]);
    const nodes: TreeNode[] = [
      fileNode('a-file', {
        xattrs: [
          [Buffer.from('trusted.x'), Buffer.from([0, 1, 2, 255])],
          [Buffer.from('user.empty'), Buffer.alloc(0)],
          [Buffer.from([0x75, 0x73, 0x65, 0x72, 0x2e, 0xff]), Buffer.from('v')],
        ],
        linkGroup: '64769:12345',
        nlink: 3,
        mode: 0o4755,
      }),
      { ...base('blk', 'blockdev'), rdevMajor: 8, rdevMinor: 1 },
      { ...base('chr', 'chardev'), rdevMajor: 4095, rdevMinor: 0xfffff },
      dirNode('dir', H2),
      { ...fileNode('empty'), size: 0, content: [] },
      { ...base('fifo', 'fifo'), mode: 0o1600 },
      { ...base('sock', 'socket') },
      symlinkNode('symlink', Buffer.from([0x2f, 0x65, 0x74, 0x63, 0xc3, 0x28])),
      { ...symlinkNode(Buffer.from('z\n\t "quoted"'), '../../..'), mtimeNs: -1_234_567_890n, ctimeNs: 0n },
      fileNode(nonUtf8Name, { mode: 0o000, uid: 0xffffffff, gid: 0, size: 15, content: [{ id: null, length: 15 }] }),
      fileNode(Buffer.alloc(255, 0xe9), { mode: 0o7777, size: 5, content: [{ id: H1, length: 5 }] }),
    ].sort((a, b) => Buffer.compare(a.name, b.name));
    const decoded = decodeTree(encodeTree(nodes), 'round trip');
    expect(decoded).toEqual(nodes);
    // Raw bytes survive exactly, even where they are not UTF-8.
    expect(decoded.find((n) => n.name.equals(nonUtf8Name))).toBeDefined();
    expect(decoded.find((n) => n.type === 'symlink' && n.name.toString() === 'symlink')!.target).toEqual(
      Buffer.from([0x2f, 0x65, 0x74, 0x63, 0xc3, 0x28]),
    );
    // Encoding is deterministic: the same listing is the same blob (dedup of trees).
    expect(encodeTree(decoded).equals(encodeTree(nodes))).toBe(true);
  });

  it('round-trips random names, targets and attributes', () => {
    const nameArb = fc
      .uint8Array({ minLength: 1, maxLength: 255 })
      .map((a) => Buffer.from(a.map((b) => (b === 0 || b === 0x2f ? 0x41 : b))))
      .filter(isSafeName);
    const targetArb = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a.map((b) => (b === 0 ? 0x2e : b))));
    const nodeArb = fc.record({
      name: nameArb,
      kind: fc.constantFrom('file', 'dir', 'symlink', 'fifo', 'chardev'),
      mode: fc.integer({ min: 0, max: 0o7777 }),
      uid: fc.nat({ max: 0xffffffff }),
      gid: fc.nat({ max: 0xffffffff }),
      mtimeNs: fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }),
      target: targetArb,
      sizes: fc.array(fc.integer({ min: 1, max: 1 << 30 }), { maxLength: 5 }),
      xattrs: fc.array(fc.tuple(nameArb, fc.uint8Array({ maxLength: 40 })), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(nodeArb, { selector: (n) => n.name.toString('hex'), maxLength: 12 }), (specs) => {
        const nodes: TreeNode[] = specs
          .map((s): TreeNode => {
            const common = {
              ...base(s.name, s.kind as TreeNode['type']),
              mode: s.mode,
              uid: s.uid,
              gid: s.gid,
              mtimeNs: s.mtimeNs,
              ...(s.xattrs.length ? { xattrs: s.xattrs.map(([k, v]) => [k, Buffer.from(v)] as const) } : {}),
            };
            switch (s.kind) {
              case 'file':
                return {
                  ...common,
                  size: s.sizes.reduce((a, b) => a + b, 0),
                  content: s.sizes.map((length, i) => ({ id: i % 2 ? null : hashHex(Buffer.from([i])), length })),
                };
              case 'dir':
                return { ...common, subtree: H2 };
              case 'symlink':
                return { ...common, target: s.target };
              case 'chardev':
                return { ...common, rdevMajor: s.uid >>> 20, rdevMinor: s.gid >>> 12 };
              default:
                return common;
            }
          })
          .sort((a, b) => Buffer.compare(a.name, b.name));
        expect(decodeTree(encodeTree(nodes), 'random')).toEqual(nodes);
      }),
      { numRuns: 100 },
    );
  });

  it('sameNode is true exactly when two nodes encode to the same bytes', () => {
    const variants: TreeNode[] = [
      fileNode('a'),
      fileNode('b'),
      fileNode(Buffer.from([0xff, 0x41])),
      fileNode('a', { mode: 0o600 }),
      fileNode('a', { uid: 0 }),
      fileNode('a', { gid: 0 }),
      fileNode('a', { mtimeNs: 1n }),
      fileNode('a', { ctimeNs: 1n }),
      fileNode('a', { ino: 1n }),
      fileNode('a', { nlink: 2 }),
      fileNode('a', { nlink: 2, linkGroup: '1:2' }),
      fileNode('a', { size: 31, content: [{ id: H1, length: 31 }] }),
      fileNode('a', { size: 30, content: [{ id: H2, length: 30 }] }),
      fileNode('a', { size: 30, content: [{ id: null, length: 30 }] }),
      fileNode('a', {
        size: 30,
        content: [
          { id: H1, length: 10 },
          { id: null, length: 20 },
        ],
      }),
      fileNode('a', { xattrs: [] }),
      fileNode('a', { xattrs: [[Buffer.from('user.k'), Buffer.from('v')]] }),
      fileNode('a', { xattrs: [[Buffer.from('user.k'), Buffer.from('w')]] }),
      fileNode('a', { xattrs: [[Buffer.from('user.j'), Buffer.from('v')]] }),
      { ...base('a', 'dir'), subtree: H1 },
      { ...base('a', 'dir'), subtree: H2 },
      { ...base('a', 'symlink'), target: Buffer.from('x') },
      { ...base('a', 'symlink'), target: Buffer.from('y') },
      { ...base('a', 'symlink'), target: Buffer.from([0xc3, 0x28]) },
      base('a', 'fifo'),
      { ...base('a', 'chardev'), rdevMajor: 1, rdevMinor: 3 },
      { ...base('a', 'chardev'), rdevMajor: 1, rdevMinor: 5 },
      { ...base('a', 'chardev'), rdevMajor: 4, rdevMinor: 3 },
      { ...base('a', 'blockdev'), rdevMajor: 1, rdevMinor: 3 },
    ];
    // Copies made the way the archiver makes them (spread, fresh Buffers).
    const copies = variants.map((n) => ({ ...n, name: Buffer.from(n.name), ...(n.target ? { target: Buffer.from(n.target) } : {}) }));
    for (const a of variants) {
      for (const b of copies) {
        const same = encodeTree([a]).equals(encodeTree([b]));
        expect(sameNode(a, b), `${JSON.stringify(nodeToJson(a))} vs ${JSON.stringify(nodeToJson(b))}`).toBe(same);
      }
    }
    expect(sameNodes(variants.slice(0, 3), copies.slice(0, 3))).toBe(true);
    expect(sameNodes(variants.slice(0, 3), copies.slice(0, 2))).toBe(false);
    expect(sameNodes(variants.slice(0, 2), [copies[0]!, copies[2]!])).toBe(false);
  });

  it('accepts a name of exactly 255 bytes and an empty tree', () => {
    expect(decodeTree(encodeTree([fileNode('x'.repeat(255))]), 't')).toHaveLength(1);
    expect(decodeTree(encodeTree([]), 't')).toEqual([]);
  });
});

/** What the general decoder makes of `buf`: its nodes, or the fact that it refuses it. */
function general(buf: Buffer): TreeNode[] | 'refused' {
  try {
    return decodeTreeJson(buf, 'general');
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptionError);
    return 'refused';
  }
}

describe('decodeCanonical: encodeTree layout read from the bytes', () => {
  /** One node of each kind the fast reader takes, hostile names included. */
  const kinds = (): TreeNode[] =>
    [
      fileNode('hard-1', { nlink: 2, linkGroup: '64769:12345' }),
      fileNode('hard-2', { nlink: 2, linkGroup: '64769:12345' }),
      { ...fileNode('empty'), size: 0, content: [] },
      fileNode('sparse', { size: 1 << 30, content: [{ id: null, length: 1 << 30 }] }),
      dirNode('dir', H2),
      symlinkNode('link', '../../etc/passwd'),
      symlinkNode('link-raw', Buffer.from([0x2f, 0x65, 0xc3, 0x28, 0xff])),
      { ...base('blk', 'blockdev'), rdevMajor: 8, rdevMinor: 1 },
      { ...base('chr', 'chardev'), rdevMajor: 0xffffffff, rdevMinor: 0 },
      { ...base('fifo', 'fifo'), mode: 0o1600, mtimeNs: -1_234_567_890n, ctimeNs: 0n, ino: 0n },
      { ...base('sock', 'socket') },
      fileNode(Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x80])), // not UTF-8: nameB64
      fileNode('日本語-ünïcödé-😀'), // UTF-8, written as is
      fileNode(Buffer.alloc(255, 0x61), { mode: 0o7777, uid: 0xffffffff, gid: 0xffffffff }),
    ].sort((a, b) => Buffer.compare(a.name, b.name));

  it('reads every kind of node as the general decoder does, and a directory of 10,000 entries', () => {
    const nodes = kinds();
    const buf = encodeTree(nodes);
    expect(decodeCanonical(buf)).toEqual(nodes);
    expect(decodeCanonical(buf)).toEqual(decodeTreeJson(buf, 'general'));
    expect(decodeCanonical(encodeTree([]))).toEqual([]);

    const big = Array.from({ length: 10_000 }, (_, i) =>
      fileNode(`entry-${String(i).padStart(7, '0')}.json`, { ino: BigInt(i), mtimeNs: 1_764_140_000_123_456_789n + BigInt(i) }),
    );
    const bigBuf = encodeTree(big);
    const fast = decodeCanonical(bigBuf);
    expect(fast).not.toBeNull();
    expect(fast).toEqual(decodeTreeJson(bigBuf, 'general'));
  });

  it('leaves other layouts to the general decoder, which decodeTree then uses', () => {
    const file = jsonNode(fileNode('a'));
    const fifo = jsonNode(base('f', 'fifo'));
    const cases: Buffer[] = [
      rawTree([{ ...file, xattrs: [['dXNlci54', 'dg==']] }]), // xattrs
      rawTree([jsonNode(fileNode('a "quoted"\tname'))]), // escapes
      Buffer.from(JSON.stringify({ v: 1, nodes: [file] }, null, 1)), // spaces
      Buffer.from(`{"nodes":[${JSON.stringify(file)}],"v":1}`), // another key order
      rawTree([{ type: file.type, ...file }]),
      Buffer.from(JSON.stringify({ v: 1, nodes: [file] }).replace('"mode":420', '"mode":4.2e2')), // valid JSON, the same number
      Buffer.from(JSON.stringify({ v: 1, nodes: [file] }).replace('"uid":1000', '"uid":1000.0')),
      rawTree([{ ...fifo, subtree: H1 }]), // a field another type uses: ignored by the general decoder
      rawTree([{ ...fifo, linkGroup: 'x' }]),
      rawTree([{ ...fifo, target: 'x' }]),
      rawTree([{ ...fifo, content: [] }]),
      rawTree([{ ...fifo, unknown: 1 }]),
      rawTree([{ ...fifo, size: 1e15 }]), // 16 digits: more than the fast reader takes
    ];
    for (const buf of cases) {
      expect(decodeCanonical(buf), buf.toString()).toBeNull();
      const expected = general(buf);
      expect(expected, buf.toString()).not.toBe('refused');
      expect(decodeTree(buf, 'x')).toEqual(expected);
    }
  });

  it('accepts nothing the general decoder refuses, and agrees with it on what both accept (mutated trees)', () => {
    const seeds = [encodeTree(kinds()), encodeTree([fileNode('a'), dirNode('b'), symlinkNode('c', 'd')])];
    const bytes = [...'0123456789"\\,:[]{}.eE-+ anulltrue', '\u0000', '\u001f'].map((c) => c.charCodeAt(0)).concat([0x80, 0xc3, 0xff]);
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
          const fast = decodeCanonical(buf);
          if (fast === null) return;
          accepted++;
          expect(general(buf)).toEqual(fast);
          // Encoded again (copying the text decoded nodes kept), a tree is what encoding copies of its nodes gives.
          expect(encodeTree(fast).toString('latin1')).toBe(encodeTree(fast.map((n) => ({ ...n }))).toString('latin1'));
        },
      ),
      { numRuns: 5000 },
    );
    // Many mutations keep a valid tree (a digit for a digit, a byte of a name): the comparison above ran.
    expect(accepted).toBeGreaterThan(100);
  });

  it('encodes a decoded node by copying the text it was read from, exactly when that is its encoding', () => {
    const nodes = kinds();
    const buf = encodeTree(nodes);
    const decoded = decodeCanonical(buf)!;
    expect(encodeTree(decoded).equals(buf)).toBe(true);
    const kept = new Map(decoded.map((n) => [n.name.toString('latin1'), keptEncoding(n)]));
    for (const n of decoded) {
      const ascii = n.name.every((c) => c < 0x80) && (n.target ?? Buffer.alloc(0)).every((c) => c < 0x80);
      // ASCII strings only: a UTF-8 name is decoded and encoded again, and one that is not UTF-8 is base64.
      expect(kept.get(n.name.toString('latin1')), n.name.toString()).toBe(ascii ? JSON.stringify(nodeToJson(n)) : null);
    }
    expect([...kept.values()].filter((t) => t !== null).length).toBe(nodes.length - 3);
    // The text is a copy: the buffer decoded from may be reused.
    buf.fill(0x20);
    expect(encodeTree(decoded).equals(encodeTree(nodes))).toBe(true);
    expect(decoded.map((n) => [n.name, n.target])).toEqual(nodes.map((n) => [n.name, n.target]));
    // A changed node is a new object, which has no text of its own.
    const changed = { ...decoded[0]!, nlink: 7 };
    expect(keptEncoding(changed)).toBeNull();
    expect(decodeTree(encodeTree([changed, ...decoded.slice(1)]), 'x')[0]!.nlink).toBe(7);
    expect(keptEncoding(nodes[0]!)).toBeNull();
  });

  it('encodes again, as encodeTree writes them, times and inodes read with leading zeros and names read as base64', () => {
    const node = JSON.stringify(jsonNode(fileNode('a')));
    const variants = [
      node.replace('"mtime":"', '"mtime":"00'),
      node.replace(/"ino":"[0-9]+"/, '"ino":"-0"'),
      node.replace(/"ctime":"[0-9]+"/, '"ctime":"-007"'),
      node.replace('{"name":"a"', `{"nameB64":"${Buffer.from('a').toString('base64')}"`),
    ];
    for (const text of variants) {
      const buf = Buffer.from(`{"v":1,"nodes":[${text}]}`);
      const decoded = decodeCanonical(buf);
      expect(decoded, text).not.toBeNull();
      expect(keptEncoding(decoded![0]!), text).toBeNull();
      const again = encodeTree(decoded!);
      expect(again.equals(buf)).toBe(false);
      expect(again.equals(encodeTree([{ ...decoded![0]! }]))).toBe(true);
    }
  });

  it('reads times and inodes of every length from 1 to 25 digits, signed, as BigInt does', () => {
    const node = JSON.stringify(jsonNode(fileNode('a')));
    const texts: string[] = ['0', '-0', '9', '-1', '007', '-007'];
    let seed = 12345;
    const digit = (): string => String((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 10);
    for (let n = 1; n <= 25; n++) {
      for (let k = 0; k < 20; k++) texts.push(Array.from({ length: n }, digit).join(''));
      // Around the places the reader splits at: 15 digits, 2^53, 2^63, 2^64, 19 digits.
      texts.push('9'.repeat(n), `1${'0'.repeat(n - 1)}`, `-${'9'.repeat(n)}`);
    }
    texts.push(
      String(2n ** 53n),
      String(2n ** 53n + 1n),
      String(2n ** 63n - 1n),
      String(2n ** 63n),
      String(2n ** 64n - 1n),
      String(2n ** 64n),
    );
    for (const t of texts) {
      const text = node
        .replace(/"mtime":"[0-9]+"/, `"mtime":"${t}"`)
        .replace(/"ino":"[0-9]+"/, `"ino":"${t.split('').reverse().join('').replace(/-$/, '')}"`);
      const buf = Buffer.from(`{"v":1,"nodes":[${text}]}`);
      const fast = decodeCanonical(buf);
      expect(fast, t).not.toBeNull();
      expect(fast![0]!.mtimeNs, t).toBe(BigInt(t));
      expect(fast, t).toEqual(decodeTreeJson(buf, 'general'));
    }
    // 26 digits, a sign alone, a plus sign, a non-digit: the general decoder decides (and refuses).
    for (const t of ['1'.repeat(26), '-', '+5', '1a', '']) {
      const buf = Buffer.from(`{"v":1,"nodes":[${node.replace(/"mtime":"[0-9]+"/, `"mtime":"${t}"`)}]}`);
      expect(decodeCanonical(buf), t).toBeNull();
      expect(() => decodeTree(buf, 'x'), t).toThrow(/bad mtime/);
    }
  });

  it('reads a name that is invalid UTF-8 inside the JSON string as JSON.parse does (U+FFFD)', () => {
    const buf = Buffer.concat([
      Buffer.from('{"v":1,"nodes":[{"name":"a'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from(JSON.stringify(jsonNode(base('x', 'fifo'))).slice('{"name":"x'.length)),
      Buffer.from(']}'),
    ]);
    const fast = decodeCanonical(buf);
    expect(fast).not.toBeNull();
    expect(fast![0]!.name).toEqual(Buffer.from('a\uFFFD(\uFFFD'));
    expect(fast).toEqual(decodeTreeJson(buf, 'general'));
  });
});

describe('decodeTree rejects, as CorruptionError', () => {
  const badNames: Array<[string, Record<string, unknown>]> = [
    ['"."', { name: '.' }],
    ['".."', { name: '..' }],
    ['".." as base64', { name: undefined, nameB64: Buffer.from('..').toString('base64') }],
    ['"." as base64', { name: undefined, nameB64: Buffer.from('.').toString('base64') }],
    ['a name with "/"', { name: 'a/b' }],
    ['"/" alone', { name: '/' }],
    ['a leading "/"', { name: '/etc' }],
    ['"../x"', { name: '../x' }],
    ['a name with "/" as base64', { name: undefined, nameB64: Buffer.from([0xff, 0x2f, 0xfe]).toString('base64') }],
    ['a name with NUL', { name: 'a\u0000b' }],
    ['a name with NUL as base64', { name: undefined, nameB64: Buffer.from([0x61, 0, 0x62]).toString('base64') }],
    ['an empty name', { name: '' }],
    ['an empty base64 name', { name: undefined, nameB64: '' }],
    ['a missing name', { name: undefined }],
    ['a name that is not a string', { name: 42 }],
    ['a 256-byte name', { name: 'n'.repeat(256) }],
    ['a 256-byte name as base64', { name: undefined, nameB64: Buffer.alloc(256, 0xff).toString('base64') }],
    ['a 256-byte name of 128 two-byte characters', { name: 'é'.repeat(128) }],
  ];
  for (const [what, patch] of badNames) {
    it(`${what}`, () => {
      for (const n of [fileNode('x'), dirNode('x'), symlinkNode('x', 't')]) {
        const err = expectCorrupt(rawTree([jsonNode(n, patch)]));
        expect(err.message).toMatch(/tree under test/);
      }
    });
  }

  it('duplicate names (same type and different types)', () => {
    expectCorrupt(rawTree([jsonNode(fileNode('x')), jsonNode(fileNode('x'))]));
    expectCorrupt(rawTree([jsonNode(symlinkNode('x', '/tmp/outside')), jsonNode(dirNode('x'))]));
    expectCorrupt(rawTree([jsonNode(dirNode('x')), jsonNode(symlinkNode('x', '/tmp/outside'))]));
    // Same bytes spelled once as a string and once as base64.
    expectCorrupt(
      rawTree([jsonNode(fileNode('x')), jsonNode(fileNode('x'), { name: undefined, nameB64: Buffer.from('x').toString('base64') })]),
    );
  });

  it('unsorted names', () => {
    expectCorrupt(rawTree([jsonNode(fileNode('b')), jsonNode(fileNode('a'))]));
    expectCorrupt(rawTree([jsonNode(fileNode('a')), jsonNode(fileNode('c')), jsonNode(fileNode('b'))]));
    // Byte order, not locale order: "B" (0x42) sorts before "a" (0x61), 0xff after everything.
    expectCorrupt(rawTree([jsonNode(fileNode('a')), jsonNode(fileNode('B'))]));
    expectCorrupt(rawTree([jsonNode(fileNode(Buffer.from([0xff]))), jsonNode(fileNode('z'))]));
    expect(
      decodeTree(rawTree([jsonNode(fileNode('B')), jsonNode(fileNode('a')), jsonNode(fileNode(Buffer.from([0xff])))]), 't'),
    ).toHaveLength(3);
  });

  it('bad hashes in content and subtrees', () => {
    const badIds = ['', 'xyz', H1.slice(1), `${H1}0`, H1.toUpperCase(), `${H1.slice(0, 63)}g`, 42, true];
    for (const id of badIds) {
      expectCorrupt(rawTree([jsonNode(dirNode('d'), { subtree: id })]));
      expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 10, content: [[id, 10]] })]));
    }
    expectCorrupt(rawTree([jsonNode(dirNode('d'), { subtree: undefined })]));
    expectCorrupt(rawTree([jsonNode(dirNode('d'), { subtree: null })]));
  });

  it('content lengths that do not sum to the size, and malformed content', () => {
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 31 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 29 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 0 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 1, content: [] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 0, content: [[H1, 0]] })]));
    expectCorrupt(
      rawTree([
        jsonNode(fileNode('f'), {
          size: 10,
          content: [
            [H1, -5],
            [H2, 15],
          ],
        }),
      ]),
    );
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 10, content: [[H1, 10.5]] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 10, content: [[H1, '10']] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 10, content: [[H1, 10, 0]] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: 10, content: [H1] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { content: undefined })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { size: -1, content: [] })]));
  });

  it('bad symlink targets, device numbers, types, modes and owners', () => {
    expectCorrupt(rawTree([jsonNode(symlinkNode('l', 'x'), { target: '' })]));
    expectCorrupt(rawTree([jsonNode(symlinkNode('l', 'x'), { target: undefined })]));
    expectCorrupt(rawTree([jsonNode(symlinkNode('l', 'x'), { target: 'a\u0000b' })]));
    expectCorrupt(rawTree([jsonNode(symlinkNode('l', 'x'), { target: 'x'.repeat(4096) })]));
    expect(decodeTree(rawTree([jsonNode(symlinkNode('l', 'x'.repeat(4095)))]), 't')[0]!.target!.length).toBe(4095);
    const chr = { ...base('c', 'chardev'), rdevMajor: 1, rdevMinor: 3 };
    expectCorrupt(rawTree([jsonNode(chr, { rdev: undefined })]));
    expectCorrupt(rawTree([jsonNode(chr, { rdev: [1] })]));
    expectCorrupt(rawTree([jsonNode(chr, { rdev: [-1, 3] })]));
    expectCorrupt(rawTree([jsonNode(chr, { rdev: [1, 2 ** 32] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { type: 'hardlink' })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { type: undefined })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { mode: 0o10000 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { mode: -1 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { mode: '644' })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { uid: -1 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { gid: 2 ** 32 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { mtime: 12 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { mtime: '1e9' })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { ctime: undefined })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { ino: 'abc' })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { nlink: 1.5 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { linkGroup: 7 })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { linkGroup: 'g'.repeat(65) })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { xattrs: 'user.a' })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { xattrs: [['', 'dg==']] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { xattrs: [[Buffer.from('a\u0000b').toString('base64'), '']] })]));
    expectCorrupt(rawTree([jsonNode(fileNode('f'), { xattrs: [[Buffer.alloc(256, 0x61).toString('base64'), '']] })]));
  });

  it('malformed tree documents', () => {
    expectCorrupt(Buffer.from('not json'));
    expectCorrupt(Buffer.from(''));
    expectCorrupt(Buffer.from('null'));
    expectCorrupt(Buffer.from('[]'));
    expectCorrupt(rawTree([], 2));
    expectCorrupt(Buffer.from(JSON.stringify({ v: 1, nodes: {} })));
    expectCorrupt(Buffer.from(JSON.stringify({ v: 1 })));
    expectCorrupt(rawTree([null]));
    expectCorrupt(rawTree([[1, 2]]));
    expectCorrupt(rawTree(['file']));
    // A truncated blob.
    const good = encodeTree([fileNode('a'), fileNode('b')]);
    expectCorrupt(good.subarray(0, good.length - 3));
  });
});

describe('snapshot record root', () => {
  const record = (root: TreeNode): NewSnapshotRecord => ({
    time: new Date(0).toISOString(),
    label: 'x',
    tags: ['t'],
    parent: null,
    hostname: 'h',
    sources: ['/src'],
    root,
    scanStartNs: 5n,
    stats: {
      files: 1,
      dirs: 1,
      symlinks: 0,
      specials: 0,
      skipped: 0,
      bytes: 0,
      bytesRead: 0,
      filesReused: 0,
      newBlobs: 0,
      newBytes: 0,
      storedBytes: 0,
      durationMs: 0,
    },
    skippedEntries: [],
  });

  it('round-trips, with an empty root name', () => {
    const r = record(dirNode(Buffer.alloc(0)));
    const { id, bytes } = encodeSnapshotRecord(r);
    const back = decodeSnapshotRecord(id, bytes);
    expect(back.id).toBe(id);
    expect(back.root).toEqual(r.root);
    expect(back.scanStartNs).toBe(5n);
  });

  it('rejects a root that is not a directory, has an unsafe name, or a record that does not match its id', () => {
    for (const root of [symlinkNode(Buffer.alloc(0), '/etc'), { ...fileNode(Buffer.alloc(0)) }, dirNode('..'), dirNode('a/b')]) {
      const { id, bytes } = encodeSnapshotRecord(record(root));
      expect(() => decodeSnapshotRecord(id, bytes)).toThrow(CorruptionError);
    }
    const { id, bytes } = encodeSnapshotRecord(record(dirNode(Buffer.alloc(0))));
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 2] = tampered[tampered.length - 2]! ^ 1;
    expect(() => decodeSnapshotRecord(id, tampered)).toThrow(CorruptionError);
  });
});
