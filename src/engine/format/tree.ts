/**
 * tree: the encoding of one directory listing (a "tree" blob) and of its
 * entries ("nodes"). See docs/format.md, "Trees".
 *
 * A tree is JSON: {"v":1,"nodes":[…]} with nodes sorted by the bytes of their
 * names. Names and symlink targets are kept as raw bytes in memory; in JSON a
 * name is a string when it is valid UTF-8 and `nameB64` otherwise.
 *
 * decodeTree is the gate between stored data and the filesystem: it rejects
 * names that could escape a directory (".", "..", "/", NUL, empty), duplicate
 * or unsorted names, and any malformed field, as corruption.
 */
import { CorruptionError } from '../../core/errors.js';
import { isHashHex } from './hash.js';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';

const NODE_TYPES: ReadonlySet<string> = new Set(['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket']);

/**
 * A run of a file's content: a chunk (`id` is the blob id) or a hole
 * (`id` null: zeros that need no storage and are restored as a hole).
 */
export interface ContentRef {
  readonly id: string | null;
  readonly length: number;
}

export interface TreeNode {
  /** Raw name bytes (empty only for a snapshot's root). */
  readonly name: Buffer;
  readonly type: NodeType;
  /** Permission bits, including setuid, setgid and sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  /** ctime, inode and link count serve change detection and hardlinks. */
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly nlink: number;
  /** Logical size in bytes (files); 0 otherwise. */
  readonly size: number;
  /** Files: the content, covering exactly `size` bytes in order. */
  readonly content?: readonly ContentRef[];
  /** Directories: id of the tree blob listing the children. */
  readonly subtree?: string;
  /** Symlinks: the target, verbatim, never followed. */
  readonly target?: Buffer;
  /** Device nodes. */
  readonly rdevMajor?: number;
  readonly rdevMinor?: number;
  /** Extended attributes, sorted by name. */
  readonly xattrs?: ReadonlyArray<readonly [Buffer, Buffer]>;
  /** Files with more than one link: the same value marks the same inode. */
  readonly linkGroup?: string;
}

/* ---- encoding -------------------------------------------------------------- */

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** utf8 returns the bytes as a string when they are valid UTF-8, else null. */
function utf8(b: Buffer): string | null {
  try {
    return utf8Decoder.decode(b);
  } catch {
    return null;
  }
}

function putBytes(o: Record<string, unknown>, key: string, b: Buffer): void {
  const s = utf8(b);
  if (s !== null) o[key] = s;
  else o[`${key}B64`] = b.toString('base64');
}

export function nodeToJson(n: TreeNode): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  putBytes(o, 'name', n.name);
  o.type = n.type;
  o.mode = n.mode;
  o.uid = n.uid;
  o.gid = n.gid;
  o.mtime = n.mtimeNs.toString();
  o.ctime = n.ctimeNs.toString();
  o.ino = n.ino.toString();
  o.nlink = n.nlink;
  o.size = n.size;
  if (n.content) o.content = n.content.map((c) => [c.id, c.length]);
  if (n.subtree !== undefined) o.subtree = n.subtree;
  if (n.target) putBytes(o, 'target', n.target);
  if (n.rdevMajor !== undefined) o.rdev = [n.rdevMajor, n.rdevMinor ?? 0];
  if (n.xattrs?.length) o.xattrs = n.xattrs.map(([k, v]) => [k.toString('base64'), v.toString('base64')]);
  if (n.linkGroup !== undefined) o.linkGroup = n.linkGroup;
  return o;
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.equals(b));
}

function sameXattrs(a: TreeNode['xattrs'], b: TreeNode['xattrs']): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every(([k, v], i) => k.equals(y[i]![0]) && v.equals(y[i]![1]));
}

function sameContent(a: TreeNode['content'], b: TreeNode['content']): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.id !== b[i]!.id || a[i]!.length !== b[i]!.length) return false;
  return true;
}

/**
 * sameNode tells whether two nodes encode to the same bytes: it compares
 * every field nodeToJson writes (a test holds the two together), so a
 * directory whose nodes are all the same as its parent tree's has that
 * tree's id without being encoded and hashed again.
 */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.ino === b.ino &&
    a.nlink === b.nlink &&
    a.size === b.size &&
    a.subtree === b.subtree &&
    a.rdevMajor === b.rdevMajor &&
    (a.rdevMajor === undefined || (a.rdevMinor ?? 0) === (b.rdevMinor ?? 0)) &&
    a.linkGroup === b.linkGroup &&
    a.name.equals(b.name) &&
    sameBytes(a.target, b.target) &&
    sameContent(a.content, b.content) &&
    sameXattrs(a.xattrs, b.xattrs)
  );
}

/** sameNodes tells whether two node lists encode to the same tree. */
export function sameNodes(a: readonly TreeNode[], b: readonly TreeNode[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameNode(a[i]!, b[i]!)) return false;
  return true;
}

/** encodeTree serialises nodes, which must already be sorted by name. */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, nodes: nodes.map(nodeToJson) }));
}

/* ---- decoding and validation ------------------------------------------------ */

