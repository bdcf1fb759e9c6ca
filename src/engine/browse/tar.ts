/**
 * tar: a directory of a snapshot as a POSIX (pax) tar stream, built on the
 * fly from the repository with no temporary copy.
 *
 * Every entry carries a pax header with its exact path (raw bytes, marked
 * `hdrcharset=BINARY` when not UTF-8), nanosecond mtime, size and owner, so
 * nothing is truncated or mangled; a ustar header follows for readers that
 * ignore pax. Hard links inside the archive become link entries to the
 * first path of their group; holes are written as zeros (the archive is
 * the file's logical content); sockets are left out (they can't be
 * archived).
 *
 * Extraction can't escape the target directory: names come from trees,
 * whose components are known safe (no "", ".", "..", "/" or NUL), and every
 * path appears once, so no entry can be written through a symlink. A
 * symlink whose target is absolute or climbs above the archive's top
 * directory is left out, and such links are listed, with their targets, in
 * a text file at the end of the archive (`OMITTED_NOTE`).
 */
import { Readable } from 'node:stream';
import { CompressStream } from 'zstd-napi';
import type { TreeNode } from '../format/tree.js';
import type { TreeSource } from './browse.js';
import { type BlobReader, fileBytes } from './content.js';

export const OMITTED_NOTE = 'KOVA-OMITTED-SYMLINKS.txt';

const BLOCK = 512;
const ZEROS = Buffer.alloc(BLOCK * 2);

export interface TarOptions {
  /** The top directory's name in the archive. */
  readonly top: Buffer;
  /** Compress the stream with zstd. Default false. */
  readonly zstd?: boolean;
}

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
  buf[offset + width - 1] = 0;
}

function fitsOctal(value: number, width: number): boolean {
  return value >= 0 && value < 8 ** (width - 1);
}

function isAsciiPrintable(b: Buffer): boolean {
  for (const c of b) if (c < 0x20 || c > 0x7e) return false;
  return true;
}

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** paxRecord encodes "LEN key=value\n", where LEN counts the whole record. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

interface HeaderFields {
  readonly path: Buffer;
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly linkpath?: Buffer | undefined;
  readonly devMajor?: number | undefined;
  readonly devMinor?: number | undefined;
}

function ustarHeader(f: HeaderFields, name: Buffer, linkname: Buffer): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(name.length, 100));
  octal(h, 100, 8, f.mode & 0o7777);
  octal(h, 108, 8, fitsOctal(f.uid, 8) ? f.uid : 0);
  octal(h, 116, 8, fitsOctal(f.gid, 8) ? f.gid : 0);
  octal(h, 124, 12, fitsOctal(f.size, 12) ? f.size : 0);
  const sec = f.mtimeNs < 0n ? 0 : Number(f.mtimeNs / 1_000_000_000n);
  octal(h, 136, 12, fitsOctal(sec, 12) ? sec : 0);
  h.write(f.type, 156, 1, 'ascii');
  linkname.copy(h, 157, 0, Math.min(linkname.length, 100));
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  octal(h, 329, 8, f.devMajor ?? 0);
  octal(h, 337, 8, f.devMinor ?? 0);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  octal(h, 148, 7, sum);
  h[155] = 0x20;
  return h;
}

function pad(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : ZEROS.subarray(0, BLOCK - rest);
}

/** entryHeader is the pax extended header (when needed) and the ustar header of one entry. */
export function entryHeader(f: HeaderFields): Buffer {
  const records: Buffer[] = [];
  const binary = !isUtf8(f.path) || (f.linkpath !== undefined && !isUtf8(f.linkpath));
  if (binary) records.push(paxRecord('hdrcharset', Buffer.from('BINARY')));
  const simpleName = f.path.length <= 100 && isAsciiPrintable(f.path);
  if (!simpleName) records.push(paxRecord('path', f.path));
  if (f.linkpath && !(f.linkpath.length <= 100 && isAsciiPrintable(f.linkpath))) records.push(paxRecord('linkpath', f.linkpath));
  if (!fitsOctal(f.size, 12)) records.push(paxRecord('size', Buffer.from(String(f.size))));
  if (!fitsOctal(f.uid, 8)) records.push(paxRecord('uid', Buffer.from(String(f.uid))));
  if (!fitsOctal(f.gid, 8)) records.push(paxRecord('gid', Buffer.from(String(f.gid))));
  const abs = f.mtimeNs < 0n ? -f.mtimeNs : f.mtimeNs;
  const sec = abs / 1_000_000_000n;
  const frac = abs % 1_000_000_000n;
  if (frac !== 0n || f.mtimeNs < 0n || !fitsOctal(Number(sec), 12)) {
    const sign = f.mtimeNs < 0n ? '-' : '';
    records.push(paxRecord('mtime', Buffer.from(`${sign}${sec}.${frac.toString().padStart(9, '0')}`)));
  }
  const ustar = ustarHeader(
    f,
    simpleName ? f.path : Buffer.from('pax-path'),
    f.linkpath && isAsciiPrintable(f.linkpath) ? f.linkpath : Buffer.alloc(0),
  );
  if (records.length === 0) return ustar;
  const body = Buffer.concat(records);
  const x = ustarHeader(
    { path: Buffer.from('PaxHeader'), type: 'x', mode: 0o644, uid: 0, gid: 0, size: body.length, mtimeNs: 0n },
    Buffer.from('PaxHeader'),
    Buffer.alloc(0),
  );
  return Buffer.concat([x, body, pad(body.length), ustar]);
}

