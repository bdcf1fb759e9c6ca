/**
 * cli-client: the `kova` API client commands (login, logout, deployments,
 * snapshots) as child processes against a real `kova serve` (process
 * runtime) in a temp data dir: output shapes, exit codes, one-line errors,
 * --wait, confirmations and the saved login.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment, FileChange, FileEntry, Restore, Snapshot, SnapshotSettings } from '../src/cli/client/api-client.js';
import { RESTORE_SAFETY_NOTE, RESTORE_WARNING } from '../src/cli/client/snapshots.js';
import { sdlFor } from './helpers/harness.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin', 'kova.js');

/** ensureBuilt runs the build when dist/ is missing or older than a source file. */
function ensureBuilt(): void {
  const stale = (dir: string): boolean => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (stale(p)) return true;
        continue;
      }
      if (!e.name.endsWith('.ts') || e.name.endsWith('.test.ts') || e.name.endsWith('.d.ts') || e.name === 'testing.ts') continue;
      const out = path.join(ROOT, 'dist', path.relative(path.join(ROOT, 'src'), p)).replace(/\.ts$/, '.js');
      if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(p).mtimeMs) return true;
    }
    return false;
  };
  if (!stale(path.join(ROOT, 'src'))) return;
  try {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    // tsc emits despite type errors elsewhere in the tree; what matters is that the CLI is there.
    if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'client', 'register.js'))) throw err;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

type Env = Record<string, string | undefined>;

let tmp = '';
let dataDir = '';
let url = '';
let token = '';
let sdlFile = '';
let server: ChildProcess | null = null;
let serverLog = '';

/** The environment of every CLI run: no inherited KOVA_*, an empty config dir, the test server. */
function baseEnv(): Env {
  return {
    PATH: process.env.PATH,
    HOME: path.join(tmp, 'home'),
    XDG_CONFIG_HOME: path.join(tmp, 'xdg-empty'),
    KOVA_URL: url,
    KOVA_TOKEN: token,
  };
}

function cleanEnv(env: Env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
}

