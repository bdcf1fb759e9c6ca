// Result types of the engine suite and their presentation: one table per
// volume with ratios to restic (and to cp -a for restores), PASS/MISS targets
// per volume, the worst ratio of each step across volumes, a Markdown
// version for notes, and the JSON results file.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VolumeName } from './layout.js';
import type { DiskUsage, Measurement } from './measure.js';
import type { TreeComparison } from './verify.js';
import type { MutationStats, VolumeStats } from './volume.js';

export type Step = 'first' | 'unchanged' | 'incremental' | 'restore' | 'delete+gc';
export const STEPS: readonly Step[] = ['first', 'unchanged', 'incremental', 'restore', 'delete+gc'];
export type ToolName = 'tar|zstd -1' | 'cp -a' | 'restic' | 'kova';

export interface Row {
  volume: VolumeName;
  tool: ToolName;
  step: Step;
  m: Measurement;
  /** Repository (or archive) size after a snapshot or gc step. */
  repo?: DiskUsage;
  /** Wall times of every round, in order, when the step was measured in rounds; `m` is the median round's. */
  rounds?: number[];
  details?: unknown;
}

export interface RestoreCheck {
  tool: ToolName;
  comparison: TreeComparison;
  /** Allocated bytes of the restored sparse file, when the volume has one. */
  sparseAllocatedBytes?: number;
}

export interface Target {
  name: string;
  value: string;
  status: 'PASS' | 'MISS' | 'n/a';
}

export interface VolumeResults {
  name: VolumeName;
  stats: VolumeStats;
  mutation: MutationStats;
  restores: RestoreCheck[];
  sparse?: { sourceAllocatedBytes: number; cpAllocatedBytes: number | undefined };
  targets: Target[];
}

/** The largest kova/base wall-time ratio of a step over all volumes. */
export interface Worst {
  step: Step;
  base: 'restic' | 'cp -a';
  ratio: number;
  volume: VolumeName;
}

export interface EngineResults {
  suite: 'engine';
  startedAt: string;
  machine: Record<string, string | number>;
  scale: number;
  order: string;
  volumes: VolumeResults[];
  rows: Row[];
  failures: { volume: VolumeName; tool: ToolName; step: string; error: string }[];
  skipped: { tool: ToolName; reason: string }[];
  worst: Worst[];
}

const STEP_LABEL: Record<Step, string> = {
  first: 'first snapshot',
  unchanged: 'no-change snapshot',
  incremental: 'incremental',
  restore: 'restore',
  'delete+gc': 'delete + gc',
};
const RSS_LIMIT_BYTES = 400e6;

export function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

const cpu = (m: Measurement): number => m.userS + m.sysS;
const rss = (m: Measurement): number => m.maxRssKiB * 1024;
const times = (x: number): string => `${x.toFixed(2)}x`;
const io = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : bytes(n));

function find(rows: Row[], tool: ToolName, step: Step): Row | undefined {
  return rows.find((r) => r.tool === tool && r.step === step);
}

/** `value / base` as "0.62x", or "-" when either side is missing. */
function ratio(value: number | undefined, base: number | undefined): string {
  return value === undefined || base === undefined || base === 0 ? '-' : times(value / base);
}

/** One progress line, printed as soon as a step has been measured. */
export function rowLine(row: Row): string {
  const repo = row.repo ? `  repo ${bytes(row.repo.apparentBytes)} (${bytes(row.repo.allocatedBytes)} allocated)` : '';
  return (
    `[${row.volume}] [${row.tool}] ${STEP_LABEL[row.step]}: wall ${row.m.wallS.toFixed(2)} s  cpu ${cpu(row.m).toFixed(2)} s  ` +
    `peak RSS ${bytes(rss(row.m))}  read ${io(row.m.readBytes)}  written ${io(row.m.writeBytes)}${repo}`
  );
}

const HEADERS = [
  'Step',
  'Tool',
  'Wall',
  'CPU',
  'Peak RSS',
  'Read',
  'Written',
  'Repo (apparent / allocated)',
  'Wall vs restic',
  'CPU vs restic',
  'RSS vs restic',
  'Read vs restic',
  'Written vs restic',
  'Repo vs restic',
  'Wall vs cp -a',
];

/** The cp -a row a step compares with: the copy is the reference for a restore. */
function cpFor(rows: Row[], r: Row): Row | undefined {
  return r.step === 'restore' && r.tool !== 'cp -a' ? find(rows, 'cp -a', 'restore') : undefined;
}

