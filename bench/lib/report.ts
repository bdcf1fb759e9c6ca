// Result types of the engine suite and their presentation: the per-step table
// with ratios to restic (and to cp -a for restores), PASS/MISS targets, a
// Markdown version for notes, and the JSON results file.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DiskUsage, Measurement } from './measure.js';
import type { TreeComparison } from './verify.js';
import type { MutationStats, VolumeStats } from './volume.js';

export type Step = 'first' | 'incremental' | 'restore';
export type ToolName = 'tar|zstd -1' | 'cp -a' | 'restic' | 'kova';

export interface Row {
  tool: ToolName;
  step: Step;
  m: Measurement;
  /** Repository (or archive) size after a snapshot step. */
  repo?: DiskUsage;
  details?: unknown;
}

export interface RestoreCheck {
  tool: ToolName;
  comparison: TreeComparison;
  sparseAllocatedBytes: number;
}

export interface Target {
  name: string;
  value: string;
  status: 'PASS' | 'MISS' | 'n/a';
}

export interface EngineResults {
  suite: 'engine';
  startedAt: string;
  machine: Record<string, string | number>;
  scale: number;
  volume: VolumeStats;
  mutation: MutationStats;
  order: string;
  rows: Row[];
  failures: { tool: ToolName; step: string; error: string }[];
  skipped: { tool: ToolName; reason: string }[];
  sparse: { sourceAllocatedBytes: number; cpAllocatedBytes: number | undefined };
  restores: RestoreCheck[];
  targets: Target[];
}

const STEP_LABEL: Record<Step, string> = { first: 'first snapshot', incremental: 'incremental', restore: 'restore' };
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
  return `[${row.tool}] ${STEP_LABEL[row.step]}: wall ${row.m.wallS.toFixed(2)} s  cpu ${cpu(row.m).toFixed(2)} s  peak RSS ${bytes(rss(row.m))}${repo}`;
}

const HEADERS = ['Step', 'Tool', 'Wall', 'CPU', 'Peak RSS', 'Repo (apparent / allocated)', 'Wall vs restic', 'CPU vs restic', 'RSS vs restic', 'Repo vs restic', 'Wall vs cp -a'];

function tableCells(rows: Row[]): string[][] {
  return rows.map((r) => {
    const restic = find(rows, 'restic', r.step);
    const cp = r.step === 'restore' && r.tool !== 'cp -a' ? find(rows, 'cp -a', 'restore') : undefined;
    const vsRestic = r.tool !== 'restic' && restic;
    return [
      STEP_LABEL[r.step],
      r.tool,
      `${r.m.wallS.toFixed(2)} s`,
      `${cpu(r.m).toFixed(2)} s`,
      bytes(rss(r.m)),
      r.repo ? `${bytes(r.repo.apparentBytes)} / ${bytes(r.repo.allocatedBytes)}` : '',
      vsRestic ? ratio(r.m.wallS, restic.m.wallS) : '',
      vsRestic ? ratio(cpu(r.m), cpu(restic.m)) : '',
      vsRestic ? ratio(rss(r.m), rss(restic.m)) : '',
      vsRestic && r.repo && restic.repo ? ratio(r.repo.allocatedBytes, restic.repo.allocatedBytes) : '',
      cp ? ratio(r.m.wallS, cp.m.wallS) : '',
    ];
  });
}

function sortRows(rows: Row[]): Row[] {
  const steps: Step[] = ['first', 'incremental', 'restore'];
  const tools: ToolName[] = ['tar|zstd -1', 'cp -a', 'restic', 'kova'];
  return rows.slice().sort((a, b) => steps.indexOf(a.step) - steps.indexOf(b.step) || tools.indexOf(a.tool) - tools.indexOf(b.tool));
}

