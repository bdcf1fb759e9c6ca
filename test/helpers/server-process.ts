/**
 * server-process: a real `kova serve` in a child process, driven over HTTP
 * with the admin token it writes on a fresh data directory. The crash suites
 * start it with KOVA_FAULT=<point> so it SIGKILLs itself at that point, then
 * start it again on the same data directory and check what it recovers.
 *
 * The server runs bin/kova.js (the compiled CLI) when dist/ is up to date
 * with src/, else the TypeScript sources (test/fixtures/kova-cli.ts under
 * tsx, slower to start). KOVA_TEST_SERVER=dist or =source forces one.
 *
 * Services of the process runtime outlive the server (they are detached):
 * killServices() ends the ones recorded under DATA/runtime, by pid, after
 * checking each is still the recorded process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ProcStat, groupMembers, readStat } from '../../src/runtime/process/proc.js';
import type { Api, ApiResult } from './flows.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface KovaServer {
  readonly child: ChildProcess;
  readonly url: string;
  readonly dataDir: string;
  readonly token: string;
  readonly api: Api;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** stdout and stderr so far (for failure messages). */
  output(): string;
  /** waitExit waits for the process to exit (failing after timeoutMs). */
  waitExit(timeoutMs?: number): Promise<Exit>;
  /** stop asks the server to shut down (SIGTERM), SIGKILL after 15 s. */
  stop(): Promise<Exit>;
  /** kill ends the server at once (SIGKILL). */
  kill(): Promise<Exit>;
}

export interface StartOptions {
  readonly dataDir: string;
  /** KOVA_FAULT: the crash point to arm. */
  readonly fault?: string;
  readonly runtime?: 'process' | 'docker';
  readonly args?: readonly string[];
  /** Options for node itself, e.g. --unhandled-rejections=strict. */
  readonly nodeArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

/** freePort asks the kernel for a port nobody listens on. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * distIsFresh tells whether dist/ holds a compiled file, newer than its
 * source, for every source file of the CLI (tests excluded, as in
 * tsconfig.build.json).
 */
export function distIsFresh(): boolean {
  const src = path.join(ROOT, 'src');
  const walk = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  for (const f of walk(src)) {
    if (!f.endsWith('.ts') || f.endsWith('.test.ts') || f.endsWith('.d.ts') || path.basename(f) === 'testing.ts') continue;
    const out = path.join(ROOT, 'dist', path.relative(src, f)).replace(/\.ts$/, '.js');
    const built = fs.statSync(out, { throwIfNoEntry: false });
    if (!built || built.mtimeMs < fs.statSync(f).mtimeMs) return false;
  }
  return true;
}

let chosen: { program: string; args: string[]; kind: 'dist' | 'source' } | null = null;

/** The command that runs `kova`: the compiled CLI when asked for or up to date (it starts faster), else the sources. */
export function command(): { program: string; args: string[]; kind: 'dist' | 'source' } {
  if (chosen) return chosen;
  const mode = process.env.KOVA_TEST_SERVER ?? 'auto';
  const dist = mode === 'dist' || (mode === 'auto' && distIsFresh());
  chosen = dist
    ? { program: process.execPath, args: [path.join(ROOT, 'bin', 'kova.js')], kind: 'dist' }
    : { program: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'test', 'fixtures', 'kova-cli.ts')], kind: 'source' };
  return chosen;
}

/** serverKind says how startKova runs the server: 'dist' (bin/kova.js) or 'source' (tsx). */
export function serverKind(): 'dist' | 'source' {
  return command().kind;
}

export async function startKova(opts: StartOptions): Promise<KovaServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { program, args } = command();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.KOVA_FAULT;
  if (opts.fault) env.KOVA_FAULT = opts.fault;
  const child = spawn(
    program,
    [
      ...(opts.nodeArgs ?? []),
      ...args,
      'serve',
      '--data-dir',
      opts.dataDir,
      '--port',
      String(port),
      '--runtime',
      opts.runtime ?? 'process',
      '--docker-network',
      'none',
      '--min-snapshot-interval',
      '1s',
      '--stop-timeout',
      '2',
      '--rate-limit',
      '1000000',
      '--log-level',
      process.env.KOVA_TEST_LOG ?? 'warn',
      ...(opts.args ?? []),
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const keep = (b: Buffer): void => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exit: Exit | null = null;
  void exited.then((e) => {
    exit = e;
  });

  const waitExit = async (timeoutMs = 60_000): Promise<Exit> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`kova serve did not exit within ${timeoutMs} ms; output:\n${out.slice(-4000)}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  // Ready once /healthz answers; the admin key is written before the server listens.
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exit) throw new Error(`kova serve exited before it was ready (${JSON.stringify(exit)}); output:\n${out.slice(-4000)}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`kova serve was not ready within the deadline; output:\n${out.slice(-4000)}`);
    }
    await sleep(50);
  }
  const token = fs.readFileSync(path.join(opts.dataDir, 'admin.key'), 'utf8').trim();

  const api: Api = async (method, p, body) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed } as ApiResult;
  };

  return {
    child,
    url,
    dataDir: opts.dataDir,
    token,
    api,
    exited,
    output: () => out,
    waitExit,
    async stop() {
      if (exit) return exit;
      child.kill('SIGTERM');
      try {
        return await waitExit(15_000);
      } catch {
        child.kill('SIGKILL');
        return waitExit(10_000);
      }
    },
    async kill() {
      if (exit) return exit;
      child.kill('SIGKILL');
      return waitExit(10_000);
    },
  };
}

/* ---- the process runtime's services, from its state files ------------------------------ */

export interface ServiceLeader {
  readonly deploymentId: string;
  readonly service: string;
  readonly pid: number;
  readonly startTime: string;
  readonly bootId: string;
}

/** serviceLeaders reads the leader of every service the process runtime recorded under DATA/runtime. */
export function serviceLeaders(dataDir: string, deploymentId?: string): ServiceLeader[] {
  const dir = path.join(dataDir, 'runtime', 'deployments');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: ServiceLeader[] = [];
  for (const n of names) {
    const id = n.slice(0, -'.json'.length);
    if (deploymentId !== undefined && id !== deploymentId) continue;
    let state: { services?: Record<string, { pid: number; startTime: string; bootId: string }> };
    try {
      state = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as typeof state;
    } catch {
      continue; // being replaced
    }
    for (const [service, rec] of Object.entries(state.services ?? {})) out.push({ deploymentId: id, service, ...rec });
  }
  return out;
}

/** leaderStat is the leader's /proc stat if it is still the recorded process, else null. */
export function leaderStat(l: ServiceLeader): ProcStat | null {
  const st = readStat(l.pid);
  if (!st || st.startTime !== l.startTime || st.state === 'Z' || st.state === 'X') return null;
  return st;
}

/** groupStates lists the /proc state letter of every live process of the service's group. */
export function groupStates(l: ServiceLeader): string[] {
  return groupMembers(l).map((m) => m.state);
}

/** killServices SIGKILLs every process of every recorded service group (checked against the records). */
export function killServices(dataDir: string): void {
  for (const l of serviceLeaders(dataDir)) {
    for (const m of groupMembers(l)) {
      try {
        process.kill(m.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