/** kova runs the CLI with stdin a closed pipe (not a terminal). */
function kova(args: readonly string[], opts: { env?: Env; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: tmp,
      env: cleanEnv({ ...baseEnv(), ...opts.env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** ok runs a command that must succeed and returns its stdout. */
async function ok(args: readonly string[], opts: { env?: Env; input?: string } = {}): Promise<string> {
  const r = await kova(args, opts);
  if (r.code !== 0) throw new Error(`kova ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** json runs a command with --json that must succeed and parses its stdout. */
async function json<T = unknown>(args: readonly string[], opts: { env?: Env } = {}): Promise<T> {
  return JSON.parse(await ok([...args, '--json'], opts)) as T;
}

/** expectError checks exit code 1 and exactly one `kova: …` line on stderr. */
function expectError(r: Run, line: string | RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  const got = r.stderr.trimEnd();
  if (typeof line === 'string') expect(got).toBe(line);
  else expect(got).toMatch(line);
}

/** api calls the server directly (for checks the CLI does not make). */
async function api<T>(method: string, p: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as T;
}

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function expectContractSnapshot(s: unknown): void {
  expect(s).toEqual(
    expect.objectContaining({
      id: expect.stringMatching(/^snap-/),
      status: expect.stringMatching(/^(creating|ready|failed|deleting)$/),
      size: expect.stringMatching(/^(\d+ B|\d+\.\d (KB|MB|GB|TB))$/),
      automatic: expect.any(Boolean),
      createdAt: expect.stringMatching(ISO_UTC),
    }),
  );
  const { label } = s as { label?: unknown };
  expect(label === null || typeof label === 'string').toBe(true); // present: undefined fails
}

const volumeFile = (depId: string, name: string): string => path.join(dataDir, 'volumes', depId, 'app', 'data', name);

async function waitIdle(depId: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { deployment: d } = await api<{ deployment: Deployment }>('GET', `/api/v1/deployments/${depId}`);
    if (!d.operation) return;
    await sleep(100);
  }
  throw new Error(`deployment ${depId} stayed busy`);
}

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

/** onTerminal runs the CLI under `script`, so stdin, stdout and stderr are a pseudo-terminal. */
function onTerminal(args: readonly string[], input: string, env: Env = {}): Promise<Run> {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, BIN, ...args].map(q).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], {
      cwd: tmp,
      env: cleanEnv({ ...baseEnv(), SHELL: '/bin/sh', ...env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr: '' }));
    child.stdin.end(input);
  });
}

beforeAll(async () => {
  ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-cli-'));
  dataDir = path.join(tmp, 'data');
  fs.mkdirSync(path.join(tmp, 'home'));
  fs.mkdirSync(path.join(tmp, 'xdg-empty'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--data-dir',
      dataDir,
      '--port',
      String(port),
      '--runtime',
      'process',
      '--min-snapshot-interval',
      '1s',
      '--rate-limit',
      '100000',
      '--stop-timeout',
      '2',
      '--webhooks-allow-private',
      '--log-level',
      'warn',
    ],
    { cwd: tmp, env: cleanEnv({ PATH: process.env.PATH, HOME: path.join(tmp, 'home') }), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stdout!.setEncoding('utf8').on('data', (d: string) => (serverLog += d));
  server.stderr!.setEncoding('utf8').on('data', (d: string) => (serverLog += d));
  const keyFile = path.join(dataDir, 'admin.key');
  for (let i = 0; ; i++) {
    if (server.exitCode !== null) throw new Error(`kova serve exited: ${serverLog}`);
    if (fs.existsSync(keyFile)) {
      const res = await fetch(`${url}/healthz`).catch(() => null);
      if (res?.ok) break;
    }
    if (i > 300) throw new Error(`kova serve did not start: ${serverLog}`);
    await sleep(100);
  }
  token = fs.readFileSync(keyFile, 'utf8').trim();
  sdlFile = path.join(tmp, 'app.yaml');
  fs.writeFileSync(sdlFile, sdlFor('echo v1 > state.txt; exec sleep 100000'));
});

afterEach((ctx) => {
  // A failing test shows what the server logged (warnings and errors only).
  if (ctx.task.result?.state === 'fail' && serverLog)
    console.error(`kova serve log (tail):\n${serverLog.split('\n').slice(-40).join('\n')}`);
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    // Close what is still active, so no service process outlives the test.
    try {
      const { deployments: list } = await api<{ deployments: Deployment[] }>('GET', '/api/v1/deployments');
      for (const d of list.filter((x) => x.status === 'active')) {
        await waitIdle(d.id).catch(() => undefined);
        await api('POST', `/api/v1/deployments/${d.id}/close`, {});
      }
      for (const d of list) await waitIdle(d.id).catch(() => undefined);
    } catch {
      // the server is gone; the state files below still name the processes
    }
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  }
  // Any service process left behind: its process group, from the runtime's state files.
  const stateDir = path.join(dataDir, 'runtime', 'deployments');
  for (const f of fs.existsSync(stateDir) ? fs.readdirSync(stateDir) : []) {
    try {
      const st = JSON.parse(fs.readFileSync(path.join(stateDir, f), 'utf8')) as { services?: Record<string, { pid?: number }> };
      for (const s of Object.values(st.services ?? {})) if (s.pid) process.kill(-s.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('kova client: connection', () => {
  it('without a token, says how to log in on one line', async () => {
    const r = await kova(['deployments', 'ls'], { env: { KOVA_TOKEN: undefined } });
    expectError(r, /^kova: not logged in: run "kova login" or set KOVA_TOKEN/);
    expect(r.stdout).toBe('');
  });

  it('on an unreachable URL, says the server is not running', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = await kova(['snapshots', 'ls', 'dep-x'], { env: { KOVA_URL: closed } });
    expectError(r, `kova: cannot reach the Kova server at ${closed} (is "kova serve" running?)`);
    // --url overrides the environment
    const r2 = await kova(['deployments', 'ls', '--url', `${closed}/`]);
    expectError(r2, `kova: cannot reach the Kova server at ${closed} (is "kova serve" running?)`);
  });

  it('a bad token is an API error (401)', async () => {
    const r = await kova(['deployments', 'ls'], { env: { KOVA_TOKEN: 'kova_nope.nope' } });
    expectError(r, /^kova: .+ \(UNAUTHORIZED\)$/);
  });

  it('login verifies the key, saves it with mode 600, later commands use it, logout forgets it', async () => {
    const xdg = path.join(tmp, 'xdg-login');
    const noEnv = { XDG_CONFIG_HOME: xdg, KOVA_URL: undefined, KOVA_TOKEN: undefined };
    const file = path.join(xdg, 'kova', 'config.json');

    // A wrong key is refused and nothing is saved.
    const bad = await kova(['login', '--url', url, '--token', 'kova_nope.nope'], { env: noEnv });
    expectError(bad, /^kova: .+ \(UNAUTHORIZED\)$/);
    expect(fs.existsSync(file)).toBe(false);

    // Without a terminal and without a token, login explains itself.
    expectError(await kova(['login', '--url', url], { env: noEnv }), /^kova: no API key given: pass --token or set KOVA_TOKEN/);

    const out = await ok(['login', '--url', url, '--token', token], { env: noEnv });
    expect(out).toBe(`logged in to ${url} as admin\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ url, token });

    // Later commands: URL and token from the saved login.
    expect(Array.isArray(await json(['deployments', 'ls'], { env: noEnv }))).toBe(true);
    // Another URL does not get the saved token.
    const other = `http://127.0.0.1:${await freePort()}`;
    expectError(
      await kova(['deployments', 'ls', '--url', other], { env: noEnv }),
      new RegExp(`^kova: no API token for ${other} .*kova login --url ${other}`),
    );

    // login --json with the token from the environment.
    const me = await json(['login'], { env: { XDG_CONFIG_HOME: xdg, KOVA_URL: url } });
    expect(me).toMatchObject({ url, user: { name: 'admin' }, configFile: file });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    expect(await ok(['logout'], { env: noEnv })).toBe(`logged out (removed ${file})\n`);
    expect(fs.existsSync(file)).toBe(false);
    expect(await json(['logout'], { env: noEnv })).toEqual({ loggedOut: false, configFile: file });
    expectError(await kova(['deployments', 'ls'], { env: noEnv }), /^kova: not logged in/);
  });
});

