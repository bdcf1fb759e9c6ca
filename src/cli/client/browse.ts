/**
 * browse: `kova snapshots files|download|diff`, reading a snapshot on a Kova
 * server without restoring it: its directories, one file or a directory
 * (as tar), and what changed since another snapshot.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type Command, Option } from 'commander';
import { formatBytes } from '../../core/units.js';
import { note, printJson, table } from '../output.js';
import { ApiError, type FileChange, type FileEntry, type KovaClient } from './api-client.js';
import { type ClientContext, type CommonOpts, client, clientCommand } from './common.js';
import { ClientUsageError } from './connection.js';

/** The most entries asked for in one page (the server's default page). */
const PAGE = 1000;

function parseLimit(v: string): number {
  if (!/^\s*[1-9]\d*\s*$/.test(v)) throw new ClientUsageError('INVALID_LIMIT', `--limit must be a positive whole number, got "${v}"`);
  return Number(v);
}

/** follow reads pages until the cursor runs out or `limit` items were read. */
async function follow<T>(
  limit: number | undefined,
  read: (cursor: string | null, pageSize: number) => Promise<{ items: T[]; cursor: string | null }>,
): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  do {
    const want = limit === undefined ? PAGE : Math.min(PAGE, limit - all.length);
    const page = await read(cursor, want);
    all.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== null && (limit === undefined || all.length < limit));
  return limit === undefined ? all : all.slice(0, limit);
}

const TYPE_CHAR: Record<FileEntry['type'], string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  fifo: 'p',
  chardev: 'c',
  blockdev: 'b',
  socket: 's',
};

/** modeString renders a type and permission bits as ls does: "drwxr-x---". */
export function modeString(type: FileEntry['type'], mode: number): string {
  const rwx = (bits: number, special: boolean, s: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? s : s.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return (
    TYPE_CHAR[type] +
    rwx(mode >> 6, (mode & 0o4000) !== 0, 's') +
    rwx(mode >> 3, (mode & 0o2000) !== 0, 's') +
    rwx(mode, (mode & 0o1000) !== 0, 't')
  );
}

function entryRow(e: FileEntry): string[] {
  const name = e.type === 'dir' ? `${e.name}/` : e.target !== null ? `${e.name} -> ${e.target}` : e.name;
  return [modeString(e.type, e.mode), `${e.uid}:${e.gid}`, e.type === 'file' ? formatBytes(e.size) : '-', e.mtime.slice(0, 19) + 'Z', name];
}

const size = (n: number | null): string => (n === null ? '-' : formatBytes(n));

/** save writes a streamed answer to `file`, or to stdout; a failed download removes the partial file. */
async function save(ctx: ClientContext, res: Response, file: string | undefined): Promise<void> {
  const body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
  if (file === undefined) {
    await pipeline(body, ctx.io.out, { end: false });
    return;
  }
  try {
    await pipeline(body, fs.createWriteStream(file));
  } catch (err) {
    fs.rmSync(file, { force: true });
    throw err;
  }
}

async function download(c: KovaClient, depId: string, snapId: string, path: string, format: 'tar' | 'tar.zst'): Promise<Response> {
  try {
    return await c.downloadFile(depId, snapId, path);
  } catch (err) {
    // A directory comes as an archive; anything else that is not a file is refused as the server said.
    if (!(err instanceof ApiError) || err.code !== 'NOT_A_FILE') throw err;
    try {
      return await c.downloadArchive(depId, snapId, path, format);
    } catch (dirErr) {
      if (dirErr instanceof ApiError && dirErr.code === 'NOT_A_DIRECTORY') throw err;
      throw dirErr;
    }
  }
}

export function registerBrowse(snapshots: Command, ctx: ClientContext): void {
  const { io } = ctx;
  const dep = ['<deployment>', 'deployment id'] as const;
  const snap = ['<snapshot>', 'snapshot id (snap-…)'] as const;

  clientCommand(snapshots, 'files', 'list a directory of a snapshot (path service/volume/...; none: the services)')
    .alias('ls-files')
    .argument(...dep)
    .argument(...snap)
    .argument('[path]', 'directory in the snapshot, e.g. app/data/uploads', '')
    .option('--limit <n>', 'list at most n entries (default: all)')
    .action(async (depId: string, snapId: string, path: string, o: CommonOpts & { limit?: string }) => {
      const c = await client(ctx, o);
      const limit = o.limit === undefined ? undefined : parseLimit(o.limit);
      const entries = await follow(limit, async (cursor, pageSize) => {
        const p = await c.listFiles(depId, snapId, path, { cursor, limit: pageSize });
        return { items: p.entries, cursor: p.cursor };
      });
      if (o.json) return printJson(io, entries);
      if (entries.length === 0) return note(io, 'empty directory');
      table(io, ['MODE', 'OWNER', 'SIZE', 'MODIFIED', 'NAME'], entries.map(entryRow));
    });

  clientCommand(snapshots, 'download', 'download a file of a snapshot, or a directory as tar')
    .argument(...dep)
    .argument(...snap)
    .argument('<path>', 'file or directory in the snapshot, e.g. app/data/db.sqlite')
    .option('-o, --output <file>', 'write to this file (default: stdout)')
    .addOption(new Option('--format <format>', 'archive format of a directory').choices(['tar', 'tar.zst']).default('tar'))
    .action(async (depId: string, snapId: string, path: string, o: CommonOpts & { output?: string; format: 'tar' | 'tar.zst' }) => {
      if (o.output === undefined && io.out.isTTY) {
        throw new ClientUsageError('OUTPUT_IS_TERMINAL', 'refusing to write a download to a terminal; give -o FILE or redirect stdout');
      }
      const c = await client(ctx, o);
      const res = await download(c, depId, snapId, path, o.format);
      await save(ctx, res, o.output);
      if (o.output !== undefined) note(io, `saved ${o.output}`);
    });

  clientCommand(snapshots, 'diff', 'list what changed from another snapshot (--against) to this one, or since this one (--against live)')
    .argument(...dep)
    .argument(...snap)
    .requiredOption('--against <snapshot>', 'the earlier snapshot to compare with, or "live" for the volumes as they are now')
    .option('--limit <n>', 'list at most n changes (default: all)')
    .action(async (depId: string, snapId: string, o: CommonOpts & { against: string; limit?: string }) => {
      const c = await client(ctx, o);
      const limit = o.limit === undefined ? undefined : parseLimit(o.limit);
      const changes = await follow<FileChange>(limit, async (cursor, pageSize) => {
        const p = await c.diff(depId, snapId, o.against, { cursor, limit: pageSize });
        return { items: p.changes, cursor: p.cursor };
      });
      if (o.json) return printJson(io, changes);
      if (changes.length === 0) return note(io, 'no changes');
      table(
        io,
        ['CHANGE', 'BEFORE', 'AFTER', 'PATH'],
        changes.map((ch) => [ch.change, size(ch.sizeBefore), size(ch.sizeAfter), ch.path]),
      );
    });
}
