/**
 * exec-process: runs one command next to a service (same working directory
 * and environment) and collects its combined output.
 *
 * The command gets its own process group, so a timeout kills it together
 * with whatever it started. A timed-out or killed command is reported, not
 * thrown: exit code 124 (as timeout(1)) or 128+signal, with a note at the
 * end of the output. A program that cannot be started reports 127.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { TailBuffer } from '../docker/exec-stream.js';
import type { ExecResult } from '../types.js';
import { signalGroup } from './proc.js';

export const EXIT_TIMEOUT = 124;
export const EXIT_NOT_FOUND = 127;

/** After the command exits, how long descendants holding its output pipes may keep them open. */
const DRAIN_MS = 200;

export interface ExecOptions {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Bytes of output kept (the last ones). */
  readonly limit?: number;
}

export function runProcess(cmd: readonly string[], opts: ExecOptions): Promise<ExecResult> {
  const [program, ...rest] = cmd;
  const tail = new TailBuffer(opts.limit ?? 64 * 1024);
  return new Promise<ExecResult>((resolve) => {
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    const child = spawn(program ?? '', rest, { cwd: opts.cwd, env: { ...opts.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const finish = (result: ExecResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      resolve(result);
    };
    const timer = setTimeout(() => {
      if (exit !== null) return; // done; only draining output
      timedOut = true;
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    }, opts.timeoutMs);
    let drain: NodeJS.Timeout | undefined;
    child.stdout.on('data', (b: Buffer) => tail.push(b));
    child.stderr.on('data', (b: Buffer) => tail.push(b));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // started; a later error (kill) changes nothing
      tail.push(Buffer.from(`cannot run "${program ?? ''}": ${err.code ?? err.message}\n`));
      finish({ exitCode: EXIT_NOT_FOUND, output: tail.text() });
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // A background descendant may hold the pipes open: stop waiting for it after a moment.
      drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, DRAIN_MS);
    });
    child.on('close', () => {
      const e = exit ?? { code: null, signal: null };
      if (timedOut) {
        tail.push(Buffer.from(`\n[killed: timed out after ${opts.timeoutMs} ms]\n`));
        finish({ exitCode: EXIT_TIMEOUT, output: tail.text() });
      } else if (e.code !== null) {
        finish({ exitCode: e.code, output: tail.text() });
      } else {
        const signo = e.signal ? (constants.signals[e.signal] ?? 0) : 0;
        tail.push(Buffer.from(`\n[killed by ${e.signal ?? 'a signal'}]\n`));
        finish({ exitCode: 128 + signo, output: tail.text() });
      }
    });
  });
}
