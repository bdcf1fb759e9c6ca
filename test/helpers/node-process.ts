/**
 * node-process: a real `kova node` in a child process (the compiled CLI or
 * the sources, as server-process chooses), with the process runtime, for
 * tests that script the control plane it dials. KOVA_FAULT arms a crash
 * point, as for `kova serve`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Exit, command } from './server-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface KovaNode {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  output(): string;
  /** stop asks the node to shut down (SIGTERM), SIGKILL after 15 s. */
  stop(): Promise<Exit>;
  /** kill ends the node at once (SIGKILL). */
  kill(): Promise<Exit>;
}

export function startKovaNode(opts: {
  dataDir: string;
  controlPlane: string;
  token: string;
  fault?: string;
  args?: readonly string[];
}): KovaNode {
  const { program, args } = command();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.KOVA_FAULT;
  delete env.KOVA_CONTROL_PLANE;
  delete env.KOVA_NODE_TOKEN;
  if (opts.fault) env.KOVA_FAULT = opts.fault;
  const child = spawn(
    program,
    [
      ...args,
      'node',
      '--control-plane',
      opts.controlPlane,
      '--token',
      opts.token,
      '--data-dir',
      opts.dataDir,
      '--runtime',
      'process',
      '--min-snapshot-interval',
      '1s',
      '--stop-timeout',
      '2',
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
  let exit: Exit | null = null;
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  const waitExit = async (ms: number): Promise<Exit | null> => {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([exited, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]);
    clearTimeout(timer);
    return r;
  };
  return {
    child,
    exited,
    output: () => out,
    async stop() {
      if (exit) return exit;
      child.kill('SIGTERM');
      const e = await waitExit(15_000);
      if (e) return e;
      child.kill('SIGKILL');
      return exited;
    },
    async kill() {
      if (exit) return exit;
      child.kill('SIGKILL');
      return exited;
    },
  };
}
