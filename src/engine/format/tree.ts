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

/**
 * encodeTree serialises nodes, which must already be sorted by name. A node
 * decodeCanonical read is written as the text it was read from when that is
 * exactly what encoding it gives (see DecodedNode): a directory that changed
 * in a few entries encodes only those.
 */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  const parts = new Array<string>(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    parts[i] = DecodedNode.textOf(n) ?? JSON.stringify(nodeToJson(n));
  }
  // JSON.stringify of {v, nodes} is this, each node as JSON.stringify writes it alone.
  return Buffer.from(`{"v":1,"nodes":[${parts.join(',')}]}`);
}

/**
 * A node read by decodeCanonical. When encoding it again gives exactly the
 * bytes it was read from (every string ASCII, so nothing decoded and encoded
 * again; every time and inode written without leading zeros; no base64
 * form), it keeps where those bytes are, and encodeTree copies them:
 * turning a node into JSON was most of the cost of a directory that changed
 * in a few of its entries. The bytes are a copy of the whole tree, made once
 * per tree outside the JavaScript heap (a tree may be decoded from a buffer
 * that is reused afterwards, and a string copy was moved by every garbage
 * collection that kept it); the node's name (and a symlink's target), when
 * ASCII, is a view of the same copy. Nodes are never changed once made (a changed
 * entry is a new object, which keeps nothing), and what a node keeps is
 * private, so a spread copy does not take it.
 */
class DecodedNode {
  #source: Buffer | null = null;
  #start = 0;
  #end = 0;
  declare content?: readonly ContentRef[];
  declare subtree?: string;
  declare target?: Buffer;
  declare rdevMajor?: number;
  declare rdevMinor?: number;
  declare linkGroup?: string;

  constructor(
    readonly name: Buffer,
    readonly type: NodeType,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly mtimeNs: bigint,
    readonly ctimeNs: bigint,
    readonly ino: bigint,
    readonly nlink: number,
    readonly size: number,
  ) {}

  /** keep records that this node's encoding is source[start, end) (ASCII). */
  keep(source: Buffer, start: number, end: number): void {
    this.#source = source;
    this.#start = start;
    this.#end = end;
  }

  /** textOf is the encoding a decoded node kept, or null. */
  static textOf(n: TreeNode): string | null {
    return #source in n && n.#source !== null ? n.#source.toString('latin1', n.#start, n.#end) : null;
  }
}

/** keptEncoding is the text encodeTree copies for `n` instead of encoding it, or null (for tests). */
export function keptEncoding(n: TreeNode): string | null {
  return DecodedNode.textOf(n);
}

/* ---- decoding and validation ------------------------------------------------ */

/**
 * compareNames orders names by their bytes (the order of nodes in a tree),
 * as Buffer.compare does in sign. Names are short (at most 255 bytes): a
 * loop here took about 10 ns a pair where Buffer.compare, a call into C++,
 * took about 50, and it runs for every node read and every entry matched.
 */