function tableCells(rows: Row[]): string[][] {
  return rows.map((r) => {
    const restic = find(rows, 'restic', r.step);
    const cp = cpFor(rows, r);
    const vsRestic = r.tool !== 'restic' && restic;
    return [
      STEP_LABEL[r.step],
      r.tool,
      `${r.m.wallS.toFixed(2)} s`,
      `${cpu(r.m).toFixed(2)} s`,
      bytes(rss(r.m)),
      io(r.m.readBytes),
      io(r.m.writeBytes),
      r.repo ? `${bytes(r.repo.apparentBytes)} / ${bytes(r.repo.allocatedBytes)}` : '',
      vsRestic ? ratio(r.m.wallS, restic.m.wallS) : '',
      vsRestic ? ratio(cpu(r.m), cpu(restic.m)) : '',
      vsRestic ? ratio(rss(r.m), rss(restic.m)) : '',
      vsRestic ? ratio(r.m.readBytes, restic.m.readBytes) : '',
      vsRestic ? ratio(r.m.writeBytes, restic.m.writeBytes) : '',
      vsRestic && r.repo && restic.repo ? ratio(r.repo.allocatedBytes, restic.repo.allocatedBytes) : '',
      cp ? ratio(r.m.wallS, cp.m.wallS) : '',
    ];
  });
}

function sortRows(rows: Row[]): Row[] {
  const tools: ToolName[] = ['tar|zstd -1', 'cp -a', 'restic', 'kova'];
  return rows.slice().sort((a, b) => STEPS.indexOf(a.step) - STEPS.indexOf(b.step) || tools.indexOf(a.tool) - tools.indexOf(b.tool));
}

