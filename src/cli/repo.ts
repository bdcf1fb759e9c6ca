/**
 * repo: `kova repo …`, the operator's commands on one repository (init,
 * snapshot, list, restore, delete, gc, stats, verify) and `copy` between two.
 * A repository is a local directory or `s3://bucket/prefix` in an
 * S3-compatible service (always encrypted: --key-file, --s3-endpoint).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes, formatElapsed } from '../core/units.js';
import type { GcReport, SnapshotRecord, Repository } from '../engine/index.js';
import { type Io, ProgressBar, note, printJson, println, table } from './output.js';

interface LockOpt {
  lockWait?: string;
  /** For s3:// repositories; default KOVA_S3_ENDPOINT. */
  s3Endpoint?: string;
  /** The master key file of s3:// repositories; default KOVA_OFFSITE_KEY_FILE. */
  keyFile?: string;
}

/** engine loads the engine (and its native addon) only for `repo` commands. */
const engine = () => import('../engine/repo/location.js');

function locationOpts(dir: string, o: LockOpt): { s3Endpoint?: string; keyFile?: string } {
  const s3 = dir.startsWith('s3://');
  const s3Endpoint = o.s3Endpoint ?? (s3 ? process.env.KOVA_S3_ENDPOINT || undefined : undefined);
  const keyFile = o.keyFile ?? (s3 ? process.env.KOVA_OFFSITE_KEY_FILE || undefined : undefined);
  return { ...(s3Endpoint ? { s3Endpoint } : {}), ...(keyFile ? { keyFile } : {}) };
}

async function openRepo(dir: string, o: LockOpt): Promise<Repository> {
  const wait = o.lockWait === undefined ? 0 : Number(o.lockWait);
  if (!Number.isFinite(wait) || wait < 0) throw new Error(`--lock-wait must be a number of seconds, got ${o.lockWait}`);
  return (await engine()).openRepository(dir, { lockTimeoutMs: wait * 1000, ...locationOpts(dir, o) });
}

/** where names a repository in messages: an absolute directory, or the s3:// URL as given. */
function where(dir: string): string {
  return dir.startsWith('s3://') ? dir : path.resolve(dir);
}

/** located adds the options of repositories in object storage to a command. */
function located(cmd: Command): Command {
  return cmd
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// repositories (env KOVA_S3_ENDPOINT; default AWS)')
    .option('--key-file <file>', 'master key file of s3:// repositories, which are always encrypted (env KOVA_OFFSITE_KEY_FILE)');
}