describe('kova client: deployments and snapshots', () => {
  let dep = '';
  let snap = '';

  it('deployments create --wait, get, ls', async () => {
    const d = await json<Deployment>(['deployments', 'create', '-f', sdlFile, '--name', 'web', '--wait']);
    expect(d).toMatchObject({ id: expect.stringMatching(/^dep-/), name: 'web', status: 'active', operation: null });
    expect(d.services).toEqual([expect.objectContaining({ name: 'app', state: 'running' })]);
    dep = d.id;

    expect(await json(['deployments', 'get', dep])).toMatchObject({ id: dep, name: 'web', status: 'active' });
    const list = await json<Deployment[]>(['deployments', 'ls']);
    expect(list.map((x) => x.id)).toContain(dep);

    const table = (await ok(['deployments', 'ls'])).split('\n');
    expect(table[0]).toMatch(/^ID\s+NAME\s+STATUS\s+SERVICES\s+SNAPSHOTS\s+CREATED$/);
    expect(table.find((l) => l.startsWith(dep))).toMatch(/web\s+active\s+app running\s+0\s+\d+s ago/);
    const text = await ok(['deployments', 'get', dep]);
    expect(text).toMatch(/^ID\s+dep-/);
    expect(text).toMatch(/SERVICE\s+IMAGE\s+STATE\s+VOLUMES\napp\s+busybox\s+running\s+data at \/data/);

    expectError(await kova(['deployments', 'get', 'dep-nope']), 'kova: deployment dep-nope not found (DEPLOYMENT_NOT_FOUND)');
  });

  it('snapshots create --wait --json: the final snapshot, with the six contract fields', async () => {
    const s = await json<Snapshot>(['snapshots', 'create', dep, '--label', 'before-migration', '--wait']);
    expectContractSnapshot(s);
    expect(s).toMatchObject({ label: 'before-migration', status: 'ready', automatic: false, trigger: 'manual', error: null });
    expect(s.consistency).toMatch(/^(frozen|live)$/);
    snap = s.id;

    const one = await json(['snapshots', 'get', dep, snap]);
    expectContractSnapshot(one);
    expect(one).toMatchObject({ id: snap, status: 'ready', label: 'before-migration' });
  });

  it('snapshots create without --wait answers at once; plain output is the id', async () => {
    const s = await json<Snapshot>(['snapshots', 'create', dep]);
    expectContractSnapshot(s);
    expect(s).toMatchObject({ status: 'creating', label: null, automatic: false });
    await waitIdle(dep);

    const r = await kova(['snapshots', 'create', dep, '--label', 'second', '--wait']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^snap-[a-z0-9]+\n$/);
    expect(r.stderr).toMatch(/^snapshot snap-\S+ is ready: /);

    const list = await json<Snapshot[]>(['snapshots', 'ls', dep]);
    expect(list).toHaveLength(3);
    for (const x of list) expectContractSnapshot(x);
    expect(list.map((x) => x.id)).toEqual([r.stdout.trim(), s.id, snap]); // newest first
    const times = list.map((x) => Date.parse(x.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('snapshots ls prints a table', async () => {
    const lines = (await ok(['snapshots', 'ls', dep])).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+LABEL\s+STATUS\s+SIZE\s+TYPE\s+CREATED\s+CONSISTENCY\s+STORED$/);
    expect(lines).toHaveLength(4);
    const row = lines.find((l) => l.startsWith(snap));
    expect(row).toMatch(/before-migration\s+ready\s+\d+ B\s+manual\s+\d+s ago\s+(frozen|live)\s+local$/);
    const text = await ok(['snapshots', 'get', dep, snap]);
    expect(text).toMatch(/^ID\s+snap-/);
    expect(text).toMatch(/\nSTATUS\s+ready\n/);
  });

  it('API errors: one line, exit 1 (404, bad label 400)', async () => {
    const [noSnap, noDep, ctl, long, json404] = await Promise.all([
      kova(['snapshots', 'get', dep, 'snap-nope']),
      kova(['snapshots', 'ls', 'dep-nope']),
      kova(['snapshots', 'create', dep, '--label', 'bad\u0001label']),
      kova(['snapshots', 'create', dep, '--label', 'x'.repeat(65)]),
      kova(['snapshots', 'get', dep, 'snap-nope', '--json']),
    ]);
    expectError(noSnap, 'kova: snapshot snap-nope not found (SNAPSHOT_NOT_FOUND)');
    expectError(noDep, 'kova: deployment dep-nope not found (DEPLOYMENT_NOT_FOUND)');
    expectError(ctl, /^kova: .*control characters \(INVALID_LABEL\)$/);
    expectError(long, /^kova: .*64 characters \(INVALID_LABEL\)$/);
    expectError(json404, 'kova: snapshot snap-nope not found (SNAPSHOT_NOT_FOUND)');
    expect(json404.stdout).toBe('');
    expect(await json<Snapshot[]>(['snapshots', 'ls', dep])).toHaveLength(3);
  });

  it('create --wait on a snapshot that fails: exit 1, the error on one line, the failed snapshot with --json', async () => {
    const hookSdl = path.join(tmp, 'hook.yaml');
    fs.writeFileSync(hookSdl, sdlFor('exec sleep 100000', { pre: ['sh', '-c', 'echo disk busy; exit 3'] }));
    const d = await json<Deployment>(['deployments', 'create', '-f', hookSdl, '--name', 'hooked', '--wait']);
    const r = await kova(['snapshots', 'create', d.id, '--label', 'doomed', '--wait', '--json']);
    expectError(r, /^kova: snapshot snap-\S+ failed: pre-snapshot hook of service app exited with 3: disk busy \(SNAPSHOT_FAILED\)$/);
    const s = JSON.parse(r.stdout) as Snapshot;
    expectContractSnapshot(s);
    expect(s).toMatchObject({ status: 'failed', label: 'doomed', error: expect.stringContaining('exited with 3') });
    // A failed snapshot cannot be restored: 409.
    expectError(
      await kova(['snapshots', 'restore', d.id, s.id, '--yes']),
      new RegExp(`^kova: snapshot ${s.id} is failed, not ready \\(SNAPSHOT_NOT_READY\\)$`),
    );
    expect(await json(['deployments', 'close', d.id, '--yes'])).toMatchObject({ status: 'closed' });
  });

  it('restore refuses without --yes when stdin is not a terminal', async () => {
    const before = (await api<{ restores: Restore[] }>('GET', `/api/v1/deployments/${dep}/restores`)).restores.length;
    const r = await kova(['snapshots', 'restore', dep, snap]);
    expectError(r, `kova: refusing to restore ${snap} without confirmation: stdin is not a terminal; pass --yes to confirm`);
    expect(r.stdout).toBe('');
    expect((await api<{ restores: Restore[] }>('GET', `/api/v1/deployments/${dep}/restores`)).restores).toHaveLength(before);
  });

  it('restore --yes --wait brings back the data, after a safety snapshot', async () => {
    expect(fs.readFileSync(volumeFile(dep, 'state.txt'), 'utf8')).toBe('v1\n');
    fs.writeFileSync(volumeFile(dep, 'state.txt'), 'v2\n');
    fs.writeFileSync(volumeFile(dep, 'later.txt'), 'written after the snapshot\n');

    const r = await json<Restore>(['snapshots', 'restore', dep, snap, '--yes', '--wait']);
    expect(r).toMatchObject({
      id: expect.stringMatching(/^rst-/),
      snapshotId: snap,
      status: 'completed',
      safetySnapshot: true,
      error: null,
    });
    expect(r.safetySnapshotId).toMatch(/^snap-/);
    expect(fs.readFileSync(volumeFile(dep, 'state.txt'), 'utf8')).toBe('v1\n');
    expect(fs.existsSync(volumeFile(dep, 'later.txt'))).toBe(false);

    const safety = await json(['snapshots', 'get', dep, r.safetySnapshotId!]);
    expect(safety).toMatchObject({ status: 'ready', automatic: false, trigger: 'before-restore' });
    const table = await ok(['snapshots', 'ls', dep]);
    expect(table).toMatch(new RegExp(`${r.safetySnapshotId}.*manual \\(before-restore\\)`));

    // --no-safety-snapshot, plain output: the restore id, then how it went.
    const plain = await kova(['snapshots', 'restore', dep, snap, '--yes', '--no-safety-snapshot', '--wait']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^rst-[a-z0-9]+\n$/);
    expect(plain.stderr).toMatch(new RegExp(`^restored ${snap} into ${dep}`));
    const last = (await api<{ restore: Restore }>('GET', `/api/v1/deployments/${dep}/restores/${plain.stdout.trim()}`)).restore;
    expect(last).toMatchObject({ status: 'completed', safetySnapshot: false, safetySnapshotId: null });
  });

  it('restore without --wait answers with the pending restore', async () => {
    const r = await json<Restore>(['snapshots', 'restore', dep, snap, '--yes', '--no-safety-snapshot']);
    expect(r).toMatchObject({ id: expect.stringMatching(/^rst-/), snapshotId: snap });
    expect(['pending', 'restoring', 'swapping', 'completed']).toContain(r.status);
    await waitIdle(dep);
  });

  it('settings: show, change, show again', async () => {
    const initial = await json<SnapshotSettings>(['snapshots', 'settings', dep]);
    expect(initial).toMatchObject({ enabled: false, retention: 7, nextRunAt: null });
    expect(['24h', '1d']).toContain(initial.interval);

    const changed = await json<SnapshotSettings>(['snapshots', 'settings', dep, '--enable', '--interval', '6h', '--retention', '14']);
    expect(changed).toMatchObject({ enabled: true, interval: '6h', retention: 14 });
    expect(changed.nextRunAt).toMatch(ISO_UTC);
    expect(await json(['snapshots', 'settings', dep])).toEqual(changed);

    const text = await ok(['snapshots', 'settings', dep]);
    expect(text).toMatch(/^AUTOMATIC SNAPSHOTS\s+enabled\n/);
    expect(text).toMatch(/INTERVAL\s+every 6h/);
    expect(text).toMatch(/RETENTION\s+keep the newest 14 automatic snapshots/);
    expect(text).toMatch(/NEXT RUN\s+\d{4}-/);

    expect(await json(['snapshots', 'settings', dep, '--disable'])).toMatchObject({
      enabled: false,
      interval: '6h',
      retention: 14,
      nextRunAt: null,
    });
    const [badInterval, badRetention, notNumber] = await Promise.all([
      kova(['snapshots', 'settings', dep, '--interval', '5x']),
      kova(['snapshots', 'settings', dep, '--retention', '0']),
      kova(['snapshots', 'settings', dep, '--retention', 'many']),
    ]);
    expectError(badInterval, /^kova: interval must .* \(INVALID_INTERVAL\)$/);
    expectError(badRetention, /^kova: retention must .* \(INVALID_RETENTION\)$/);
    expectError(notNumber, 'kova: --retention must be a whole number, got "many"');
    // This server has no off-node target: there is nothing to turn on, and the CLI says so.
    expectError(
      await kova(['snapshots', 'settings', dep, '--offsite', 'on']),
      /^kova: this server has no off-node target .* \(OFFSITE_NOT_CONFIGURED\)$/,
    );
    expect((await kova(['snapshots', 'settings', dep, '--offsite', 'maybe'])).code).not.toBe(0);
    expect(await json(['snapshots', 'settings', dep])).toMatchObject({ enabled: false, interval: '6h', retention: 14, offsite: null });
  });

  it('settings: calendar retention tiers, with the policy in plain words', async () => {
    const set = await json<SnapshotSettings>(['snapshots', 'settings', dep, '--keep-daily', '7', '--keep-monthly', '12']);
    expect(set).toMatchObject({ retention: 14, keepHourly: null, keepDaily: 7, keepWeekly: null, keepMonthly: 12 });
    const text = await ok(['snapshots', 'settings', dep]);
    expect(text).toMatch(/CALENDAR\s+daily 7, monthly 12\n/);
    const policy = text.split('\n').find((l) => l.startsWith('POLICY '));
    expect(policy?.replace(/^POLICY\s+/, '')).toBe(set.retentionDescription);
    expect(set.retentionDescription).toMatch(/^Keeps the 14 most recent automatic snapshots, and the newest of each of the last 7 days/);

    expect(await json(['snapshots', 'settings', dep, '--keep-daily', 'none', '--keep-hourly', '0'])).toMatchObject({
      keepHourly: 0,
      keepDaily: null,
      keepMonthly: 12,
    });
    const [tooMany, notNumber] = await Promise.all([
      kova(['snapshots', 'settings', dep, '--keep-weekly', '1001']),
      kova(['snapshots', 'settings', dep, '--keep-hourly', 'lots']),
    ]);
    expectError(tooMany, 'kova: keepWeekly must be an integer from 0 to 1000, or null for none (INVALID_RETENTION)');
    expectError(notNumber, 'kova: --keep-hourly must be a whole number or "none", got "lots"');
    expect(await json(['snapshots', 'settings', dep])).toMatchObject({ keepHourly: 0, keepDaily: null, keepWeekly: null, keepMonthly: 12 });
  });

  it('clone --wait: a new deployment from the snapshot, running', async () => {
    const c = await json<Deployment>(['snapshots', 'clone', dep, snap, '--name', 'web-copy', '--wait']);
    expect(c).toMatchObject({ id: expect.stringMatching(/^dep-/), name: 'web-copy', status: 'active', clonedFrom: snap, operation: null });
    expect(c.id).not.toBe(dep);
    expect(c.services).toEqual([expect.objectContaining({ name: 'app', state: 'running' })]);
    expect(fs.readFileSync(volumeFile(c.id, 'state.txt'), 'utf8')).toBe('v1\n');
    const closed = await json(['deployments', 'close', c.id, '--yes']);
    expect(closed).toMatchObject({ id: c.id, status: 'closed' });
  });

  it('update (with and without a before-update snapshot) and restart', async () => {
    const count = async (): Promise<number> => (await json<Snapshot[]>(['snapshots', 'ls', dep])).length;
    const n0 = await count();
    const u = await json(['deployments', 'update', dep, '-f', sdlFile, '--wait']);
    expect(u).toMatchObject({ id: dep, status: 'active', operation: null });
    const list = await json<Snapshot[]>(['snapshots', 'ls', dep]);
    expect(list).toHaveLength(n0 + 1);
    expect(list[0]).toMatchObject({ trigger: 'before-update', status: 'ready', automatic: false });

    const plain = await kova(['deployments', 'update', dep, '-f', sdlFile, '--no-snapshot', '--wait']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe(`${dep}\n`);
    expect(await count()).toBe(n0 + 1);

    const r = await json(['deployments', 'restart', dep, '--wait']);
    expect(r).toMatchObject({ id: dep, operation: null, services: [expect.objectContaining({ state: 'running' })] });
  });

  it('rm: refuses without --yes off a terminal, deletes with it', async () => {
    const victim = (await json<Snapshot>(['snapshots', 'create', dep, '--label', 'to-delete', '--wait'])).id;
    expectError(
      await kova(['snapshots', 'rm', dep, victim]),
      `kova: refusing to delete ${victim} without confirmation: stdin is not a terminal; pass --yes to confirm`,
    );
    expect(await json(['snapshots', 'get', dep, victim])).toMatchObject({ status: 'ready' });
    expect(await ok(['snapshots', 'rm', dep, victim, '--yes'])).toBe(`deleted snapshot ${victim}\n`);
    // Deletion runs in the background: the snapshot is `deleting`, then gone.
    const gone = await kova(['snapshots', 'get', dep, victim, '--json']);
    if (gone.code === 0) expect(JSON.parse(gone.stdout)).toMatchObject({ id: victim, status: 'deleting' });
    else expectError(gone, `kova: snapshot ${victim} not found (SNAPSHOT_NOT_FOUND)`);
    expectError(await kova(['snapshots', 'rm', dep, 'snap-nope', '--yes']), 'kova: snapshot snap-nope not found (SNAPSHOT_NOT_FOUND)');
    await waitIdle(dep);
  });

  it('warns before a restore in the same words as the dashboard', () => {
    const dialog = fs.readFileSync(path.join(import.meta.dirname, '..', 'web', 'src', 'components', 'RestoreDialog.tsx'), 'utf8');
    for (const line of RESTORE_WARNING.slice(1)) expect(dialog).toContain(`<li>${line.replace(/^ {2}- /, '')}</li>`);
  });

  it.skipIf(!hasScript)('on a terminal, restore shows the warning and asks y/N', async () => {
    const no = await onTerminal(['snapshots', 'restore', dep, snap], 'n\n');
    expect(no.code).toBe(1);
    for (const line of RESTORE_WARNING) expect(no.stdout).toContain(line);
    expect(no.stdout).toContain(RESTORE_SAFETY_NOTE);
    expect(no.stdout).toMatch(/\[y\/N\]/);
    expect(no.stdout).toContain(`kova: cancelled: did not restore ${snap}`);

    const noSafety = await onTerminal(['snapshots', 'restore', dep, snap, '--no-safety-snapshot'], 'n\n');
    expect(noSafety.stdout).toContain("All current data in the volumes is replaced by the snapshot's data.");
    expect(noSafety.stdout).not.toContain(RESTORE_SAFETY_NOTE);

    const before = (await api<{ restores: Restore[] }>('GET', `/api/v1/deployments/${dep}/restores`)).restores.length;
    const yes = await onTerminal(['snapshots', 'restore', dep, snap, '--wait'], 'y\n');
    expect(yes.code, yes.stdout).toBe(0);
    expect(yes.stdout).toMatch(/rst-[a-z0-9]+/);
    const restores = (await api<{ restores: Restore[] }>('GET', `/api/v1/deployments/${dep}/restores`)).restores;
    expect(restores).toHaveLength(before + 1);
    expect(restores[0]).toMatchObject({ status: 'completed', safetySnapshot: true });
  });

  it.skipIf(!hasScript)('on a terminal, login asks for the key', async () => {
    const xdg = path.join(tmp, 'xdg-tty');
    const r = await onTerminal(['login', '--url', url], `${token}\n`, { XDG_CONFIG_HOME: xdg, KOVA_TOKEN: undefined, KOVA_URL: undefined });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain(`API key for ${url}: `);
    expect(r.stdout).toContain(`logged in to ${url} as admin`);
    expect(JSON.parse(fs.readFileSync(path.join(xdg, 'kova', 'config.json'), 'utf8'))).toEqual({ url, token });
  });

  it('close: refuses without --yes off a terminal; then snapshot commands answer 409', async () => {
    expectError(
      await kova(['deployments', 'close', dep]),
      `kova: refusing to close deployment ${dep} without confirmation: stdin is not a terminal; pass --yes to confirm`,
    );
    expect(await json(['deployments', 'get', dep])).toMatchObject({ status: 'active' });

    expect(await ok(['deployments', 'close', dep, '--yes'])).toBe(`closed deployment ${dep}\n`);
    expect(await json(['deployments', 'get', dep])).toMatchObject({ status: 'closed' });
    expectError(await kova(['snapshots', 'ls', dep]), `kova: deployment ${dep} is closed (DEPLOYMENT_NOT_ACTIVE)`);
    expectError(await kova(['snapshots', 'create', dep, '--wait']), `kova: deployment ${dep} is closed (DEPLOYMENT_NOT_ACTIVE)`);
    expectError(await kova(['snapshots', 'restore', dep, snap, '--yes']), `kova: deployment ${dep} is closed (DEPLOYMENT_NOT_ACTIVE)`);
    expectError(await kova(['deployments', 'close', dep, '--yes']), `kova: deployment ${dep} is closed (DEPLOYMENT_NOT_ACTIVE)`);
  });
});

describe('kova client: restore after the volumes changed', () => {
  /** deployWith creates a deployment from `sdl`, snapshots it, then updates it to `next`. */
  async function deployWith(sdl: string, next: string): Promise<{ dep: string; snap: string }> {
    const f = path.join(tmp, `changed-${Date.now()}.yaml`);
    fs.writeFileSync(f, sdl);
    const d = await json<Deployment>(['deployments', 'create', '-f', f, '--wait']);
    const s = await json<Snapshot>(['snapshots', 'create', d.id, '--wait']);
    fs.writeFileSync(f, next);
    await json(['deployments', 'update', d.id, '-f', f, '--wait']);
    return { dep: d.id, snap: s.id };
  }

  it.skipIf(!hasScript)('on a terminal, a renamed service: the confirmation says where the volume goes', async () => {
    const sdl = sdlFor('exec sleep 100000');
    const { dep, snap } = await deployWith(sdl, sdl.replace(/\n {2}app:\n/g, '\n  web:\n'));
    const no = await onTerminal(['snapshots', 'restore', dep, snap], 'n\n');
    expect(no.code).toBe(1);
    expect(no.stdout).toContain("The deployment's volumes changed since this snapshot:");
    expect(no.stdout).toContain('app.data is restored into web.data (same mount path)');
    expect(no.stdout).toContain(`kova: cancelled: did not restore ${snap}`);

    const r = await kova(['snapshots', 'restore', dep, snap, '--yes', '--wait']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('restored into renamed volumes: app.data -> web.data');
  });

  it('a removed volume: the restore is refused with the volumes named, on a terminal before asking', async () => {
    const { dep, snap } = await deployWith(sdlFor('exec sleep 100000', { volumes: ['data', 'logs'] }), sdlFor('exec sleep 100000'));
    const line = new RegExp(
      `^kova: snapshot ${snap} holds volumes the deployment no longer has: app\\.logs\\. .*nothing was changed.* \\(VOLUMES_CHANGED\\)$`,
    );
    expectError(await kova(['snapshots', 'restore', dep, snap, '--yes']), line);
    if (hasScript) {
      const t = await onTerminal(['snapshots', 'restore', dep, snap], 'y\n');
      expect(t.code).toBe(1);
      expect(t.stdout).toMatch(/app\.logs.*\(VOLUMES_CHANGED\)/);
      expect(t.stdout).not.toMatch(/\[y\/N\]/);
    }
    expect((await api<{ restores: Restore[] }>('GET', `/api/v1/deployments/${dep}/restores`)).restores).toEqual([]);
  });
});

describe('kova client: browsing snapshots', () => {
  let dep = '';
  let snap1 = '';
  let snap2 = '';
  const BLOB = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 13 + 5) % 256));

  beforeAll(async () => {
    const f = path.join(tmp, 'browse.yaml');
    fs.writeFileSync(f, sdlFor('exec sleep 100000'));
    dep = (await json<Deployment>(['deployments', 'create', '-f', f, '--wait'])).id;
    fs.writeFileSync(volumeFile(dep, 'blob.bin'), BLOB);
    fs.writeFileSync(volumeFile(dep, 'notes.txt'), 'first\n');
    fs.mkdirSync(volumeFile(dep, 'dir'));
    for (let i = 0; i < 5; i++) fs.writeFileSync(volumeFile(dep, `dir/f${i}`), `file ${i}\n`);
    fs.symlinkSync('notes.txt', volumeFile(dep, 'link'));
    fs.mkdirSync(volumeFile(dep, 'big-dir'));
    for (let i = 0; i < 1200; i++) fs.writeFileSync(volumeFile(dep, `big-dir/n${String(i).padStart(4, '0')}`), '');
    snap1 = (await json<Snapshot>(['snapshots', 'create', dep, '--wait'])).id;
    fs.writeFileSync(volumeFile(dep, 'notes.txt'), 'second version\n');
    fs.rmSync(volumeFile(dep, 'dir/f0'));
    snap2 = (await json<Snapshot>(['snapshots', 'create', dep, '--wait'])).id;
  }, 120_000);

  it('files: a table, --json following cursors, --limit', async () => {
    const lines = (await ok(['snapshots', 'files', dep, snap1, 'app/data'])).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^MODE\s+OWNER\s+SIZE\s+MODIFIED\s+NAME$/);
    expect(lines.find((l) => l.endsWith(' dir/'))).toMatch(/^drwx/);
    expect(lines.find((l) => l.endsWith('link -> notes.txt'))).toMatch(/^lrwx/);
    expect(lines.find((l) => l.endsWith(' blob.bin'))).toMatch(/^-rw.*300\.0 KB/);

    expect((await json<FileEntry[]>(['snapshots', 'files', dep, snap1])).map((e) => e.name)).toEqual(['app']);
    // More entries than one page holds: the CLI follows the server's cursor.
    const many = await json<FileEntry[]>(['snapshots', 'files', dep, snap1, 'app/data/big-dir']);
    expect(many.map((e) => e.name)).toEqual(Array.from({ length: 1200 }, (_, i) => `n${String(i).padStart(4, '0')}`));
    const some = await json<FileEntry[]>(['snapshots', 'files', dep, snap1, 'app/data/dir', '--limit', '3']);
    expect(some.map((e) => e.name)).toEqual(['f0', 'f1', 'f2']);
    const all = await json<FileEntry[]>(['snapshots', 'files', dep, snap1, 'app/data/dir']);
    expect(all.map((e) => [e.name, e.size])).toEqual([0, 1, 2, 3, 4].map((i) => [`f${i}`, 7]));

    expectError(await kova(['snapshots', 'files', dep, snap1, 'app/data/nope']), /^kova: .*\(PATH_NOT_FOUND\)$/);
    expectError(await kova(['snapshots', 'files', dep, snap1, 'app/data/notes.txt']), /^kova: .*\(NOT_A_DIRECTORY\)$/);
  });

  it('download: a file to -o or stdout, a directory as tar', async () => {
    const out = path.join(tmp, 'blob.out');
    const r = await kova(['snapshots', 'download', dep, snap1, 'app/data/blob.bin', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(out).equals(BLOB)).toBe(true);
    expect(await ok(['snapshots', 'download', dep, snap1, 'app/data/notes.txt'])).toBe('first\n');

    for (const format of ['tar', 'tar.zst']) {
      const tarFile = path.join(tmp, `dir.${format}`);
      expect((await kova(['snapshots', 'download', dep, snap1, 'app/data/dir', '-o', tarFile, '--format', format])).code).toBe(0);
      const x = fs.mkdtempSync(path.join(tmp, 'untar-'));
      execFileSync('tar', [...(format === 'tar.zst' ? ['--zstd'] : []), '-xf', tarFile, '-C', x]);
      expect(fs.readdirSync(path.join(x, 'dir')).sort()).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
      expect(fs.readFileSync(path.join(x, 'dir', 'f3'), 'utf8')).toBe('file 3\n');
    }

    const missing = path.join(tmp, 'missing.out');
    expectError(await kova(['snapshots', 'download', dep, snap1, 'app/data/nope', '-o', missing]), /^kova: .*\(PATH_NOT_FOUND\)$/);
    expect(fs.existsSync(missing)).toBe(false);
    expectError(await kova(['snapshots', 'download', dep, snap1, 'app/data/link']), /^kova: .*\(NOT_A_FILE\)$/);
  });

  it('diff: a table and --json', async () => {
    const changes = await json<FileChange[]>(['snapshots', 'diff', dep, snap2, '--against', snap1]);
    expect(changes.map((c) => [c.path, c.change])).toEqual([
      ['app/data/dir/f0', 'removed'],
      ['app/data/notes.txt', 'modified'],
    ]);
    const lines = (await ok(['snapshots', 'diff', dep, snap2, '--against', snap1])).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CHANGE\s+BEFORE\s+AFTER\s+PATH$/);
    expect(lines[2]).toMatch(/^modified\s+6 B\s+15 B\s+app\/data\/notes\.txt$/);
  });
});

describe('kova client: restoring selected paths', () => {
  let dep = '';
  let snap = '';

  beforeAll(async () => {
    const f = path.join(tmp, 'paths.yaml');
    fs.writeFileSync(f, sdlFor('exec sleep 100000'));
    dep = (await json<Deployment>(['deployments', 'create', '-f', f, '--wait'])).id;
    fs.writeFileSync(volumeFile(dep, 'notes.txt'), 'first\n');
    fs.mkdirSync(volumeFile(dep, 'dir'));
    for (let i = 0; i < 3; i++) fs.writeFileSync(volumeFile(dep, `dir/f${i}`), `file ${i}\n`);
    snap = (await json<Snapshot>(['snapshots', 'create', dep, '--wait'])).id;
    fs.writeFileSync(volumeFile(dep, 'notes.txt'), 'second\n');
    fs.writeFileSync(volumeFile(dep, 'dir/added.txt'), 'added since\n');
  }, 120_000);

  it.skipIf(!hasScript)('on a terminal, shows exactly what is replaced before asking', async () => {
    const no = await onTerminal(['snapshots', 'restore', dep, snap, '--path', 'app/data/dir/'], 'n\n');
    expect(no.code).toBe(1);
    expect(no.stdout).toContain("This replaces the chosen paths with the snapshot's:");
    expect(no.stdout).toContain("  - app/data/dir is replaced: the folder becomes exactly the snapshot's");
    expect(no.stdout).toContain('      removed, not in the snapshot: app/data/dir/added.txt');
    expect(no.stdout).toContain('  - Everything else is left as it is.');
    expect(no.stdout).toContain(RESTORE_SAFETY_NOTE);
    expect(no.stdout).not.toContain(RESTORE_WARNING[1]);
    expect(no.stdout).toContain(`kova: cancelled: did not restore ${snap}`);

    const along = await onTerminal(['snapshots', 'restore', dep, snap, '--path', 'app/data/dir', '--alongside', 'copy'], 'n\n');
    expect(along.stdout).toContain('This restores the chosen paths next to the live data:');
    expect(along.stdout).toContain('  - app/data/dir -> app/data/copy/dir');
    expect(along.stdout).not.toContain(RESTORE_SAFETY_NOTE);
  });

  it('--path restores only that path in place; --alongside into a new folder', async () => {
    const r = await json<Restore>([
      'snapshots',
      'restore',
      dep,
      snap,
      '--path',
      'app/data/notes.txt',
      '--yes',
      '--wait',
      '--no-safety-snapshot',
    ]);
    expect(r).toMatchObject({ status: 'completed', paths: ['app/data/notes.txt'], mode: 'replace', into: null });
    expect(fs.readFileSync(volumeFile(dep, 'notes.txt'), 'utf8')).toBe('first\n');
    expect(fs.readFileSync(volumeFile(dep, 'dir/added.txt'), 'utf8')).toBe('added since\n');

    const plain = await kova(['snapshots', 'restore', dep, snap, '--path', 'app/data/dir', '--alongside', 'restored', '--yes', '--wait']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(new RegExp(`^restored app/data/dir from ${snap} into ${dep} under restored`));
    expect(fs.readdirSync(volumeFile(dep, 'restored/dir')).sort()).toEqual(['f0', 'f1', 'f2']);
    expect(fs.existsSync(volumeFile(dep, 'dir/added.txt'))).toBe(true);
  });

  it('a path the snapshot lacks, or --alongside without --path: one-line errors, nothing done', async () => {
    const before = (await api<{ restores: Restore[] }>('GET', `/api/v1/deployments/${dep}/restores`)).restores.length;
    expectError(
      await kova(['snapshots', 'restore', dep, snap, '--path', 'app/data/nope', '--yes']),
      /^kova: the snapshot has no "app\/data\/nope" \(PATH_NOT_FOUND\)$/,
    );
    expectError(await kova(['snapshots', 'restore', dep, snap, '--alongside', 'x', '--yes']), /^kova: --alongside needs --path/);
    expect((await api<{ restores: Restore[] }>('GET', `/api/v1/deployments/${dep}/restores`)).restores).toHaveLength(before);
  });
});

describe('kova client: webhooks', () => {
  it('add prints the id and the secret once; list, deliveries and rm', async () => {
    const added = (await ok(['webhooks', 'add', `${url}/hook`, '--event', 'snapshot.failed', 'restore.completed'])).trimEnd().split('\n');
    expect(added).toHaveLength(2);
    const id = added[0]!;
    expect(id).toMatch(/^whk-/);
    expect(added[1]).toMatch(/^secret: whsec_/);
    const list = (await ok(['webhooks', 'list'])).trimEnd().split('\n');
    expect(list[0]).toMatch(/^ID\s+URL\s+EVENTS\s+CREATED\s+LAST DELIVERY$/);
    expect(list[1]).toContain(`${id}  ${url}/hook  snapshot.failed,restore.completed`);
    expect(list.join('\n')).not.toContain('whsec_');
    const listed = await json<Array<{ id: string; events: string[] }>>(['webhooks', 'list']);
    expect(listed.find((w) => w.id === id)?.events).toEqual(['snapshot.failed', 'restore.completed']);
    expect(await ok(['webhooks', 'deliveries', id])).toBe('no deliveries\n');
    expect(await json(['webhooks', 'deliveries', id])).toEqual([]);
    expectError(
      await kova(['webhooks', 'add', `${url}/hook`, '--event', 'snapshot.deleted']),
      /^kova: unknown event "snapshot.deleted".*\(INVALID_WEBHOOK_EVENT\)$/,
    );
    expectError(await kova(['webhooks', 'add', 'ftp://example.com/', '--event', 'snapshot.failed']), /\(INVALID_WEBHOOK_URL\)$/);
    expect(await ok(['webhooks', 'rm', id])).toBe(`deleted webhook ${id}\n`);
    expectError(await kova(['webhooks', 'rm', id]), /\(WEBHOOK_NOT_FOUND\)$/);
  });
});