function textTable(headers: string[], cells: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function markdownTable(headers: string[], cells: string[][]): string {
  const line = (row: string[]): string => `| ${row.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...cells.map(line)].join('\n');
}

/** Evaluates kova's targets against restic and cp -a on one volume's rows. */
export function evaluateTargets(rows: Row[]): Target[] {
  const target = (name: string, value: number | undefined, base: number | undefined, limit: number): Target => {
    if (value === undefined || base === undefined) return { name, value: '-', status: 'n/a' };
    return { name, value: times(value / base), status: value / base <= limit ? 'PASS' : 'MISS' };
  };
  const wall = (tool: ToolName, step: Step): number | undefined => find(rows, tool, step)?.m.wallS;
  const kovaRows = rows.filter((r) => r.tool === 'kova');
  const peak = kovaRows.length > 0 ? Math.max(...kovaRows.map((r) => rss(r.m))) : undefined;
  // The goals of the performance work: ratios to restic 0.14 (and cp -a) measured in the same run.
  return [
    target('first snapshot wall <= 0.7x restic', wall('kova', 'first'), wall('restic', 'first'), 0.7),
    target('incremental wall <= 0.5x restic', wall('kova', 'incremental'), wall('restic', 'incremental'), 0.5),
    target('restore wall <= 0.8x restic', wall('kova', 'restore'), wall('restic', 'restore'), 0.8),
    target('restore wall <= 1.2x cp -a', wall('kova', 'restore'), wall('cp -a', 'restore'), 1.2),
    target('delete + gc wall <= 0.5x restic forget --prune', wall('kova', 'delete+gc'), wall('restic', 'delete+gc'), 0.5),
    target(
      'repository size (allocated, after both snapshots) <= 1.0x restic',
      find(rows, 'kova', 'incremental')?.repo?.allocatedBytes,
      find(rows, 'restic', 'incremental')?.repo?.allocatedBytes,
      1.0,
    ),
    peak === undefined
      ? { name: 'kova peak RSS < 400 MB', value: '-', status: 'n/a' }
      : { name: 'kova peak RSS < 400 MB', value: bytes(peak), status: peak < RSS_LIMIT_BYTES ? 'PASS' : 'MISS' },
  ];
}

/** worstRatios: for each step, the volume where kova's wall time is furthest from restic's (and cp -a's). */
export function worstRatios(rows: Row[]): Worst[] {
  const out: Worst[] = [];
  const volumes = [...new Set(rows.map((r) => r.volume))];
  for (const step of STEPS) {
    for (const base of ['restic', 'cp -a'] as const) {
      let worst: Worst | undefined;
      for (const volume of volumes) {
        const vr = rows.filter((r) => r.volume === volume);
        const k = find(vr, 'kova', step);
        const b = find(vr, base, base === 'cp -a' ? 'restore' : step);
        if (!k || !b || b.m.wallS === 0 || (base === 'cp -a' && step !== 'restore')) continue;
        const r = k.m.wallS / b.m.wallS;
        if (!worst || r > worst.ratio) worst = { step, base, ratio: r, volume };
      }
      if (worst) out.push(worst);
    }
  }
  return out;
}

function describeVolume(v: VolumeResults): string {
  const s = v.stats;
  const sparse = s.sparse ? ` (counting the ${bytes(s.sparse.logicalBytes)} sparse file ${s.sparse.path} fully)` : '';
  return (
    `${s.files} files in ${s.dirs} directories, ${s.hardlinks} hard links, ${s.symlinks} symlinks; ` +
    `${bytes(s.dataBytes)} of data excluding holes, ${bytes(s.apparentBytes)} apparent${sparse}; ` +
    `incremental after ${v.mutation.changedPercent.toFixed(2)}% change`
  );
}

function describeRestore(check: RestoreCheck): string {
  const c = check.comparison;
  const content = c.contentEqual ? 'content identical (diff -r)' : `CONTENT DIFFERS: ${c.diffExcerpt.join(' | ')}`;
  const kinds = Object.entries(c.mismatchesByKind)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const meta =
    c.metadataMismatches === 0 ? 'metadata identical (type, mode, owner, size, mtime ns, hard links)' : `metadata mismatches: ${kinds}`;
  return `  ${check.tool}: ${content}; ${meta}`;
}

const describeWorst = (w: Worst): string => `${STEP_LABEL[w.step]}: kova ${times(w.ratio)} ${w.base} (volume ${w.volume})`;

/** Everything after the measurements: per-volume tables, checks, targets, worst ratios, Markdown. */
export function summary(results: EngineResults): string {
  const out: string[] = [];
  const md: string[] = [];
  md.push(`Engine benchmark, ${results.startedAt}, scale ${results.scale}, ${results.machine.cpus} CPUs, ${results.machine.restic}.`, '');
  for (const v of results.volumes) {
    const rows = sortRows(results.rows.filter((r) => r.volume === v.name));
    const cells = tableCells(rows);
    out.push('', `== Volume ${v.name} ==`, describeVolume(v), '', textTable(HEADERS, cells), '');
    out.push('Restored tree vs source (the mutated volume):');
    for (const check of v.restores) {
      out.push(describeRestore(check));
      for (const example of check.comparison.examples) out.push(`      ${example}`);
    }
    const sp = v.stats.sparse;
    if (sp && v.sparse) {
      out.push('', `Sparse file ${sp.path} (${bytes(sp.logicalBytes)} logical, ${bytes(sp.dataBytes)} data), allocated on disk:`);
      out.push(`  source ${bytes(v.sparse.sourceAllocatedBytes)}`);
      if (v.sparse.cpAllocatedBytes !== undefined) out.push(`  cp -a ${bytes(v.sparse.cpAllocatedBytes)}`);
      for (const check of v.restores)
        if (check.sparseAllocatedBytes !== undefined) out.push(`  ${check.tool} restore ${bytes(check.sparseAllocatedBytes)}`);
    }
    out.push('', 'Targets (kova):');
    for (const t of v.targets) out.push(`  ${t.status.padEnd(4)}  ${t.name}: ${t.value}`);

    md.push(`### Volume ${v.name}`, '', `${describeVolume(v)}.`, '', markdownTable(HEADERS, cells), '');
    for (const t of v.targets) md.push(`- **${t.status}** ${t.name}: ${t.value}`);
    for (const check of v.restores) md.push(`- ${describeRestore(check).trim()}`);
    md.push('');
  }
  out.push('', '== Worst ratio across volumes (wall time) ==');
  for (const w of results.worst) out.push(`  ${describeWorst(w)}`);
  md.push('Worst ratio across volumes (wall time):', '', ...results.worst.map((w) => `- ${describeWorst(w)}`));
  out.push(
    '',
    'CPU = user + sys of the whole process tree; peak RSS = largest single process (GNU time %M); read / written = read_bytes and ' +
      'write_bytes of /proc/PID/io over the whole process tree; every command includes a final sync and starts with a dropped page cache.',
  );
  for (const s of results.skipped) out.push('', `Skipped ${s.tool}: ${s.reason}`);
  for (const f of results.failures) out.push('', `FAILED [${f.volume}] ${f.tool} ${f.step}: ${f.error}`);
  out.push('', '== Markdown ==', '', ...md);
  return out.join('\n');
}

/** Writes the results as `results-<timestamp>.json` into `dir`; returns the path. */
export function writeResults(dir: string, results: EngineResults): string {
  const path = join(dir, `results-${results.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, JSON.stringify(results, null, 2) + '\n');
  return path;
}
