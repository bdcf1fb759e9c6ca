/**
 * sequence: a service that appends an increasing counter to a file in its
 * volume many times a second, and the checks that tell whether a copy of that
 * file was taken at one consistent moment: the lines are exactly 1..N, with
 * no gap, no duplicate and no torn (partial) last line.
 *
 * The service continues from the last line of the file it finds, so after a
 * restore the live file keeps being a clean 1..M sequence that starts from
 * the restored data. On each start it appends "<pid> <start value>" to a
 * boots file next to the sequence, which tells a test that the service was
 * restarted and what it found when it came up.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface SeqScriptOptions {
  /** Path of the sequence file as the service sees it (default `seq`: relative to the working directory). */
  readonly file?: string;
  /** Path of the boots file (default: `boots` next to `file`). */
  readonly boots?: string;
  /** Also append each value to this file (another volume), right after `file`. */
  readonly mirror?: string;
  /** Seconds between two values (default 0.005). */
  readonly sleep?: number;
  /** Extra shell commands run once at start, before the loop. */
  readonly prelude?: string;
}

/** seqScript is the shell script (for `sh -c`) of the sequence writer. */
export function seqScript(opts: SeqScriptOptions = {}): string {
  const file = opts.file ?? 'seq';
  const boots = opts.boots ?? (file.includes('/') ? `${file.slice(0, file.lastIndexOf('/'))}/boots` : 'boots');
  const mirror = opts.mirror ? ` echo $i >> ${opts.mirror};` : '';
  const prelude = opts.prelude ? `${opts.prelude}; ` : '';
  return (
    `${prelude}i=$(tail -n1 ${file} 2>/dev/null); i=\${i:-0}; echo "$$ $i" >> ${boots}; ` +
    `while true; do i=$((i+1)); echo $i >> ${file};${mirror} sleep ${opts.sleep ?? 0.005}; done`
  );
}

/**
 * sequenceProblem returns null when `text` is exactly the lines 1..N (N >= 0)
 * each ended by a newline, else a description of the first problem.
 */
export function sequenceProblem(text: string): string | null {
  if (text === '') return null;
  if (!text.endsWith('\n')) return `torn last line: ${JSON.stringify(text.slice(text.lastIndexOf('\n') + 1))} has no newline`;
  const lines = text.slice(0, -1).split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== String(i + 1)) {
      return `line ${i + 1} is ${JSON.stringify(lines[i])}, expected "${i + 1}" (previous ${JSON.stringify(lines[i - 1] ?? null)})`;
    }
  }
  return null;
}

/** sequenceLength is the number of complete lines of `text` (the last value of a clean sequence). */
export function sequenceLength(text: string): number {
  if (text === '') return 0;
  return text.split('\n').length - 1;
}

/** readSeq reads a sequence file, '' when it does not exist. */
export function readSeq(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** seqCount counts the complete lines of a sequence file. */
export function seqCount(file: string): number {
  return sequenceLength(readSeq(file));
}

export interface Boot {
  readonly pid: number;
  /** The value the service found in the sequence file when it started. */
  readonly from: number;
}

/** parseBoots reads the lines "<pid> <value>" of a boots file. */
export function parseBoots(text: string): Boot[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [pid, from] = l.trim().split(/\s+/);
      return { pid: Number(pid), from: Number(from) };
    });
}

export function readBoots(dir: string, name = 'boots'): Boot[] {
  return parseBoots(readSeq(path.join(dir, name)));
}

/**
 * addBulk writes `count` small files under <dir>/z/ (sorted after the
 * sequence file): capturing them takes long enough that a writer not frozen
 * during the capture gets ahead between two volumes, which is what the
 * same-moment checks need to be able to fail.
 */
export function addBulk(dir: string, count = 3000): void {
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, 'z', String(i % 30));
    if (i < 30) fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}`), `${i}\n`);
  }
}
