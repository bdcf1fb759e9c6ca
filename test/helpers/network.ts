/**
 * network: a Kova network on one machine for end-to-end suites: a real
 * PostgreSQL, control-plane replicas (`kova control-plane`) and nodes
 * (`kova node`), each a child process with its own port or data directory,
 * set up with the operator commands (`kova nodes add`, `kova keys create`).
 *
 * With `tls: true` the replicas serve HTTPS with a self-signed certificate
 * made here with openssl for the IP address 127.0.0.1 (the address every
 * URL uses, links included), and the nodes trust it with `--ca`; the test's
 * own API clients trust it too.
 *
 * close() stops everything it started, ends the services the nodes' process
 * runtime left running and removes the Docker containers whose volumes are
 * in the network's directories (both outlive their node by design), then
 * removes the temp directories.
 */
import { type ChildProcess, execFile as execFileCb, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { DockerClient } from '../../src/runtime/docker/docker-client.js';
import { LABEL_MANAGED } from '../../src/runtime/docker/docker-runtime.js';
import type { Api, ApiResult } from './flows.js';
import { type Link, startLink } from './link.js';
import { type PostgresCluster, startPostgres } from './postgres.js';
import { type Exit, freePort, command, killServices } from './server-process.js';

const execFile = promisify(execFileCb);

/** A kova child process: its output so far, and ways to end or pause it. */
export interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  output(): string;
  /** stop: SIGTERM, SIGKILL after 15 s. */
  stop(): Promise<Exit>;
  /** kill: SIGKILL at once. */
  kill(): Promise<Exit>;
}

export interface ControlPlane extends Proc {
  readonly url: string;
  readonly port: number;
}

export interface KovaNode extends Proc {
  readonly name: string;
  readonly dataDir: string;
  /** The node's links to each replica (it dials the control plane through them). */
  readonly links: readonly Link[];
  /** cut: the node loses the network to every replica; heal: it comes back. */
  cut(): void;
  heal(): void;
}

