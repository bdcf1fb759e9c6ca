// Measuring external commands: page-cache dropping, a GNU time wrapper that
// reports wall/CPU/peak RSS of a shell command including a trailing `sync`,
// the bytes it read and wrote (from /proc/PID/io of the wrapping shell, which
// includes every reaped child: the same source for kova, restic and cp -a),
// and disk usage of repositories.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

export interface Measurement {
  wallS: number;
  userS: number;
  sysS: number;
  /** Largest resident set of any single process in the command's tree (GNU time %M). */
  maxRssKiB: number;
  /** Bytes fetched from storage (read_bytes): with a cold page cache, what the disk delivered. */
  readBytes?: number;
  /** Bytes sent to storage (write_bytes minus cancelled_write_bytes). */
  writeBytes?: number;
}

/** Parses /proc/PID/io. */
export function parseProcIo(text: string): { readBytes: number; writeBytes: number } {
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { readBytes: field('read_bytes'), writeBytes: field('write_bytes') - (field('cancelled_write_bytes') || 0) };
}

export interface Command {
  /** bash script; runs with `set -o pipefail`. */
  script: string;
  env?: Record<string, string>;
}

export interface DiskUsage {
  apparentBytes: number;
  allocatedBytes: number;
}

/** Quotes a value for bash. */
export function sh(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Exits with installation advice when GNU time is missing. */
export function requireGnuTime(): void {
  if (existsSync(GNU_TIME)) return;
  console.error(`${GNU_TIME} not found: install GNU time with \`apt-get install time\``);
  process.exit(2);
}

let dropCachesWarned = false;

/** Flushes dirty pages and empties the page cache so every run starts cold. */
export function dropCaches(): void {
  execFileSync('sync');
  try {
    execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
  } catch {
    if (!dropCachesWarned) console.warn('warning: cannot drop the page cache (not root?); runs are not cold-cache');
    dropCachesWarned = true;
  }
}

/** Runs `cmd` and `sync` under GNU time after dropping caches; rejects on failure. */
export async function measure(cmd: Command, scratchDir: string): Promise<{ m: Measurement; stdout: string }> {
  dropCaches();
  const timeFile = join(scratchDir, 'time.out');
  const ioFile = join(scratchDir, 'io.out');
  rmSync(ioFile, { force: true });
  const script = `set -o pipefail; ${cmd.script} && sync; rc=$?; cat /proc/$$/io > ${sh(ioFile)}; exit $rc`;
  const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, 'bash', '-c', script], {
    env: { ...process.env, ...cmd.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => stdout.push(d));
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const timeLines = readFileSync(timeFile, 'utf8').trim().split('\n');
  rmSync(timeFile);
  if (code !== 0) throw new Error(`exit status ${code ?? 'signal'}: ${cmd.script}\n${stderr.trim()}`);
  const [wallS, userS, sysS, maxRssKiB] = (timeLines.at(-1) ?? '').split(' ').map(Number);
  if (wallS === undefined || userS === undefined || sysS === undefined || maxRssKiB === undefined || Number.isNaN(maxRssKiB)) {
    throw new Error(`cannot parse GNU time output: ${timeLines.join(' | ')}`);
  }
  const io = existsSync(ioFile) ? parseProcIo(readFileSync(ioFile, 'utf8')) : undefined;
  rmSync(ioFile, { force: true });
  return { m: { wallS, userS, sysS, maxRssKiB, ...io }, stdout: Buffer.concat(stdout).toString() };
}

/** Apparent and allocated size of a file or directory tree (`du -sb`, `du -sk`). */
export function diskUsage(path: string): DiskUsage {
  const du = (flag: string): number => Number(execFileSync('du', [flag, path], { encoding: 'utf8' }).split('\t')[0]);
  return { apparentBytes: du('-sb'), allocatedBytes: du('-sk') * 1024 };
}
