/**
 * server: the composition root of `kova serve`, the control plane plus one
 * local node in one process (local-control.ts). Picks the runtime, opens
 * the node's journal (kova.db), wires the node's services, jobs and
 * scheduler, recovers what a crash interrupted, starts the local control
 * plane (catalogue in control.db, the node's agent over the in-process
 * transport) and serves the HTTP API over the control plane's backend.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.js';
import { type Clock, systemClock } from '../core/clock.js';
import { KovaError, ValidationError, isErrno } from '../core/errors.js';
import { Store } from '../db/store.js';
import { DEFAULT_DOCKER_SOCKET } from '../runtime/docker/docker-client.js';
import { DockerRuntime } from '../runtime/docker/docker-runtime.js';
import { ProcessRuntime } from '../runtime/process/process-runtime.js';
import type { Runtime } from '../runtime/types.js';
import { Paths } from '../services/paths.js';
import type { OffsiteOptions } from '../services/offsite-service.js';
import { type RecoveryReport, recoverFromOffsite } from '../services/offsite-recovery.js';
import { type OffsiteTarget, normalizeTarget } from '../services/offsite-target.js';
import { PROCESS_ISOLATION_WARNING } from '../services/views.js';
import type { ServerConfig } from './config.js';
import { ensurePrivateDataDir } from './data-dir.js';
import { type LocalControl, startLocalControl } from './local-control.js';
import { type Services, wireServices } from '../services/wire.js';

export const VERSION = '0.1.0';
export const SCHEDULER_TICK_MS = 1000;

export interface RunningServer {
  readonly app: FastifyInstance;
  /** The local node's services. */
  readonly services: Services;
  /** The control plane around it (catalogue, keys, the node's agent). */
  readonly local: LocalControl;
  readonly url: string;
  readonly adminKeyFile: string | null;
  /** What --recover-from brought back; null without it. */
  readonly recovered: RecoveryReport | null;
  close(): Promise<void>;
}

/** Docker does not answer and the operator did not ask for the process runtime. */
export class RuntimeUnavailableError extends KovaError {
  constructor(socket: string) {
    super(
      'RUNTIME_UNAVAILABLE',
      `Docker does not answer at ${socket}: start Docker (or point --docker-host at it), ` +
        'or pass --runtime process to run services as local processes with no isolation (development only)',
      { status: 500, details: { socket } },
    );
  }
}

/**
 * chooseRuntime picks the runtime. `process` is only ever used when asked
 * for by name: `auto` (the default) is Docker when its daemon answers and a
 * refusal to start (RuntimeUnavailableError) when it does not, so a node
 * whose Docker is down never quietly runs tenants as local processes.
 */
export async function chooseRuntime(cfg: ServerConfig, paths: Paths, log: Logger): Promise<Runtime> {
  const dockerOpts = { socketPath: cfg.dockerHost ?? undefined, networkMode: cfg.dockerNetwork, stopTimeoutSec: cfg.stopTimeoutSec };
  if (cfg.runtime === 'process') {
    log.warn(PROCESS_ISOLATION_WARNING);
    return new ProcessRuntime({ stateDir: paths.runtimeDir, stopTimeoutMs: cfg.stopTimeoutSec * 1000 });
  }
  if (cfg.runtime === 'docker') return new DockerRuntime(dockerOpts);
  if (await DockerRuntime.available(dockerOpts)) return new DockerRuntime(dockerOpts);
  throw new RuntimeUnavailableError(cfg.dockerHost ?? DEFAULT_DOCKER_SOCKET);
}

/** webDir finds the built dashboard (web/dist) next to the package. */
export function defaultWebDir(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dir = path.resolve(here, '..', '..', 'web', 'dist');
  return fs.existsSync(path.join(dir, 'index.html')) ? dir : null;
}

/** bootstrapAdmin creates user "admin" (role admin) and a key on a fresh data dir; returns the key file. */
async function bootstrapAdmin(local: LocalControl, paths: Paths, clock: Clock): Promise<string | null> {
  if ((await local.catalogue.countUsers()) > 0) return null;
  const admin = await local.catalogue.ensureUser('admin', 'admin', clock.now());
  // Through the API's key service: the key is copied into kova.db too (mirrorKeys).
  const { token } = await local.deps.keys.create(admin.id, 'bootstrap');
  const file = path.join(paths.dataDir, 'admin.key');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

const METRICS_TOKEN_MIN = 16;

/**
 * metricsToken reads the token GET /metrics takes from its file, creating
 * the file (mode 600, a random token) when it does not exist yet.
 */
export function metricsToken(file: string): string {
  try {
    fs.writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  }
  const token = fs.readFileSync(file, 'utf8').trim();
  if (token.length < METRICS_TOKEN_MIN || /\s/.test(token)) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `the metrics token in ${file} must be at least ${METRICS_TOKEN_MIN} characters with no spaces`,
    );
  }
  return token;
}

