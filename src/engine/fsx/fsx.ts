/**
 * fsx: file-system access relative to open directory descriptors.
 *
 * Node has no openat(); `/proc/self/fd/<dirfd>/<name>` gives the same
 * guarantee: the directory part is the inode we hold open, whatever has been
 * renamed or replaced by a symlink since, and with O_NOFOLLOW (or lstat,
 * readlink, mkdir, symlink, link, which never follow a final symlink) the
 * final component is never followed either. Both the snapshot walk and the
 * restore go through here, so a tenant who swaps a directory for a symlink
 * mid-walk cannot make us read or write outside the volume. It also keeps
 * every path short, however deep the tree.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = fs.constants;

/** Flags to open a directory we will walk: never through a symlink. */
export const OPEN_DIR = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
/** Flags to open the top directory an operator named (a symlink to it is fine). */
export const OPEN_TOP_DIR = O_RDONLY | O_DIRECTORY;
/** Flags to read a file: never through a symlink; O_NONBLOCK so a file
 * swapped for a FIFO cannot hang us (we check it is regular with fstat). */
export const OPEN_READ = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
/** Flags to create a restored file: it must not exist, never a symlink. */
export const OPEN_CREATE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

const procPrefixes = new Map<number, Buffer>();

/** at returns the path of `name` inside the directory open as `dirFd`. */
export function at(dirFd: number, name?: Buffer): Buffer {
  let prefix = procPrefixes.get(dirFd);
  if (!prefix) {
    prefix = Buffer.from(`/proc/self/fd/${dirFd}/`);
    if (procPrefixes.size > 4096) procPrefixes.clear();
    procPrefixes.set(dirFd, prefix);
  }
  return name ? Buffer.concat([prefix, name]) : prefix.subarray(0, prefix.length - 1);
}

export const open = promisify(fs.open) as (path: fs.PathLike, flags: number, mode?: number) => Promise<number>;
export const close = promisify(fs.close);
export const fstat = promisify(fs.fstat) as (fd: number, opts: { bigint: true }) => Promise<fs.BigIntStats>;
export const lstat = promisify(fs.lstat) as (path: fs.PathLike, opts: { bigint: true }) => Promise<fs.BigIntStats>;
export const readdir = promisify(fs.readdir) as (path: fs.PathLike, opts: { encoding: 'buffer' }) => Promise<Buffer[]>;
export const readlink = promisify(fs.readlink) as (path: fs.PathLike, opts: { encoding: 'buffer' }) => Promise<Buffer>;
export const mkdir = promisify(fs.mkdir) as (path: fs.PathLike, mode: number) => Promise<void>;
export const symlink = promisify(fs.symlink) as (target: fs.PathLike, path: fs.PathLike) => Promise<void>;
export const link = promisify(fs.link);
export const fchown = promisify(fs.fchown);
export const fchmod = promisify(fs.fchmod);
export const lchown = promisify(fs.lchown);
export const chmod = promisify(fs.chmod);
export const ftruncate = promisify(fs.ftruncate);
export const fsync = promisify(fs.fsync);

/** read fills `buf[off, off+len)` from `pos`; returns bytes read (short at EOF). */
export function read(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/** readFull reads until `len` bytes or end of file. */
export async function readFull(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  let done = 0;
  while (done < len) {
    const n = await read(fd, buf, off + done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** writeFull writes all of `buf` at `pos`. */
export async function writeFull(fd: number, buf: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.write(fd, buf, done, buf.length - done, pos + done, (err, w) => (err ? reject(err) : resolve(w))),
    );
    done += n;
  }
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFSOCK = 0o140000;
