/**
 * harness: a complete Kova service for tests, in a temp data dir, wired as
 * `kova serve` wires it (src/app/server.ts, local-control.ts): the local
 * node's services over the real journal, engine and a real runtime
 * (process by default), its agent over the in-process transport, and the
 * API over the control plane's backend and catalogue (DATA/control.db);
 * driven through app.inject() (no socket) and a manual clock for the
 * scheduler. Tests may arrange state through `store` and `services` (the
 * node's): api() and idle() send what changed to the catalogue first.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/api/app.js';
import type { AppConfig } from '../../src/api/deps.js';
import { type LocalControl, startLocalControl } from '../../src/app/local-control.js';
import { VERSION } from '../../src/app/server.js';
import { type Services, wireServices } from '../../src/services/wire.js';
import type { CatalogueKeys } from '../../src/control/keys.js';
import { ManualClock, type Clock } from '../../src/core/clock.js';
import { Store } from '../../src/db/store.js';
import { ProcessRuntime } from '../../src/runtime/process/process-runtime.js';
import type { Runtime } from '../../src/runtime/types.js';
import { Paths } from '../../src/services/paths.js';

/** An API answer as tests read it: the body is parsed JSON, read freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read response bodies freely
type ApiAnswer = { status: number; body: any; res: LightMyRequestResponse };

export interface Harness {
  readonly app: FastifyInstance;
  /** The local node's services (their store is the node's journal). */
  readonly services: Services;
  /** The control plane around the node: catalogue, keys, agent. */
  readonly local: LocalControl;
  /** Users' API keys, as the API checks them (the catalogue's). */
  readonly keys: CatalogueKeys;
  readonly store: Store;
  readonly runtime: Runtime;
  readonly paths: Paths;
  readonly clock: Clock;
  readonly dataDir: string;
  /** An API token of user "alice". */
  readonly token: string;
  /** newUser creates another user and returns a token for them. */
  newUser(name: string): Promise<string>;
  /** ensureUser returns the id of the user with this name in the catalogue, creating it. */
  ensureUser(name: string): Promise<string>;
  /** api calls the API as `token` (default alice's) and returns status and parsed body. */
  api(method: string, url: string, body?: unknown, token?: string | null): Promise<ApiAnswer>;
  /** buildApp builds another app around the same services, its config changed by `config`. */
  buildApp(config?: Partial<AppConfig>): Promise<FastifyInstance>;
  /** idle waits until no job is queued or running, and the catalogue holds what they changed. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** The token the harness's GET /metrics takes. */
export const METRICS_TOKEN = 'test-metrics-token-0123456789';