const TYPE_FLAG: Partial<Record<TreeNode['type'], string>> = { file: '0', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6' };

/**
 * escapes tells whether the symlink target `target`, found in a directory
 * `depth` levels below the archive's top, reaches outside the archive.
 */
export function escapes(target: Buffer, depth: number): boolean {
  if (target.length === 0 || target[0] === 0x2f) return true;
  let d = depth;
  for (const part of target.toString('latin1').split('/')) {
    if (part === '..') d--;
    else if (part !== '' && part !== '.') d++;
    if (d < 0) return true;
  }
  return false;
}

/**
 * tarEntries yields the archive of `dir` (a directory node) as buffers:
 * headers, file contents and padding, ending with the end-of-archive
 * blocks.
 */
export async function* tarEntries(src: TreeSource & BlobReader, dir: TreeNode, top: Buffer): AsyncGenerator<Buffer> {
  const links = new Map<string, Buffer>();
  const omitted: string[] = [];
  const slash = Buffer.from('/');
  async function* walk(node: TreeNode, path: Buffer, depth: number): AsyncGenerator<Buffer> {
    const common = { mode: node.mode, uid: node.uid, gid: node.gid, mtimeNs: node.mtimeNs };
    if (node.type === 'dir') {
      yield entryHeader({ ...common, path: Buffer.concat([path, slash]), type: '5', size: 0 });
      if (node.subtree === undefined) return;
      for (const child of await src.readTree(node.subtree)) yield* walk(child, Buffer.concat([path, slash, child.name]), depth + 1);
      return;
    }
    if (node.type === 'file') {
      const first = node.linkGroup !== undefined ? links.get(node.linkGroup) : undefined;
      if (first) {
        yield entryHeader({ ...common, path, type: '1', size: 0, linkpath: first });
        return;
      }
      if (node.linkGroup !== undefined) links.set(node.linkGroup, path);
      yield entryHeader({ ...common, path, type: '0', size: node.size });
      yield* fileBytes(src, node);
      yield pad(node.size);
      return;
    }
    if (node.type === 'symlink') {
      // `depth` counts the directories above the link inside the archive's top directory.
      if (escapes(node.target!, depth - 1)) {
        omitted.push(`${JSON.stringify(path.toString('utf8'))} -> ${JSON.stringify(node.target!.toString('utf8'))}`);
        return;
      }
      yield entryHeader({ ...common, path, type: '2', size: 0, linkpath: node.target });
      return;
    }
    const flag = TYPE_FLAG[node.type];
    if (flag === undefined) return; // sockets
    yield entryHeader({ ...common, path, type: flag, size: 0, devMajor: node.rdevMajor, devMinor: node.rdevMinor });
  }
  yield* walk(dir, top, 0);
  if (omitted.length > 0) {
    const text = Buffer.from(
      `These symbolic links were left out of this archive because their targets lie outside it:\n${omitted.join('\n')}\n`,
    );
    const names = dir.subtree === undefined ? [] : (await src.readTree(dir.subtree)).map((n) => n.name.toString('latin1'));
    let name = OMITTED_NOTE;
    for (let i = 2; names.includes(name); i++) name = `${OMITTED_NOTE.replace('.txt', '')}-${i}.txt`;
    yield entryHeader({
      path: Buffer.concat([top, slash, Buffer.from(name)]),
      type: '0',
      mode: 0o444,
      uid: 0,
      gid: 0,
      size: text.length,
      mtimeNs: dir.mtimeNs,
    });
    yield text;
    yield pad(text.length);
  }
  yield ZEROS;
}

/** tarStream is tarEntries as a readable byte stream, zstd-compressed when asked. */
export function tarStream(src: TreeSource & BlobReader, dir: TreeNode, opts: TarOptions): Readable {
  const raw = Readable.from(tarEntries(src, dir, opts.top), { objectMode: false });
  if (!opts.zstd) return raw;
  const z = new CompressStream();
  raw.on('error', (err) => z.destroy(err));
  return raw.pipe(z);
}