function spawnKova(args: readonly string[], what: string, fault?: string): Proc {
  const { program, args: pre } = command();
  const env = { ...process.env };
  delete env.KOVA_FAULT;
  if (fault) env.KOVA_FAULT = fault;
  const child = spawn(program, [...pre, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const waitExit = async (ms: number): Promise<Exit> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${what} did not exit within ${ms} ms:\n${out.slice(-3000)}`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    child,
    exited,
    output: () => out,
    async stop() {
      if (exit) return exit;
      child.kill('SIGCONT');
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

/** kova runs one CLI command to completion and returns its output (throwing with it on failure). */
export async function kova(args: readonly string[]): Promise<string> {
  const { program, args: pre } = command();
  try {
    const { stdout } = await execFile(program, [...pre, ...args], { maxBuffer: 10 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`kova ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

const lastLine = (s: string): string => s.trim().split('\n').at(-1)!.trim();

/** request sends one HTTP(S) request, trusting `ca` (a PEM certificate) for https URLs when given. */
export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer | null } = {},
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      u,
      {
        method: opts.method ?? 'GET',
        headers: { ...opts.headers, ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}) },
        ...(secure && opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** apiAs is an Api client for `url` signed in with `key` (trusting `ca` for https). */
export function apiAs(url: () => string, key: string, ca: Buffer | null = null): Api {
  return async (method, p, body) => {
    const res = await request(`${url()}${p}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      ca,
    });
    let parsed: unknown = res.text;
    try {
      parsed = res.text ? JSON.parse(res.text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed } as ApiResult;
  };
}

/** selfSignedCertificate writes cert.pem and key.pem for the IP address 127.0.0.1 into `dir` (openssl). */
export async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await execFile('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return { cert, key };
}

/** removeContainersUnder force-removes the Kova containers that mount anything under `dir`. */
async function removeContainersUnder(dir: string): Promise<void> {
  const docker = new DockerClient();
  try {
    const all =
      (await docker.json<Array<{ Id: string; Mounts?: Array<{ Source?: string }> }>>('GET', '/containers/json', {
        query: { all: true, filters: JSON.stringify({ label: [`${LABEL_MANAGED}=true`] }) },
      })) ?? [];
    const mine = all.filter((c) => (c.Mounts ?? []).some((m) => m.Source?.startsWith(`${dir}${path.sep}`)));
    await Promise.all(mine.map((c) => docker.removeContainer(c.Id)));
  } finally {
    docker.close();
  }
}

export interface NetworkOptions {
  readonly replicas?: number;
  readonly nodes?: number;
  readonly runtime?: 'process' | 'docker';
  /** The control plane's --node-timeout. */
  readonly nodeTimeout?: string;
  /** Extra arguments for every node. */
  readonly nodeArgs?: readonly string[];
  /** Serve the control plane over HTTPS with a self-signed certificate; nodes get --ca. */
  readonly tls?: boolean;
}

export interface Network {
  readonly pg: PostgresCluster;
  readonly databaseUrl: string;
  readonly replicas: ControlPlane[];
  readonly nodes: KovaNode[];
  /** With tls: the control plane's certificate (PEM file), which nodes are given with --ca; else null. */
  readonly caFile: string | null;
  /** The node tokens, by node index. */
  readonly tokens: readonly string[];
  /** The admin's key, and an API client for it on replica `i` (default 0). */
  readonly adminKey: string;
  admin(i?: number): Api;
  /** userKey creates a user (and a key for it) with `kova keys create`. */
  userKey(name: string): Promise<string>;
  /** api: a client for `key` on replica `i`, following the replica if it is restarted. */
  api(key: string, i?: number): Api;
  startReplica(i: number): Promise<ControlPlane>;
  /** startNode starts node `i` (again); `fault` arms a crash point (KOVA_FAULT) in it. */
  startNode(i: number, opts?: { fault?: string }): Promise<KovaNode>;
  /** waitNodes waits until GET /api/v1/nodes shows each named node with the wanted status. */
  waitNodes(want: Record<string, string>, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startNetwork(opts: NetworkOptions = {}): Promise<Network> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-net-'));
  const pg = await startPostgres();
  const replicas: ControlPlane[] = [];
  const nodes: KovaNode[] = [];
  const ports: number[] = [];
  const tokens: string[] = [];
  const links: Link[][] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled([...replicas, ...nodes].map((p) => p?.stop()));
    await Promise.allSettled(links.flat().map((l) => l.close()));
    for (const n of nodes) if (n) killServices(n.dataDir);
    if (opts.runtime === 'docker') await removeContainersUnder(root).catch(() => undefined);
    await pg.close().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    const databaseUrl = await pg.createDatabase('kova');
    const db = ['--database', databaseUrl];
    const tls = opts.tls ? await selfSignedCertificate(root) : null;
    const ca = tls ? fs.readFileSync(tls.cert) : null;
    const scheme = tls ? 'https' : 'http';
    const adminKey = lastLine(await kova(['keys', 'create', '--user', 'admin', '--role', 'admin', ...db]));
    const nodeCount = opts.nodes ?? 3;
    for (let i = 0; i < nodeCount; i++) tokens.push(lastLine(await kova(['nodes', 'add', `node-${i + 1}`, ...db])));
    for (let i = 0; i < (opts.replicas ?? 2); i++) ports.push(await freePort());

    const startReplica = async (i: number): Promise<ControlPlane> => {
      const port = ports[i]!;
      const url = `${scheme}://127.0.0.1:${port}`;
      const p = spawnKova(
        [
          'control-plane',
          ...db,
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--node-timeout',
          opts.nodeTimeout ?? '3s',
          '--rate-limit',
          '1000000',
          '--log-level',
          process.env.KOVA_TEST_LOG ?? 'warn',
          ...(tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : []),
        ],
        `control plane ${i}`,
      );
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          if ((await request(`${url}/healthz`, { ca })).status === 200) break;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) {
          await p.kill();
          throw new Error(`control plane ${i} was not ready:\n${p.output().slice(-3000)}`);
        }
        await sleep(50);
      }
      const cp = { ...p, url, port };
      replicas[i] = cp;
      return cp;
    };

    const startNode = async (i: number, o: { fault?: string } = {}): Promise<KovaNode> => {
      const dataDir = path.join(root, `node-${i + 1}`);
      links[i] ??= await Promise.all(ports.map((port) => startLink(port)));
      const mine = links[i]!;
      const p = spawnKova(
        [
          'node',
          '--control-plane',
          mine.map((l) => `${scheme}://127.0.0.1:${l.port}`).join(','),
          '--token',
          tokens[i]!,
          '--data-dir',
          dataDir,
          '--runtime',
          opts.runtime ?? 'process',
          '--docker-network',
          'none',
          '--min-snapshot-interval',
          '1s',
          '--stop-timeout',
          '2',
          '--log-level',
          process.env.KOVA_TEST_LOG ?? 'warn',
          ...(tls ? ['--ca', tls.cert] : []),
          ...(opts.nodeArgs ?? []),
        ],
        `node ${i + 1}`,
        o.fault,
      );
      const n = {
        ...p,
        name: `node-${i + 1}`,
        dataDir,
        links: mine,
        cut: () => mine.forEach((l) => l.cut()),
        heal: () => mine.forEach((l) => l.heal()),
      };
      nodes[i] = n;
      return n;
    };

    const api = (key: string, i = 0): Api => apiAs(() => replicas[i]!.url, key, ca);
    const net: Network = {
      pg,
      databaseUrl,
      replicas,
      nodes,
      caFile: tls?.cert ?? null,
      tokens,
      adminKey,
      admin: (i = 0) => api(adminKey, i),
      userKey: async (name) => lastLine(await kova(['keys', 'create', '--user', name, ...db])),
      api,
      startReplica,
      startNode,
      async waitNodes(want, timeoutMs = 60_000) {
        const deadline = Date.now() + timeoutMs;
        let last: unknown = null;
        for (;;) {
          const live = replicas.find((r) => r && r.child.exitCode === null && r.child.signalCode === null);
          if (live) {
            const r = await apiAs(() => live.url, adminKey, ca)('GET', '/api/v1/nodes').catch(() => null);
            if (r?.status === 200) {
              last = r.body;
              const got = new Map((r.body.nodes as Array<{ name: string; status: string }>).map((n) => [n.name, n.status]));
              if (Object.entries(want).every(([name, status]) => got.get(name) === status)) return;
            }
          }
          if (Date.now() > deadline) throw new Error(`nodes never reached ${JSON.stringify(want)}; last: ${JSON.stringify(last)}`);
          await sleep(100);
        }
      },
      close: closeAll,
    };
    for (let i = 0; i < ports.length; i++) await startReplica(i);
    for (let i = 0; i < nodeCount; i++) await startNode(i);
    await net.waitNodes(Object.fromEntries(nodes.map((n) => [n.name, 'online'])));
    return net;
  } catch (err) {
    await closeAll();
    throw err;
  }
}
