/**
 * kova-server: a real `kova serve` as a child process for end-to-end tests:
 * the built CLI (dist/) and dashboard (web/dist/), rebuilt first when older
 * than their sources, on a free port with a temp data dir and the process
 * runtime. stop() closes every deployment it still runs (their services
 * outlive the server otherwise), stops the server and removes the data dir.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function newestMtime(entry: string): number {
  if (!fs.existsSync(entry)) return 0;
  const st = fs.statSync(entry);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const name of fs.readdirSync(entry)) max = Math.max(max, newestMtime(path.join(entry, name)));
  return max;
}

const mtime = (file: string) => (fs.existsSync(file) ? fs.statSync(file).mtimeMs : 0);

/** ensureBuilt rebuilds the server (tsc) and the dashboard (vite) when missing or older than their sources. */
export function ensureBuilt(): void {
  const r = (p: string) => path.join(ROOT, p);
  const serverSrc = Math.max(newestMtime(r('src')), mtime(r('tsconfig.json')), mtime(r('tsconfig.build.json')));
  if (mtime(r('dist/cli/main.js')) < serverSrc) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
  }
  const webSrc = Math.max(
    newestMtime(r('web/src')),
    newestMtime(r('web/public')),
    mtime(r('web/index.html')),
    mtime(r('web/vite.config.ts')),
  );
  if (mtime(r('web/dist/index.html')) < webSrc) {
    execFileSync('npm', ['run', 'build:web'], { cwd: ROOT, stdio: 'pipe' });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface ApiResult {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read response bodies freely
  body: any;
}

export interface KovaServer {
  readonly url: string;
  readonly dataDir: string;
  /** The bootstrap admin's API key (DATA/admin.key). */
  readonly adminKey: string;
  /** api calls the API with `key` (default: the admin key). */
  api(method: string, url: string, body?: unknown, key?: string): Promise<ApiResult>;
  /** volumeDir is where a service's volume lives on the host. */
  volumeDir(deploymentId: string, service: string, volume: string): string;
  /** log is what the server printed so far. */
  log(): string;
  stop(): Promise<void>;
}

export async function startKova(opts: { minSnapshotInterval?: string; extraArgs?: string[] } = {}): Promise<KovaServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    path.join(ROOT, 'bin', 'kova.js'),
    'serve',
    '--data-dir',
    dataDir,
    '--port',
    String(port),
    '--runtime',
    'process',
    '--min-snapshot-interval',
    opts.minSnapshotInterval ?? '1s',
    '--stop-timeout',
    '2',
    '--log-level',
    'warn',
    ...(opts.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const keyFile = path.join(dataDir, 'admin.key');
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`kova serve exited (${child.exitCode}):\n${output}`);
    if (fs.existsSync(keyFile)) {
      const ok = await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`kova serve did not start:\n${output}`);
    }
    await sleep(100);
  }
  const adminKey = fs.readFileSync(keyFile, 'utf8').trim();

  const api: KovaServer['api'] = async (method, p, body, key = adminKey) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed };
  };

  /** Kills the process groups of services the runtime still records (a last resort after close). */
  const killLeftovers = () => {
    const dir = path.join(dataDir, 'runtime', 'deployments');
    if (!fs.existsSync(dir)) return;
    for (const f of fs.readdirSync(dir)) {
      try {
        const state = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { services?: Record<string, { pid?: number }> };
        for (const s of Object.values(state.services ?? {})) {
          if (typeof s.pid === 'number' && s.pid > 1) {
            try {
              process.kill(-s.pid, 'SIGKILL');
            } catch {
              // already gone
            }
          }
        }
      } catch {
        // a torn or foreign file: nothing to kill
      }
    }
  };

  let stopped = false;
  return {
    url,
    dataDir,
    adminKey,
    api,
    volumeDir: (dep, service, volume) => path.join(dataDir, 'volumes', dep, service, volume),
    log: () => output,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null) {
        // Close what still runs, so no service outlives the test.
        const list = await api('GET', '/api/v1/deployments').catch(() => null);
        const active: string[] = (list?.body?.deployments ?? [])
          .filter((d: { status: string }) => d.status === 'active')
          .map((d: { id: string }) => d.id);
        for (const id of active) {
          const deadline = Date.now() + 20_000;
          while (Date.now() < deadline) {
            const r = await api('POST', `/api/v1/deployments/${id}/close`).catch(() => null);
            if (r && r.status !== 409) break;
            await sleep(250);
          }
        }
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline) {
          const r = await api('GET', '/api/v1/deployments').catch(() => null);
          const busy = (r?.body?.deployments ?? []).some(
            (d: { status: string; operation: string | null }) => d.status !== 'closed' || d.operation !== null,
          );
          if (!busy) break;
          await sleep(200);
        }
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      killLeftovers();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