/** compareNames orders names by their bytes (the order of nodes in a tree). */
export function compareNames(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/** checkName throws unless `name` is a single, safe path component. */
export function isSafeName(name: Buffer): boolean {
  if (name.length === 0 || name.length > 255) return false;
  if (name.includes(0x2f) || name.includes(0)) return false;
  if (name.length === 1 && name[0] === 0x2e) return false;
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return false;
  return true;
}

function fail(where: string, why: string): never {
  throw new CorruptionError(`${where}: ${why}`, { where });
}

function getBytes(o: Record<string, unknown>, key: string, where: string): Buffer | undefined {
  const s = o[key];
  if (typeof s === 'string') return Buffer.from(s, 'utf8');
  const b64 = o[`${key}B64`];
  if (typeof b64 === 'string') return Buffer.from(b64, 'base64');
  if (s !== undefined || b64 !== undefined) fail(where, `bad ${key}`);
  return undefined;
}

const isUint = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/** bigintField parses a decimal integer string of at most 25 digits (a time or an inode). */
function bigintField(v: unknown, where: string, what: string): bigint {
  if (typeof v !== 'string') return fail(where, `bad ${what}`);
  const n = v.length;
  let i = n > 0 && v.charCodeAt(0) === 45 ? 1 : 0;
  if (n - i < 1 || n - i > 25) return fail(where, `bad ${what}`);
  for (; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return fail(where, `bad ${what}`);
  }
  return BigInt(v);
}

function contentFromJson(raw: unknown, size: number, where: string): ContentRef[] {
  if (!Array.isArray(raw)) return fail(where, 'file without content');
  const out: ContentRef[] = new Array<ContentRef>(raw.length);
  let total = 0;
  for (let i = 0; i < raw.length; i++) {
    const c: unknown = raw[i];
    if (!Array.isArray(c) || c.length !== 2) return fail(where, 'bad content entry');
    const id: unknown = c[0];
    const length: unknown = c[1];
    if (!(id === null || isHashHex(id)) || !isUint(length) || length === 0) return fail(where, 'bad content entry');
    total += length;
    out[i] = { id, length };
  }
  if (total !== size) fail(where, `content covers ${total} bytes, size says ${size}`);
  return out;
}

/**
 * nodeFromJson validates one node. `where` names the tree for messages;
 * `isRoot` allows the empty name of a snapshot's root.
 */
export function nodeFromJson(raw: unknown, where: string, isRoot = false): TreeNode {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(where, 'node is not an object');
  const o = raw as Record<string, unknown>;
  const name = getBytes(o, 'name', where) ?? fail(where, 'node without a name');
  if (!(isRoot && name.length === 0) && !isSafeName(name)) fail(where, `unsafe entry name ${JSON.stringify(name.toString('latin1'))}`);
  const type = o.type;
  if (typeof type !== 'string' || !NODE_TYPES.has(type)) fail(where, `unknown node type ${String(type)}`);
  if (!isUint(o.mode, 0o7777)) fail(where, 'bad mode');
  if (!isUint(o.uid, 0xffffffff) || !isUint(o.gid, 0xffffffff)) fail(where, 'bad owner');
  if (!isUint(o.nlink) || !isUint(o.size)) fail(where, 'bad size or link count');
  const node: {
    -readonly [K in keyof TreeNode]: TreeNode[K];
  } = {
    name,
    type: type as NodeType,
    mode: o.mode as number,
    uid: o.uid as number,
    gid: o.gid as number,
    mtimeNs: bigintField(o.mtime, where, 'mtime'),
    ctimeNs: bigintField(o.ctime, where, 'ctime'),
    ino: bigintField(o.ino, where, 'inode'),
    nlink: o.nlink as number,
    size: o.size as number,
  };
  switch (type) {
    case 'file': {
      node.content = contentFromJson(o.content, node.size, where);
      if (o.linkGroup !== undefined) {
        if (typeof o.linkGroup !== 'string' || o.linkGroup.length > 64) fail(where, 'bad link group');
        node.linkGroup = o.linkGroup as string;
      }
      break;
    }
    case 'dir':
      if (!isHashHex(o.subtree)) fail(where, 'directory without a subtree');
      node.subtree = o.subtree as string;
      break;
    case 'symlink': {
      const target = getBytes(o, 'target', where);
      if (!target || target.length === 0 || target.length > 4095 || target.includes(0)) fail(where, 'bad symlink target');
      node.target = target;
      break;
    }
    case 'chardev':
    case 'blockdev': {
      const r = o.rdev;
      if (!Array.isArray(r) || r.length !== 2 || !isUint(r[0], 0xffffffff) || !isUint(r[1], 0xffffffff)) fail(where, 'bad device number');
      node.rdevMajor = (r as number[])[0];
      node.rdevMinor = (r as number[])[1];
      break;
    }
    default:
      break;
  }
  if (o.xattrs !== undefined) {
    if (!Array.isArray(o.xattrs)) fail(where, 'bad xattrs');
    node.xattrs = (o.xattrs as unknown[]).map((x) => {
      if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== 'string' || typeof x[1] !== 'string') fail(where, 'bad xattr');
      const k = Buffer.from((x as string[])[0] as string, 'base64');
      if (k.length === 0 || k.length > 255 || k.includes(0)) fail(where, 'bad xattr name');
      return [k, Buffer.from((x as string[])[1] as string, 'base64')] as const;
    });
  }
  return node;
}

/** decodeTree parses and validates a tree blob. */
export function decodeTree(buf: Buffer, where: string): TreeNode[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new CorruptionError(`${where}: tree is not valid JSON`, { where }, err);
  }
  const t = parsed as { v?: unknown; nodes?: unknown };
  if (typeof parsed !== 'object' || parsed === null || t.v !== 1 || !Array.isArray(t.nodes)) {
    throw new CorruptionError(`${where}: not a version 1 tree`, { where });
  }
  const nodes = t.nodes.map((n) => nodeFromJson(n, where));
  for (let i = 1; i < nodes.length; i++) {
    if (compareNames((nodes[i - 1] as TreeNode).name, (nodes[i] as TreeNode).name) >= 0) {
      throw new CorruptionError(`${where}: duplicate or unsorted entry names`, { where });
    }
  }
  return nodes;
}