async function withRepo<T>(dir: string, o: LockOpt, fn: (r: Repository) => Promise<T>): Promise<T> {
  const repo = await openRepo(dir, o);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

function recordJson(s: SnapshotRecord): Record<string, unknown> {
  return {
    id: s.id,
    shortId: s.id.slice(0, 8),
    createdAt: s.time,
    label: s.label,
    tags: s.tags,
    parent: s.parent,
    hostname: s.hostname,
    sources: s.sources,
    stats: s.stats,
    skipped: s.skippedEntries,
  };
}

/** printGc prints a gc report: one line, or the report as JSON. */
function printGc(io: Io, rep: GcReport, json?: boolean): void {
  if (json) return printJson(io, rep);
  println(
    io,
    `gc: ${rep.snapshots} snapshots, ${rep.liveBlobs} live blobs; packs ${rep.packsBefore} → ${rep.packsAfter} ` +
      `(${rep.packsDeleted} deleted, ${rep.packsRepacked} repacked); ${formatBytes(rep.bytesBefore)} → ${formatBytes(rep.bytesAfter)}`,
  );
}

export function registerRepo(program: Command, io: Io): void {
  const repo = program.command('repo').description('operate on a snapshot repository (a directory, or s3://bucket/prefix)');
  const lockWait = ['--lock-wait <seconds>', 'wait this long for a conflicting lock (default: fail at once)'] as const;

  located(
    repo
      .command('init')
      .description('create a repository in an empty or absent directory, or an unused s3:// prefix')
      .argument('<repo>', 'repository directory or s3://bucket/prefix'),
  ).action(async (dir: string, o: LockOpt) => {
    const r = await (await engine()).initRepository(dir, locationOpts(dir, o));
    await r.close();
    println(io, `created repository ${r.config.id.slice(0, 8)} at ${where(dir)}`);
  });

  located(repo.command('snapshot'))
    .description('snapshot a directory; prints the new snapshot id')
    .argument('<repo>', 'repository directory or s3://bucket/prefix')
    .argument('<dir>', 'directory to capture')
    .option(
      '--parent <id>',
      'compare against this snapshot: unchanged files are not read (default: the latest snapshot of the same directory)',
    )
    .option('--no-parent', 'read every file')
    .option('--label <text>', 'a label for the snapshot')
    .option('--json', 'print the snapshot as JSON')
    .option(...lockWait)
    .action(async (dir: string, src: string, o: { parent?: string | false; label?: string; json?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => {
        let parent: string | null = null;
        if (typeof o.parent === 'string') parent = o.parent;
        else if (o.parent !== false) {
          const abs = path.resolve(src);
          const same = (await r.listSnapshots()).filter((s) => s.sources.length === 1 && s.sources[0] === abs);
          parent = same[same.length - 1]?.id ?? null;
        }
        const bar = new ProgressBar(io, 'snapshot');
        const s = await r.snapshot(src, { parent, label: o.label ?? null, onProgress: bar.update, scanTotals: !!io.err.isTTY });
        bar.done();
        if (o.json) printJson(io, recordJson(s));
        else {
          println(io, s.id);
          const st = s.stats;
          note(
            io,
            `snapshot ${s.id.slice(0, 8)}: ${st.files} files, ${formatBytes(st.bytes)}; read ${formatBytes(st.bytesRead)}, ` +
              `added ${formatBytes(st.storedBytes)} in ${formatElapsed(st.durationMs)}` +
              (st.skipped ? `; ${st.skipped} entries skipped` : ''),
          );
          for (const e of s.skippedEntries) note(io, `  skipped ${e.path}: ${e.reason}`);
        }
      });
    });

  located(repo.command('list'))
    .description('list snapshots, oldest first')
    .argument('<repo>', 'repository directory or s3://bucket/prefix')
    .option('--json', 'print a JSON array')
    .action(async (dir: string, o: { json?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => {
        const list = await r.listSnapshots();
        if (o.json) return printJson(io, list.map(recordJson));
        if (list.length === 0) return println(io, 'no snapshots');
        table(
          io,
          ['ID', 'CREATED', 'LABEL', 'FILES', 'SIZE', 'ADDED'],
          list.map((s) => [
            s.id.slice(0, 8),
            s.time,
            s.label ?? '',
            String(s.stats.files),
            formatBytes(s.stats.bytes),
            formatBytes(s.stats.storedBytes),
          ]),
        );
      });
    });

  located(repo.command('restore'))
    .description('restore a snapshot into an empty or absent directory')
    .argument('<repo>', 'repository directory or s3://bucket/prefix')
    .argument('<id>', 'snapshot id or unique prefix')
    .argument('<target>', 'target directory (absent or empty)')
    .option('--sync', 'flush the target filesystem before exiting')
    .option(...lockWait)
    .action(async (dir: string, id: string, target: string, o: { sync?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => {
        const bar = new ProgressBar(io, 'restore');
        const res = await r.restore(id, target, { onProgress: bar.update, sync: !!o.sync });
        bar.done();
        println(io, `restored ${res.files} files, ${formatBytes(res.bytes)} to ${path.resolve(target)} in ${bar.elapsed}`);
        for (const e of res.skipped) note(io, `  skipped ${e.path}: ${e.reason}`);
      });
    });

  located(repo.command('delete'))
    .description('delete snapshots (then run gc, or pass --gc, to reclaim their space)')
    .argument('<repo>', 'repository directory or s3://bucket/prefix')
    .argument('<ids...>', 'snapshot ids or unique prefixes')
    .option('--gc', 'reclaim the space right after, as `kova repo gc` does')
    .option('--json', 'with --gc, print the gc report as JSON')
    .option(...lockWait)
    .action(async (dir: string, ids: string[], o: { gc?: boolean; json?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => {
        // One bad id deletes nothing (deleteSnapshots resolves every id first).
        for (const s of await r.deleteSnapshots(ids)) if (!o.json) println(io, `deleted snapshot ${s.id}`);
        if (o.gc) printGc(io, await r.gc(), o.json);
      });
    });

  located(repo.command('gc'))
    .description('reclaim the space of data no snapshot uses')
    .argument('<repo>', 'repository directory or s3://bucket/prefix')
    .option('--json', 'print the report as JSON')
    .option(...lockWait)
    .action(async (dir: string, o: { json?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => printGc(io, await r.gc(), o.json));
    });

  located(repo.command('stats'))
    .description('show what the repository holds')
    .argument('<repo>', 'repository directory or s3://bucket/prefix')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { json?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => {
        const s = await r.stats();
        if (o.json) return printJson(io, s);
        table(
          io,
          ['SNAPSHOTS', 'PACKS', 'STORED', 'BLOBS', 'UNIQUE DATA', 'LOGICAL (ALL SNAPSHOTS)'],
          [
            [
              String(s.snapshots),
              String(s.packs),
              formatBytes(s.packBytes),
              String(s.blobs),
              formatBytes(s.rawBytes),
              formatBytes(s.logicalBytes),
            ],
          ],
        );
      });
    });

  located(repo.command('copy'))
    .description('copy snapshots to another repository, sending only the data it lacks (creates the destination if needed)')
    .argument('<src>', 'source repository directory or s3://bucket/prefix')
    .argument('<dst>', 'destination repository directory or s3://bucket/prefix')
    .option('--snapshot <id...>', 'copy only these snapshots (ids or unique prefixes; default all)')
    .option('--check-dest', 'read the destination packs the copy relies on and replace damaged ones')
    .option('--json', 'print the report as JSON')
    .option(...lockWait)
    .action(async (srcDir: string, dstDir: string, o: { snapshot?: string[]; checkDest?: boolean; json?: boolean } & LockOpt) => {
      const eng = await engine();
      const { copySnapshots } = await import('../engine/repo/copy.js');
      await withRepo(srcDir, o, async (src) => {
        let dst: Repository;
        let created = false;
        try {
          dst = await openRepo(dstDir, o);
        } catch (err) {
          if ((err as { code?: string }).code !== 'REPO_NOT_FOUND') throw err;
          const { chunker, packSize, compressionLevel } = src.config;
          dst = await eng.initRepository(dstDir, locationOpts(dstDir, o), {
            chunker: { minSize: chunker.minSize, avgSize: chunker.avgSize, maxSize: chunker.maxSize },
            packSize,
            compressionLevel,
          });
          created = true;
        }
        try {
          if (created) note(io, `created repository ${dst.config.id.slice(0, 8)} at ${where(dstDir)}`);
          const bar = new ProgressBar(io, 'copy');
          const rep = await copySnapshots(src, dst, {
            snapshots: o.snapshot ?? [],
            checkDestination: !!o.checkDest,
            onProgress: bar.update,
          });
          bar.done();
          if (o.json) return printJson(io, rep);
          println(
            io,
            `copied ${rep.copied.length} snapshot${rep.copied.length === 1 ? '' : 's'} (${rep.present.length} already there): ` +
              `${rep.blobsSent} blobs, ${formatBytes(rep.rawBytesSent)} of data, ${formatBytes(rep.bytesSent)} sent in ${bar.elapsed}` +
              (rep.packsRepaired ? `; replaced ${rep.packsRepaired} missing or damaged packs` : ''),
          );
        } finally {
          await dst.close();
        }
      });
    });

  located(repo.command('verify'))
    .description('check the repository; exits non-zero when something is wrong')
    .argument('<repo>', 'repository directory or s3://bucket/prefix')
    .option('--read-data', 'also read all data and check every hash')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, o: { readData?: boolean; json?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => {
        const rep = await r.verify({ readData: !!o.readData });
        const errors = rep.findings.filter((f) => f.severity === 'error');
        if (o.json) printJson(io, rep);
        else {
          for (const f of rep.findings) println(io, `${f.severity}: ${f.message}`);
          println(
            io,
            `${errors.length === 0 ? 'no errors' : `${errors.length} error${errors.length === 1 ? '' : 's'}`}: ${rep.snapshots} snapshots, ` +
              `${rep.packs} packs, ${rep.blobs} blobs${o.readData ? `, ${formatBytes(rep.bytesRead)} read` : ''}`,
          );
        }
        if (errors.length > 0) process.exitCode = 1;
      });
    });
}