export interface HarnessOptions {
  readonly runtime?: (paths: Paths) => Runtime;
  readonly clock?: Clock;
  readonly minSnapshotIntervalMs?: number;
  /** How long after a delete the batched gc is due (default the product's). */
  readonly gcIntervalMs?: number;
  readonly rateLimitPerMinute?: number;
  readonly dataDir?: string;
  /** Other limits of the app (default: too high to matter). */
  readonly limits?: Pick<AppConfig, 'userRateLimitPerMinute' | 'signInsPerPrefix' | 'signInsPerAddress'>;
  /** Active keys a user may have (default the product's). */
  readonly maxKeysPerUser?: number;
  /** Webhook rules and delivery settings (default the product's: private addresses refused). */
  readonly webhooks?: Parameters<typeof wireServices>[0]['webhooks'];
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kova-svc-'));
  const paths = new Paths(dataDir);
  const store = Store.open(paths.database);
  const clock = opts.clock ?? new ManualClock(Date.now());
  const runtime = opts.runtime ? opts.runtime(paths) : new ProcessRuntime({ stateDir: paths.runtimeDir, stopTimeoutMs: 2000 });
  const log = pino({ level: process.env.KOVA_TEST_LOG ?? 'silent' });
  const minSnapshotIntervalMs = opts.minSnapshotIntervalMs ?? 1000;
  const services = wireServices({
    store,
    runtime,
    paths,
    clock,
    log,
    minSnapshotIntervalMs,
    gcIntervalMs: opts.gcIntervalMs,
    jobConcurrency: 2,
    maxKeysPerUser: opts.maxKeysPerUser,
    webhooks: opts.webhooks,
  });
  services.ctx.jobs.start();
  const local = await startLocalControl(services, { clock, log, version: VERSION, maxKeysPerUser: opts.maxKeysPerUser });
  const appConfig: AppConfig = {
    minSnapshotIntervalMs,
    rateLimitPerMinute: opts.rateLimitPerMinute ?? 100_000,
    runtime: runtime.kind,
    version: VERSION,
    metricsToken: METRICS_TOKEN,
    userRateLimitPerMinute: 100_000,
    signInsPerPrefix: 100_000,
    signInsPerAddress: 100_000,
    ...opts.limits,
  };
  const appWith = (config: Partial<AppConfig> = {}): Promise<FastifyInstance> =>
    buildApp({
      ...local.deps,
      metrics: services.ctx.metrics,
      disk: services.ctx.disk,
      clock,
      config: { ...appConfig, ...config },
    });
  const app = await appWith();
  // As kova serve and kova keys do: the user named admin is an admin.
  const ensureUser = async (name: string): Promise<string> =>
    (await local.catalogue.ensureUser(name, name === 'admin' ? 'admin' : 'user', clock.now())).id;
  const newUser = async (name: string): Promise<string> => (await local.keys.create(await ensureUser(name), 'test')).token;
  const token = await newUser('alice');
  const api: Harness['api'] = async (method, url, body, tok = token) => {
    // What changed on the node (tests arrange state through its store too) reaches the catalogue first.
    await local.agent.sync.checkLive();
    await local.agent.sync.flush();
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: {
        ...(tok ? { authorization: `Bearer ${tok}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    let parsed: unknown;
    try {
      parsed = res.body ? JSON.parse(res.body) : null;
    } catch {
      parsed = res.body;
    }
    return { status: res.statusCode, body: parsed, res };
  };
  return {
    app,
    services,
    local,
    keys: local.keys,
    store,
    runtime,
    paths,
    clock,
    dataDir,
    token,
    newUser,
    ensureUser,
    api,
    buildApp: appWith,
    async idle() {
      await services.ctx.jobs.idle();
      await local.settle();
    },
    async close() {
      await local.stop();
      await app.close();
      await services.dispatcher.stop();
      await services.ctx.jobs.stop();
      for (const id of await runtime.deployments()) await runtime.remove(id).catch(() => undefined);
      await runtime.close();
      await local.closeCatalogue();
      store.close();
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** sdlFor returns a valid SDL with one service `app` running `script` (sh -c) with volume `data` at /data. */
export function sdlFor(script: string, opts: { image?: string; pre?: string[]; post?: string[]; volumes?: string[] } = {}): string {
  const vols = opts.volumes ?? ['data'];
  const hooks =
    opts.pre || opts.post
      ? `      snapshot:\n${opts.pre ? `        pre: ${JSON.stringify(opts.pre)}\n` : ''}${opts.post ? `        post: ${JSON.stringify(opts.post)}\n` : ''}`
      : '';
  return `version: "2.0"
services:
  app:
    image: ${opts.image ?? 'busybox'}
    command: ["sh", "-c"]
    args:
      - ${JSON.stringify(script)}
    params:
      storage:
${vols.map((v, i) => `        ${v}:\n          mount: /${i === 0 ? 'data' : v}`).join('\n')}
${hooks}profiles:
  compute:
    app:
      resources:
        storage:
          - size: 512Mi
${vols.map((v) => `          - name: ${v}\n            size: 1Gi\n            attributes:\n              persistent: true`).join('\n')}
deployment:
  app:
    local:
      profile: app
      count: 1
`;
}

/** waitFor polls `check` until it returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs = 30_000, what = 'condition'): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