function textTable(headers: string[], cells: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]): string => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function markdownTable(headers: string[], cells: string[][]): string {
  const line = (row: string[]): string => `| ${row.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...cells.map(line)].join('\n');
}

/** Evaluates kova's targets against restic and cp -a. */
export function evaluateTargets(rows: Row[]): Target[] {
  const target = (name: string, value: number | undefined, base: number | undefined, limit: number): Target => {
    if (value === undefined || base === undefined) return { name, value: '-', status: 'n/a' };
    return { name, value: times(value / base), status: value / base <= limit ? 'PASS' : 'MISS' };
  };
  const wall = (tool: ToolName, step: Step): number | undefined => find(rows, tool, step)?.m.wallS;
  const kovaRows = rows.filter((r) => r.tool === 'kova');
  const peak = kovaRows.length === 3 ? Math.max(...kovaRows.map((r) => rss(r.m))) : undefined;
  return [
    target('first snapshot wall <= 1.0x restic', wall('kova', 'first'), wall('restic', 'first'), 1.0),
    target('incremental wall <= 0.5x restic', wall('kova', 'incremental'), wall('restic', 'incremental'), 0.5),
    target('restore wall <= 1.0x restic', wall('kova', 'restore'), wall('restic', 'restore'), 1.0),
    target('restore wall <= 1.5x cp -a', wall('kova', 'restore'), wall('cp -a', 'restore'), 1.5),
    target(
      'repository size (allocated, after both snapshots) <= 1.05x restic',
      find(rows, 'kova', 'incremental')?.repo?.allocatedBytes,
      find(rows, 'restic', 'incremental')?.repo?.allocatedBytes,
      1.05,
    ),
    peak === undefined
      ? { name: 'kova peak RSS < 400 MB', value: '-', status: 'n/a' }
      : { name: 'kova peak RSS < 400 MB', value: bytes(peak), status: peak < RSS_LIMIT_BYTES ? 'PASS' : 'MISS' },
  ];
}

function describeRestore(check: RestoreCheck): string {
  const c = check.comparison;
  const content = c.contentEqual ? 'content identical (diff -r)' : `CONTENT DIFFERS: ${c.diffExcerpt.join(' | ')}`;
  const kinds = Object.entries(c.mismatchesByKind).map(([k, n]) => `${k} ${n}`).join(', ');
  const meta = c.metadataMismatches === 0 ? 'metadata identical (type, mode, owner, size, mtime ns, hard links)' : `metadata mismatches: ${kinds}`;
  return `  ${check.tool}: ${content}; ${meta}`;
}

/** Everything after the measurements: table, checks, targets, Markdown. */
export function summary(results: EngineResults): string {
  const rows = sortRows(results.rows);
  const cells = tableCells(rows);
  const v = results.volume;
  const out: string[] = [];
  out.push('', '== Results ==', textTable(HEADERS, cells), '');
  out.push('CPU = user + sys of the whole process tree; peak RSS = largest single process (GNU time %M); every command includes a final sync and starts with a dropped page cache.');
  out.push('', 'Restored tree vs source (the mutated volume):');
  for (const check of results.restores) {
    out.push(describeRestore(check));
    for (const example of check.comparison.examples) out.push(`      ${example}`);
  }
  out.push('', `Sparse file ${v.sparse.path} (${bytes(v.sparse.logicalBytes)} logical, ${bytes(v.sparse.dataBytes)} data), allocated on disk:`);
  out.push(`  source ${bytes(results.sparse.sourceAllocatedBytes)}`);
  if (results.sparse.cpAllocatedBytes !== undefined) out.push(`  cp -a ${bytes(results.sparse.cpAllocatedBytes)}`);
  for (const check of results.restores) out.push(`  ${check.tool} restore ${bytes(check.sparseAllocatedBytes)}`);
  out.push('', 'Targets (kova):');
  for (const t of results.targets) out.push(`  ${t.status.padEnd(4)}  ${t.name}: ${t.value}`);
  for (const s of results.skipped) out.push('', `Skipped ${s.tool}: ${s.reason}`);
  for (const f of results.failures) out.push('', `FAILED ${f.tool} ${f.step}: ${f.error}`);

  out.push('', '== Markdown ==', '');
  out.push(
    `Engine benchmark, ${results.startedAt}, scale ${results.scale}: ${v.files} files, ${v.dirs} dirs, ` +
      `${bytes(v.dataBytes)} of data (${bytes(v.apparentBytes)} apparent incl. a ${bytes(v.sparse.logicalBytes)} sparse file); ` +
      `incremental after ${results.mutation.changedPercent.toFixed(2)}% change. ` +
      `${results.machine.cpus} CPUs, ${results.machine.restic}.`,
    '',
  );
  out.push(markdownTable(HEADERS, cells), '');
  for (const t of results.targets) out.push(`- **${t.status}** ${t.name}: ${t.value}`);
  for (const check of results.restores) out.push(`- ${describeRestore(check).trim()}; sparse file allocated ${bytes(check.sparseAllocatedBytes)}`);
  return out.join('\n');
}

/** Writes the results as `results-<timestamp>.json` into `dir`; returns the path. */
export function writeResults(dir: string, results: EngineResults): string {
  const path = join(dir, `results-${results.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, JSON.stringify(results, null, 2) + '\n');
  return path;
}
