/**
 * repo: `kova repo …`, the operator's commands on one repository on local
 * disk (init, snapshot, list, restore, delete, gc, stats, verify).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes, formatElapsed } from '../core/units.js';
import type { SnapshotRecord, Repository } from '../engine/index.js';
import { type Io, ProgressBar, note, printJson, println, table } from './output.js';

interface LockOpt {
  lockWait?: string;
}

/** engine loads the engine (and its native addon) only for `repo` commands. */
const engine = () => import('../engine/repo/repository.js');

async function openRepo(dir: string, o: LockOpt): Promise<Repository> {
  const wait = o.lockWait === undefined ? 0 : Number(o.lockWait);
  if (!Number.isFinite(wait) || wait < 0) throw new Error(`--lock-wait must be a number of seconds, got ${o.lockWait}`);
  return (await engine()).Repository.open(dir, { lockTimeoutMs: wait * 1000 });
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

export function registerRepo(program: Command, io: Io): void {
  const repo = program.command('repo').description('operate on a snapshot repository on local disk');
  const lockWait = ['--lock-wait <seconds>', 'wait this long for a conflicting lock (default: fail at once)'] as const;

  repo
    .command('init')
    .description('create a repository in an empty or absent directory')
    .argument('<repo>', 'repository directory')
    .action(async (dir: string) => {
      const r = await (await engine()).Repository.init(dir);
      await r.close();
      println(io, `created repository ${r.config.id.slice(0, 8)} at ${path.resolve(dir)}`);
    });

  repo
    .command('snapshot')
    .description('snapshot a directory; prints the new snapshot id')
    .argument('<repo>', 'repository directory')
    .argument('<dir>', 'directory to capture')
    .option('--parent <id>', 'compare against this snapshot: unchanged files are not read (default: the latest snapshot of the same directory)')
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

  repo
    .command('list')
    .description('list snapshots, oldest first')
    .argument('<repo>', 'repository directory')
    .option('--json', 'print a JSON array')
    .action(async (dir: string, o: { json?: boolean }) => {
      await withRepo(dir, {}, async (r) => {
        const list = await r.listSnapshots();
        if (o.json) return printJson(io, list.map(recordJson));
        if (list.length === 0) return println(io, 'no snapshots');
        table(
          io,
          ['ID', 'CREATED', 'LABEL', 'FILES', 'SIZE', 'ADDED'],
          list.map((s) => [s.id.slice(0, 8), s.time, s.label ?? '', String(s.stats.files), formatBytes(s.stats.bytes), formatBytes(s.stats.storedBytes)]),
        );
      });
    });

  repo
    .command('restore')
    .description('restore a snapshot into an empty or absent directory')
    .argument('<repo>', 'repository directory')
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

  repo
    .command('delete')
    .description('delete a snapshot (run gc to reclaim its space)')
    .argument('<repo>', 'repository directory')
    .argument('<id>', 'snapshot id or unique prefix')
    .option(...lockWait)
    .action(async (dir: string, id: string, o: LockOpt) => {
      await withRepo(dir, o, async (r) => {
        const s = await r.deleteSnapshot(id);
        println(io, `deleted snapshot ${s.id}`);
      });
    });

  repo
    .command('gc')
    .description('reclaim the space of data no snapshot uses')
    .argument('<repo>', 'repository directory')
    .option('--json', 'print the report as JSON')
    .option(...lockWait)
    .action(async (dir: string, o: { json?: boolean } & LockOpt) => {
      await withRepo(dir, o, async (r) => {
        const rep = await r.gc();
        if (o.json) return printJson(io, rep);
        println(
          io,
          `gc: ${rep.snapshots} snapshots, ${rep.liveBlobs} live blobs; packs ${rep.packsBefore} → ${rep.packsAfter} ` +
            `(${rep.packsDeleted} deleted, ${rep.packsRepacked} repacked); ${formatBytes(rep.bytesBefore)} → ${formatBytes(rep.bytesAfter)}`,
        );
      });
    });

  repo
    .command('stats')
    .description('show what the repository holds')
    .argument('<repo>', 'repository directory')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { json?: boolean }) => {
      await withRepo(dir, {}, async (r) => {
        const s = await r.stats();
        if (o.json) return printJson(io, s);
        table(
          io,
          ['SNAPSHOTS', 'PACKS', 'STORED', 'BLOBS', 'UNIQUE DATA', 'LOGICAL (ALL SNAPSHOTS)'],
          [[String(s.snapshots), String(s.packs), formatBytes(s.packBytes), String(s.blobs), formatBytes(s.rawBytes), formatBytes(s.logicalBytes)]],
        );
      });
    });

  repo
    .command('verify')
    .description('check the repository; exits non-zero when something is wrong')
    .argument('<repo>', 'repository directory')
    .option('--read-data', 'also read all data and check every hash')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, o: { readData?: boolean; json?: boolean }) => {
      await withRepo(dir, {}, async (r) => {
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