export function compareNames(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return a[k]! - b[k]!;
  return a.length - b.length;
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

/** isBigintText tells whether `v` is a decimal integer of at most 25 digits, maybe negative. */
function isBigintText(v: string): boolean {
  const n = v.length;
  let i = n > 0 && v.charCodeAt(0) === 45 ? 1 : 0;
  if (n - i < 1 || n - i > 25) return false;
  for (; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** bigintField parses a decimal integer string of at most 25 digits (a time or an inode). */
function bigintField(v: unknown, where: string, what: string): bigint {
  if (typeof v !== 'string' || !isBigintText(v)) return fail(where, `bad ${what}`);
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

/**
 * decodeTree parses and validates a tree blob. Trees in the form encodeTree
 * writes are read straight from the bytes (decodeCanonical); anything else
 * goes through JSON.parse and nodeFromJson (decodeTreeJson). Both give the
 * same nodes, and refuse the same trees.
 */
export function decodeTree(buf: Buffer, where: string): TreeNode[] {
  return decodeCanonical(buf) ?? decodeTreeJson(buf, where);
}

/** decodeTreeJson is the general decoder: any JSON layout, every check with its own message. */
export function decodeTreeJson(buf: Buffer, where: string): TreeNode[] {
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

/* ---- the canonical form, read from the bytes ---------------------------------- */

/*
 * Decoding a large directory through JSON.parse built the whole text as a
 * string, then an object per node and per content run, then the nodes: the
 * garbage of a 10,000-entry tree (2.5 MB of JSON) cost more than its
 * parsing. decodeCanonical reads the exact layout encodeTree writes (keys in
 * nodeToJson's order, no spaces, integers without sign, fraction or
 * exponent, strings without escapes) straight from the bytes into nodes,
 * with the checks of nodeFromJson and decodeTree. At anything else, valid
 * or not (another key order, an escape, xattrs, a field of another type's
 * node, a failed check), it returns null and decodeTreeJson decides, with
 * its messages: so it accepts only trees decodeTreeJson accepts, and gives
 * the same nodes for them.
 */

const lit = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const L = {
  start: lit('{"v":1,"nodes":['),
  name: lit('{"name":"'),
  nameB64: lit('{"nameB64":"'),
  type: lit(',"type":"'),
  mode: lit(',"mode":'),
  uid: lit(',"uid":'),
  gid: lit(',"gid":'),
  mtime: lit(',"mtime":"'),
  ctime: lit(',"ctime":"'),
  ino: lit(',"ino":"'),
  nlink: lit(',"nlink":'),
  size: lit(',"size":'),
  content: lit(',"content":['),
  subtree: lit(',"subtree":"'),
  target: lit(',"target":"'),
  targetB64: lit(',"targetB64":"'),
  rdev: lit(',"rdev":['),
  linkGroup: lit(',"linkGroup":"'),
  runId: lit('["'),
  runHole: lit('[null,'),
};
/** Each node type as its string is written (closing quote included), the commonest first. */
const TYPE_LITS: readonly (readonly [Uint8Array, NodeType])[] = (
  ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket'] as const
).map((t) => [lit(`${t}"`), t] as const);
const E15 = 10n ** 15n;
/** A 64-bit word written as two 32-bit halves and read as one BigInt (Reader.bigint). */
const WORD = new BigUint64Array(1);
const HALVES = new Uint32Array(WORD.buffer);
const LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
/** 10^15 as 2^32 · E15_HIGH + E15_LOW. */
const E15_HIGH = Math.floor(1e15 / 2 ** 32);
const E15_LOW = 1e15 - E15_HIGH * 2 ** 32;

/** The canonical reader's position in the bytes; every method returns a failure mark instead of throwing. */
class Reader {
  pos = 0;
  /** Whether the last string read held bytes of 0x80 and up (UTF-8). */
  wide = false;
  /**
   * Whether something read since this was last cleared would be written
   * otherwise by encodeTree: a UTF-8 string (decoded and encoded again) or
   * an integer string with a leading zero.
   */
  inexact = false;

  constructor(readonly b: Buffer) {}

  /** lit consumes `s` if the bytes continue with it. */
  lit(s: Uint8Array): boolean {
    const b = this.b;
    const p = this.pos;
    if (p + s.length > b.length) return false;
    for (let i = 0; i < s.length; i++) if (b[p + i] !== s[i]) return false;
    this.pos = p + s.length;
    return true;
  }

  byte(c: number): boolean {
    if (this.b[this.pos] !== c) return false;
    this.pos++;
    return true;
  }

  /**
   * str consumes the rest of a string (its opening quote is read) and its
   * closing quote, and returns where its bytes end, or -1 at an escape or a
   * control byte (left to JSON.parse).
   */
  str(): number {
    const b = this.b;
    let wide = false;
    for (let i = this.pos; i < b.length; i++) {
      const c = b[i]!;
      if (c === 0x22) {
        this.pos = i + 1;
        this.wide = wide;
        return i;
      }
      if (c === 0x5c || c < 0x20) return -1;
      if (c >= 0x80) wide = true;
    }
    return -1;
  }

  /** ascii reads a string of ASCII bytes as text, or null. */
  ascii(): string | null {
    const start = this.pos;
    const end = this.str();
    return end < 0 || this.wide ? null : this.b.toString('latin1', start, end);
  }

  /**
   * bytes reads a string as the bytes its text encodes to (JSON.parse then
   * Buffer.from would give the same), or null: ASCII text as a view of the
   * bytes read (decodeCanonical reads a copy of its own, never changed).
   */
  bytes(): Buffer | null {
    const start = this.pos;
    const end = this.str();
    if (end < 0) return null;
    // UTF-8 text is decoded and encoded again, as the general decoder does: invalid sequences become U+FFFD alike.
    if (this.wide) this.inexact = true;
    return this.wide ? Buffer.from(this.b.toString('utf8', start, end), 'utf8') : this.b.subarray(start, end);
  }

  /** uint reads an integer of at most 15 digits without sign, fraction or exponent (so exact), or -1. */
  uint(): number {
    const b = this.b;
    let p = this.pos;
    let c = b[p];
    if (c === undefined || c < 48 || c > 57) return -1;
    let n = c - 48;
    p++;
    if (n !== 0) {
      for (let digits = 1; p < b.length; p++, digits++) {
        c = b[p]!;
        if (c < 48 || c > 57) break;
        if (digits === 15) return -1;
        n = n * 10 + (c - 48);
      }
    }
    // A fraction, an exponent or a leading zero followed by digits is left to JSON.parse.
    c = b[p];
    if (c === 0x2e || c === 0x65 || c === 0x45 || (c !== undefined && c >= 48 && c <= 57)) return -1;
    this.pos = p;
    return n;
  }

  /**
   * bigint reads a string holding a decimal integer as decodeTreeJson
   * accepts it (isBigintText), or null. Three such fields a node (times in
   * nanoseconds, 19 digits, and an inode) made a string each for BigInt to
   * parse; instead the digits are added up as two exact numbers, the last
   * 15 digits and those before, and up to 19 digits (under 2^64) the value
   * is put together in 32-bit halves and read as one BigInt.
   */
  bigint(): bigint | null {
    const b = this.b;
    const start = this.pos;
    const end = this.str();
    if (end < 0) return null;
    const neg = b[start] === 45;
    const first = neg ? start + 1 : start;
    const digits = end - first;
    if (digits < 1 || digits > 25) return null;
    // "007", "-0" and "-07" are read as BigInt reads them, and written as 7 and 0.
    if (b[first] === 48 && (neg || digits > 1)) this.inexact = true;
    const split = Math.max(first, end - 15);
    let hi = 0;
    let lo = 0;
    for (let i = first; i < end; i++) {
      const d = b[i]! - 48;
      if (d < 0 || d > 9) return null;
      if (i < split) hi = hi * 10 + d;
      else lo = lo * 10 + d;
    }
    let v: bigint;
    if (digits <= 19) {
      // hi < 10^4, lo < 10^15: every product and sum here is exact in a double.
      const low = hi * E15_LOW + (lo % 2 ** 32);
      HALVES[LOW] = low % 2 ** 32;
      HALVES[1 - LOW] = hi * E15_HIGH + Math.floor(lo / 2 ** 32) + Math.floor(low / 2 ** 32);
      v = WORD[0]!;
    } else {
      v = BigInt(hi) * E15 + BigInt(lo);
    }
    return neg ? -v : v;
  }

  /** type reads a node type's string, or null. */
  type(): NodeType | null {
    for (const [text, type] of TYPE_LITS) if (this.lit(text)) return type;
    return null;
  }
}

/** canonicalNode reads one node at the reader's position, or returns null. */
function canonicalNode(r: Reader, source: Buffer): TreeNode | null {
  const start = r.pos;
  r.inexact = false;
  let name: Buffer | null;
  if (r.lit(L.name)) name = r.bytes();
  else if (r.lit(L.nameB64)) {
    const s = r.ascii();
    name = s === null ? null : Buffer.from(s, 'base64');
    r.inexact = true; // encodeTree writes a name that is UTF-8 as a string
  } else return null;
  if (name === null || !isSafeName(name)) return null;
  if (!r.lit(L.type)) return null;
  const type = r.type();
  if (type === null) return null;
  if (!r.lit(L.mode)) return null;
  const mode = r.uint();
  if (mode < 0 || mode > 0o7777 || !r.lit(L.uid)) return null;
  const uid = r.uint();
  if (uid < 0 || uid > 0xffffffff || !r.lit(L.gid)) return null;
  const gid = r.uint();
  if (gid < 0 || gid > 0xffffffff || !r.lit(L.mtime)) return null;
  const mtimeNs = r.bigint();
  if (mtimeNs === null || !r.lit(L.ctime)) return null;
  const ctimeNs = r.bigint();
  if (ctimeNs === null || !r.lit(L.ino)) return null;
  const ino = r.bigint();
  if (ino === null || !r.lit(L.nlink)) return null;
  const nlink = r.uint();
  if (nlink < 0 || !r.lit(L.size)) return null;
  const size = r.uint();
  if (size < 0) return null;
  const node = new DecodedNode(name, type, mode, uid, gid, mtimeNs, ctimeNs, ino, nlink, size);

  // The optional fields, in nodeToJson's order; each only on the type that uses it.
  if (r.lit(L.content)) {
    if (type !== 'file') return null;
    const content: ContentRef[] = [];
    let total = 0;
    if (!r.byte(0x5d)) {
      for (;;) {
        let id: string | null = null;
        if (r.lit(L.runId)) {
          id = r.ascii();
          if (id === null || !isHashHex(id) || !r.byte(0x2c)) return null;
        } else if (!r.lit(L.runHole)) return null;
        const length = r.uint();
        if (length <= 0 || !r.byte(0x5d)) return null;
        total += length;
        content.push({ id, length });
        if (r.byte(0x5d)) break;
        if (!r.byte(0x2c)) return null;
      }
    }
    if (total !== size) return null;
    node.content = content;
  } else if (type === 'file') return null;
  if (r.lit(L.subtree)) {
    const subtree = r.ascii();
    if (type !== 'dir' || !isHashHex(subtree)) return null;
    node.subtree = subtree;
  } else if (type === 'dir') return null;
  let target: Buffer | null | undefined;
  if (r.lit(L.target)) target = r.bytes();
  else if (r.lit(L.targetB64)) {
    const s = r.ascii();
    target = s === null ? null : Buffer.from(s, 'base64');
    r.inexact = true;
  }
  if (target !== undefined) {
    if (type !== 'symlink' || !target || target.length === 0 || target.length > 4095 || target.includes(0)) return null;
    node.target = target;
  } else if (type === 'symlink') return null;
  if (r.lit(L.rdev)) {
    if (type !== 'chardev' && type !== 'blockdev') return null;
    const major = r.uint();
    if (major < 0 || major > 0xffffffff || !r.byte(0x2c)) return null;
    const minor = r.uint();
    if (minor < 0 || minor > 0xffffffff || !r.byte(0x5d)) return null;
    node.rdevMajor = major;
    node.rdevMinor = minor;
  } else if (type === 'chardev' || type === 'blockdev') return null;
  if (r.lit(L.linkGroup)) {
    const group = r.ascii();
    if (type !== 'file' || group === null || group.length > 64) return null;
    node.linkGroup = group;
  }
  if (!r.byte(0x7d)) return null;
  if (!r.inexact) node.keep(source, start, r.pos);
  return node;
}

/** decodeCanonical reads a tree in encodeTree's exact layout, or returns null (see above). */
export function decodeCanonical(buf: Buffer): TreeNode[] | null {
  if (!buf.subarray(0, L.start.length).equals(L.start)) return null;
  // Read from the copy the nodes keep: names and targets are views of it.
  const source = Buffer.from(buf);
  const r = new Reader(source);
  r.lit(L.start);
  const nodes: TreeNode[] = [];
  if (!r.byte(0x5d)) {
    for (;;) {
      const node = canonicalNode(r, source);
      if (node === null) return null;
      if (nodes.length > 0 && compareNames(nodes[nodes.length - 1]!.name, node.name) >= 0) return null;
      nodes.push(node);
      if (r.byte(0x5d)) break;
      if (!r.byte(0x2c)) return null;
    }
  }
  return r.byte(0x7d) && r.pos === buf.length ? nodes : null;
}

/* ---- the ids a tree refers to, for gc ------------------------------------------ */

/** The blobs one tree refers to: its directories' trees and its files' data chunks (holes left out), in node order. */
export interface TreeRefs {
  readonly subtrees: string[];
  readonly data: string[];
}

/**
 * canonicalBigint skips a string holding a decimal integer as decodeCanonical
 * accepts it (Reader.bigint), without making the number.
 */
function canonicalBigint(r: Reader): boolean {
  const start = r.pos;
  const end = r.str();
  if (end < 0 || r.wide) return false;
  const b = r.b;
  let i = start < end && b[start] === 45 ? start + 1 : start;
  if (end - i < 1 || end - i > 25) return false;
  for (; i < end; i++) if (b[i]! < 48 || b[i]! > 57) return false;
  return true;
}

/** canonicalRefsNode is canonicalNode keeping only the ids; it accepts exactly what canonicalNode accepts. */
function canonicalRefsNode(r: Reader, refs: TreeRefs): Buffer | null {
  let name: Buffer | null;
  if (r.lit(L.name)) {
    const start = r.pos;
    const end = r.str();
    if (end < 0) return null;
    // A view of ASCII names (most): no copy. UTF-8 names are decoded and encoded again, as Reader.bytes does.
    name = r.wide ? Buffer.from(r.b.toString('utf8', start, end), 'utf8') : r.b.subarray(start, end);
  } else if (r.lit(L.nameB64)) {
    const s = r.ascii();
    name = s === null ? null : Buffer.from(s, 'base64');
  } else return null;
  if (name === null || !isSafeName(name)) return null;
  if (!r.lit(L.type)) return null;
  const type = r.type();
  if (type === null) return null;
  if (!r.lit(L.mode)) return null;
  const mode = r.uint();
  if (mode < 0 || mode > 0o7777 || !r.lit(L.uid)) return null;
  const uid = r.uint();
  if (uid < 0 || uid > 0xffffffff || !r.lit(L.gid)) return null;
  const gid = r.uint();
  if (gid < 0 || gid > 0xffffffff || !r.lit(L.mtime)) return null;
  if (!canonicalBigint(r) || !r.lit(L.ctime)) return null;
  if (!canonicalBigint(r) || !r.lit(L.ino)) return null;
  if (!canonicalBigint(r) || !r.lit(L.nlink)) return null;
  const nlink = r.uint();
  if (nlink < 0 || !r.lit(L.size)) return null;
  const size = r.uint();
  if (size < 0) return null;

  if (r.lit(L.content)) {
    if (type !== 'file') return null;
    let total = 0;
    if (!r.byte(0x5d)) {
      for (;;) {
        if (r.lit(L.runId)) {
          const id = r.ascii();
          if (id === null || !isHashHex(id) || !r.byte(0x2c)) return null;
          refs.data.push(id);
        } else if (!r.lit(L.runHole)) return null;
        const length = r.uint();
        if (length <= 0 || !r.byte(0x5d)) return null;
        total += length;
        if (r.byte(0x5d)) break;
        if (!r.byte(0x2c)) return null;
      }
    }
    if (total !== size) return null;
  } else if (type === 'file') return null;
  if (r.lit(L.subtree)) {
    const subtree = r.ascii();
    if (type !== 'dir' || !isHashHex(subtree)) return null;
    refs.subtrees.push(subtree);
  } else if (type === 'dir') return null;
  let target: Buffer | null | undefined;
  if (r.lit(L.target)) target = r.bytes();
  else if (r.lit(L.targetB64)) {
    const s = r.ascii();
    target = s === null ? null : Buffer.from(s, 'base64');
  }
  if (target !== undefined) {
    if (type !== 'symlink' || !target || target.length === 0 || target.length > 4095 || target.includes(0)) return null;
  } else if (type === 'symlink') return null;
  if (r.lit(L.rdev)) {
    if (type !== 'chardev' && type !== 'blockdev') return null;
    const major = r.uint();
    if (major < 0 || major > 0xffffffff || !r.byte(0x2c)) return null;
    const minor = r.uint();
    if (minor < 0 || minor > 0xffffffff || !r.byte(0x5d)) return null;
  } else if (type === 'chardev' || type === 'blockdev') return null;
  if (r.lit(L.linkGroup)) {
    const group = r.ascii();
    if (type !== 'file' || group === null || group.length > 64) return null;
  }
  return r.byte(0x7d) ? name : null;
}

/**
 * canonicalRefs reads, from a tree in encodeTree's exact layout, only the
 * ids it refers to: the checks of decodeCanonical, without building nodes
 * (no name copies, bigints or content objects). It returns null wherever
 * decodeCanonical does, so a caller falls back to decodeTree for the rest
 * (treeRefs does): on what both accept, the ids are those of the nodes'
 * `subtree` and `content`.
 */
export function canonicalRefs(buf: Buffer): TreeRefs | null {
  const r = new Reader(buf);
  if (!r.lit(L.start)) return null;
  const refs: TreeRefs = { subtrees: [], data: [] };
  let prev: Buffer | null = null;
  if (!r.byte(0x5d)) {
    for (;;) {
      const name = canonicalRefsNode(r, refs);
      if (name === null) return null;
      if (prev !== null && compareNames(prev, name) >= 0) return null;
      prev = name;
      if (r.byte(0x5d)) break;
      if (!r.byte(0x2c)) return null;
    }
  }
  return r.byte(0x7d) && r.pos === buf.length ? refs : null;
}

/**
 * treeRefs is the ids a tree blob refers to, with decodeTree's checks: read
 * straight from the bytes (canonicalRefs), or from decodeTree's nodes for
 * any other layout (and its error when the tree is malformed).
 */
export function treeRefs(buf: Buffer, where: string): TreeRefs {
  const fast = canonicalRefs(buf);
  if (fast) return fast;
  const refs: TreeRefs = { subtrees: [], data: [] };
  for (const n of decodeTree(buf, where)) {
    if (n.subtree !== undefined) refs.subtrees.push(n.subtree);
    for (const c of n.content ?? []) if (c.id !== null) refs.data.push(c.id);
  }
  return refs;
}