/** offsiteTarget is the configured off-node target: --offsite, else the --recover-from target (copies go on where they came from). */
export function offsiteTarget(cfg: ServerConfig, s3?: OffsiteTarget['s3'], url = cfg.offsite ?? cfg.recoverFrom): OffsiteTarget | null {
  if (url === null || cfg.offsiteKeyFile === null) return null;
  return normalizeTarget({
    url,
    keyFile: cfg.offsiteKeyFile,
    ...(cfg.s3Endpoint ? { s3Endpoint: cfg.s3Endpoint } : {}),
    ...(s3 ? { s3 } : {}),
  });
}

export async function startServer(
  cfg: ServerConfig,
  opts: {
    clock?: Clock;
    logger?: Logger;
    offsiteOptions?: OffsiteOptions;
    /** S3 settings of the off-node target (tests: fewer retries); default the AWS environment and the engine's retries. */
    offsiteS3?: OffsiteTarget['s3'];
  } = {},
): Promise<RunningServer> {
  const log = opts.logger ?? pino({ level: cfg.logLevel, base: { service: 'kova' } });
  const clock = opts.clock ?? systemClock;
  ensurePrivateDataDir(cfg.dataDir, log);
  const metrics = metricsToken(cfg.metricsTokenFile);
  const paths = new Paths(cfg.dataDir);
  // The runtime before the database: refusing to start leaves no database behind.
  const runtime = await chooseRuntime(cfg, paths, log);
  let store: Store;
  try {
    store = Store.open(paths.database);
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const services = wireServices({
    store,
    runtime,
    paths,
    clock,
    log,
    minSnapshotIntervalMs: cfg.minSnapshotIntervalMs,
    gcIntervalMs: cfg.gcIntervalMs,
    jobConcurrency: cfg.jobConcurrency,
    maxKeysPerUser: cfg.maxKeysPerUser,
    webhooks: { allowPrivate: cfg.webhooksAllowPrivate },
    offsite: offsiteTarget(cfg, opts.offsiteS3),
    offsiteOptions: opts.offsiteOptions,
  });
  let recovered: RecoveryReport | null = null;
  if (cfg.recoverFrom !== null && cfg.offsiteKeyFile !== null) {
    try {
      recovered = await recoverFromOffsite(store, paths, offsiteTarget(cfg, opts.offsiteS3, cfg.recoverFrom)!, log);
    } catch (err) {
      await runtime.close();
      store.close();
      throw err;
    }
  }
  const requeued = services.ctx.jobs.start();
  if (requeued > 0) log.warn({ jobs: requeued }, 'resuming jobs interrupted by a restart');
  let local: LocalControl;
  try {
    await services.deployments.reconcile();
    local = await startLocalControl(services, { clock, log, version: VERSION, maxKeysPerUser: cfg.maxKeysPerUser });
  } catch (err) {
    await services.ctx.jobs.stop();
    await runtime.close();
    store.close();
    throw err;
  }
  const adminKeyFile = await bootstrapAdmin(local, paths, clock);
  // Deliveries still pending from before a restart are sent again from here.
  services.dispatcher.start();
  services.offsite.start();
  const tick = setInterval(() => {
    try {
      services.settings.tick();
    } catch (err) {
      log.error({ err }, 'scheduler tick failed');
    }
  }, SCHEDULER_TICK_MS);
  tick.unref();

  const app = await buildApp(
    {
      ...local.deps,
      metrics: services.ctx.metrics,
      disk: services.ctx.disk,
      clock,
      config: {
        minSnapshotIntervalMs: cfg.minSnapshotIntervalMs,
        rateLimitPerMinute: cfg.rateLimitPerMinute,
        userRateLimitPerMinute: cfg.userRateLimitPerMinute,
        runtime: runtime.kind,
        version: VERSION,
        webDir: defaultWebDir(),
        metricsToken: metrics,
      },
    },
    { logger: log },
  );
  const url = await app.listen({ host: cfg.host, port: cfg.port });
  log.info({ url, runtime: runtime.kind, dataDir: cfg.dataDir }, 'kova is serving');
  let closed = false;
  return {
    app,
    services,
    local,
    url,
    adminKeyFile,
    recovered,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(tick);
      // Requests waiting for the node answer first (503), then the app stops taking requests.
      await local.stop();
      await app.close();
      await services.dispatcher.stop();
      await services.ctx.jobs.stop();
      await services.offsite.stop();
      await runtime.close();
      await local.closeCatalogue();
      store.close();
    },
  };
}
