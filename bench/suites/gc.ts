// GC suite: what delete + gc costs as a repository grows, in data and in
// snapshots, side by side with `restic forget --prune`.
//
// For each point (stored data, snapshot count) both tools snapshot the same
// generated directory that many times, with ~2% of its files rewritten
// between two snapshots (half of them text, half random), so the
// repositories hold that many snapshots and a little garbage-to-be per
// snapshot. Then the oldest half of the snapshots is deleted and the space
// reclaimed: kova `repo delete` for each, then one `repo gc`; restic `forget
// --prune` with the same snapshots. Both steps are measured with a cold page
// cache and a final sync (bench/lib/measure.ts), and the table gives wall,
// CPU, peak RSS, the repository before and after, and the ratio to restic.
// Snapshots taken to build the repositories are not measured.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomContent, textContent } from '../lib/content.js';
import { diskUsage, measure, requireGnuTime } from '../lib/measure.js';
import { bytes } from '../lib/report.js';
import type { Suite, SuiteOptions } from '../lib/suite.js';
import { kova, restic, type SnapshotTool } from '../lib/tools.js';

/** Files in a directory of the generated volume. */
const PER_DIR = 200;
/** Mean file size: files are 1-64 KiB. */
const MEAN_FILE = 32 * 1024;
/** Share of files rewritten between two snapshots. */
const CHANGED = 0.02;

interface Point {
  /** Data in the volume (before dedup and compression). */
  dataBytes: number;
  snapshots: number;
}

interface ToolRow {
  tool: 'kova' | 'restic';
  wallS: number;
  cpuS: number;
  maxRssMB: number;
  repoBeforeBytes: number;
  repoAfterBytes: number;
}

interface PointResult extends Point {
  files: number;
  rows: ToolRow[];
  ratio?: number;
}

function points(scale: number): Point[] {
  const mb = (n: number): number => Math.round(n * scale) * 1024 * 1024;
  const count = (n: number): number => Math.max(4, Math.round(n * Math.min(1, scale * 2)));
  return [
    { dataBytes: mb(128), snapshots: count(10) },
    { dataBytes: mb(128), snapshots: count(40) },
    { dataBytes: mb(512), snapshots: count(10) },
    { dataBytes: mb(512), snapshots: count(40) },
  ];
}

/** fileSize is the deterministic size of file `i` (1-64 KiB). */
const fileSize = (i: number): number => 1024 + ((i * 2_654_435_761) % (63 * 1024));

/** writeFile writes version `v` of file `i` (even files text, odd files random). */
function writeFile(root: string, i: number, v: number): void {
  const seed = i * 1_000 + v;
  const data = i % 2 === 0 ? textContent(seed, fileSize(i)) : randomContent(seed, fileSize(i));
  writeFileSync(join(root, `d${Math.floor(i / PER_DIR)}`, `f${i}`), data);
}

function generate(root: string, files: number): void {
  rmSync(root, { recursive: true, force: true });
  for (let d = 0; d * PER_DIR < files; d++) mkdirSync(join(root, `d${d}`), { recursive: true });
  for (let i = 0; i < files; i++) writeFile(root, i, 0);
}

/** mutate rewrites a different ~2% of the files for snapshot `k`. */
function mutate(root: string, files: number, k: number): void {
  const n = Math.max(1, Math.round(files * CHANGED));
  for (let j = 0; j < n; j++) writeFile(root, (k * n + j) % files, k);
}

async function runPoint(p: Point, work: string, tools: SnapshotTool[], log: (m: string) => void): Promise<PointResult> {
  const files = Math.max(PER_DIR, Math.round(p.dataBytes / MEAN_FILE));
  const src = join(work, 'src');
  generate(src, files);
  const ids = new Map<string, string[]>();
  for (const t of tools) {
    rmSync(join(work, t.name), { recursive: true, force: true });
    t.init(join(work, t.name));
    ids.set(t.name, []);
  }
  for (let k = 0; k < p.snapshots; k++) {
    if (k > 0) mutate(src, files, k);
    for (const t of tools) {
      const { script, env } = t.snapshot(join(work, t.name), src);
      const out = execFileSync('bash', ['-c', script], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      ids.get(t.name)!.push(t.parseSnapshot(out).id);
    }
  }
  log(`  ${files} files, ${p.snapshots} snapshots taken; deleting the oldest ${Math.floor(p.snapshots / 2)}`);
  const rows: ToolRow[] = [];
  for (const t of tools) {
    const repo = join(work, t.name);
    const before = diskUsage(repo).apparentBytes;
    const { m } = await measure(t.deleteAndGc(repo, ids.get(t.name)!.slice(0, Math.floor(p.snapshots / 2))), work);
    rows.push({
      tool: t.name,
      wallS: m.wallS,
      cpuS: m.userS + m.sysS,
      maxRssMB: m.maxRssKiB / 1024,
      repoBeforeBytes: before,
      repoAfterBytes: diskUsage(repo).apparentBytes,
    });
    rmSync(repo, { recursive: true, force: true });
  }
  const k = rows.find((r) => r.tool === 'kova');
  const r = rows.find((r) => r.tool === 'restic');
  return { ...p, files, rows, ratio: k && r ? k.wallS / r.wallS : undefined };
}

export const gcSuite: Suite = {
  description:
    'delete the oldest half of 10-40 snapshots + gc, on 128 and 512 MB repositories (times --scale): kova vs restic forget --prune',
  async run(o: SuiteOptions): Promise<number> {
    requireGnuTime();
    const log = (m: string): void => console.log(m);
    const all: SnapshotTool[] = [];
    if (o.only.has('kova')) all.push(kova(o.repoRoot));
    if (o.only.has('restic')) all.push(restic(join(o.workDir, 'gc', 'restic-cache')));
    const tools = all.filter((t) => {
      const why = t.unavailable();
      if (why) console.warn(`skipping ${t.name}: ${why}`);
      return !why;
    });
    if (tools.length === 0) return 1;
    const work = join(o.workDir, 'gc', 'run');
    mkdirSync(work, { recursive: true });
    const results: PointResult[] = [];
    try {
      for (const p of points(o.scale)) {
        log(`gc: ${bytes(p.dataBytes)} of data, ${p.snapshots} snapshots`);
        results.push(await runPoint(p, work, tools, log));
      }
    } finally {
      if (!o.keep) rmSync(work, { recursive: true, force: true });
    }
    console.log('\n| data | files | snapshots (deleted) | tool | wall | CPU | peak RSS | repository before → after | kova / restic |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const res of results)
      for (const row of res.rows)
        console.log(
          `| ${bytes(res.dataBytes)} | ${res.files} | ${res.snapshots} (${Math.floor(res.snapshots / 2)}) | ${row.tool} | ` +
            `${row.wallS.toFixed(2)} s | ${row.cpuS.toFixed(2)} s | ${row.maxRssMB.toFixed(0)} MB | ` +
            `${bytes(row.repoBeforeBytes)} → ${bytes(row.repoAfterBytes)} | ${row.tool === 'kova' && res.ratio !== undefined ? `${res.ratio.toFixed(2)}×` : ''} |`,
        );
    const file = join(o.workDir, `gc-${new Date().toISOString().replaceAll(':', '-')}.json`);
    writeFileSync(file, JSON.stringify({ load: execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim(), results }, null, 2));
    console.log(`\nresults: ${file}`);
    return 0;
  },
};
