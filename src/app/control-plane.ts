/**
 * control-plane: the composition root of `kova control-plane`. Opens the
 * catalogue (PostgreSQL; several replicas may share one database), wires
 * the network-mode backend and the node endpoints into the same HTTP API
 * and dashboard as `kova serve`, and serves. No runtime, no volumes: the
 * nodes (`kova node`) run the deployments.
 */
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { buildApp } from '../api/app.js';
import { DEFAULT_LIMITS, USER_LIMIT_FACTOR } from '../api/deps.js';
import { type Clock, systemClock } from '../core/clock.js';
import { ValidationError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../core/units.js';
import { ControlBackend } from '../control/backend.js';
import type { Catalogue } from '../control/catalogue.js';
import { DEFAULT_NODE_TIMEOUT_MS, DEFAULT_WAIT_MS, Dispatcher } from '../control/dispatch.js';
import { CatalogueKeys } from '../control/keys.js';
import { nodeRoutes } from '../control/node-routes.js';
import { catalogueStore } from '../control/rate-limit-store.js';
import { openCatalogue } from '../control/store/index.js';
import { MAX_INTERVAL_MS } from '../scheduler/policy.js';
import { Metrics } from '../services/metrics.js';
import { VERSION, defaultWebDir } from './server.js';

export interface ControlPlaneConfig {
  /** The catalogue: postgres://… (replicas share it), or a SQLite file for a single replica. Required. */
  readonly databaseUrl: string;
  /** Default 127.0.0.1. */
  readonly host: string;
  /** Default 8080. */
  readonly port: number;
  /** After how long without a heartbeat a node is offline. Default 30s. */
  readonly nodeTimeoutMs: number;
  /** How long a request waits for its node's answer. Default 10s. */
  readonly waitMs: number;
  /** The smallest automatic snapshot interval, as the nodes have it (shown to clients). Default 1h. */
  readonly minSnapshotIntervalMs: number;
  /** Requests a minute per API key, counted across replicas. Default 100. */
  readonly rateLimitPerMinute: number;
  /** Requests a minute per user. Default three times rateLimitPerMinute. */
  readonly userRateLimitPerMinute: number;
  /** pino level. Default info. */
  readonly logLevel: string;
}

export type ControlPlaneInput = Partial<Record<keyof ControlPlaneConfig, string | number | undefined>>;

const ENV: Record<keyof ControlPlaneConfig, string> = {
  databaseUrl: 'KOVA_DATABASE_URL',
  host: 'KOVA_HOST',
  port: 'KOVA_PORT',
  nodeTimeoutMs: 'KOVA_NODE_TIMEOUT',
  waitMs: 'KOVA_NODE_WAIT',
  minSnapshotIntervalMs: 'KOVA_MIN_SNAPSHOT_INTERVAL',
  rateLimitPerMinute: 'KOVA_RATE_LIMIT',
  userRateLimitPerMinute: 'KOVA_USER_RATE_LIMIT',
  logLevel: 'KOVA_LOG_LEVEL',
};

function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ValidationError('INVALID_CONFIG', `${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

function duration(name: string, v: string, minMs: number, maxMs: number): number {
  const ms = parseDuration(v);
  if (ms === null || ms < minMs || ms > maxMs)
    throw new ValidationError(
      'INVALID_CONFIG',
      `${name} must be a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, like 30s or 2m, got "${v}"`,
    );
  return ms;
}

/** loadControlPlaneConfig: each setting from its flag, else its KOVA_* variable, else its default. */
export function loadControlPlaneConfig(flags: ControlPlaneInput = {}, env: NodeJS.ProcessEnv = process.env): ControlPlaneConfig {
  const get = (k: keyof ControlPlaneConfig): string | undefined => {
    const f = flags[k];
    if (f !== undefined && f !== '') return String(f);
    const e = env[ENV[k]];
    return e !== undefined && e !== '' ? e : undefined;
  };
  const databaseUrl = get('databaseUrl');
  if (!databaseUrl) throw new ValidationError('INVALID_CONFIG', 'give the database: --database postgres://… (or KOVA_DATABASE_URL)');
  const rateLimitPerMinute = int('rate limit', get('rateLimitPerMinute') ?? String(DEFAULT_LIMITS.perKey), 1, 1_000_000);
  return {
    databaseUrl,
    host: get('host') ?? '127.0.0.1',
    port: int('port', get('port') ?? '8080', 0, 65535),
    nodeTimeoutMs: duration('node timeout', get('nodeTimeoutMs') ?? formatDuration(DEFAULT_NODE_TIMEOUT_MS), 3000, 3600_000),
    waitMs: duration('node wait', get('waitMs') ?? formatDuration(DEFAULT_WAIT_MS), 1000, 600_000),
    minSnapshotIntervalMs: duration('min snapshot interval', get('minSnapshotIntervalMs') ?? '1h', 1000, MAX_INTERVAL_MS),
    rateLimitPerMinute,
    userRateLimitPerMinute: int(
      'user rate limit',
      get('userRateLimitPerMinute') ?? String(USER_LIMIT_FACTOR * rateLimitPerMinute),
      1,
      1_000_000_000,
    ),
    logLevel: get('logLevel') ?? 'info',
  };
}

/** How long /healthz waits for the database before calling it unreachable. */
const HEALTH_TIMEOUT_MS = 3000;

export interface RunningControlPlane {
  readonly app: FastifyInstance;
  readonly catalogue: Catalogue;
  readonly url: string;
  /** Stops serving: waits for nodes' answers end (as on a timeout), long polls end, then the database closes. */
  close(): Promise<void>;
}

export interface ControlPlaneOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** An open catalogue to use instead of opening cfg.databaseUrl (closed by close()). */
  readonly catalogue?: Catalogue;
  /** Sign-in limits (default the API's). */
  readonly signInsPerPrefix?: number;
  readonly signInsPerAddress?: number;
}

/** buildControlPlane wires a control plane around an open catalogue, not listening (tests inject or listen). */
export async function buildControlPlane(
  cfg: ControlPlaneConfig,
  catalogue: Catalogue,
  opts: ControlPlaneOptions = {},
): Promise<{ app: FastifyInstance; stop(): Promise<void> }> {
  const log = opts.logger ?? pino({ level: cfg.logLevel, base: { service: 'kova-control-plane' } });
  const clock = opts.clock ?? systemClock;
  const dispatcher = new Dispatcher(catalogue, clock, { waitMs: cfg.waitMs, nodeTimeoutMs: cfg.nodeTimeoutMs }, log);
  const backend = new ControlBackend(catalogue, dispatcher, clock, cfg.nodeTimeoutMs);
  const health = async () => {
    const base = { role: 'control-plane', version: VERSION };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        catalogue.countUsers(),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), HEALTH_TIMEOUT_MS);
        }),
      ]);
      return { status: 200, body: { status: 'ok', ...base, database: 'ok' } };
    } catch (err) {
      log.warn({ err }, 'health check: the database does not answer');
      return { status: 503, body: { status: 'unavailable', ...base, database: 'unreachable' } };
    } finally {
      clearTimeout(timer);
    }
  };
  const app = await buildApp(
    {
      keys: new CatalogueKeys(catalogue, clock),
      deployments: backend.deployments,
      snapshots: backend.snapshots,
      restores: backend.restores,
      browse: backend.browse,
      settings: backend.settings,
      nodes: backend.nodes,
      metrics: new Metrics(),
      health,
      rateLimitStore: catalogueStore(catalogue, clock),
      clock,
      config: {
        minSnapshotIntervalMs: cfg.minSnapshotIntervalMs,
        rateLimitPerMinute: cfg.rateLimitPerMinute,
        userRateLimitPerMinute: cfg.userRateLimitPerMinute,
        ...(opts.signInsPerPrefix === undefined ? {} : { signInsPerPrefix: opts.signInsPerPrefix }),
        ...(opts.signInsPerAddress === undefined ? {} : { signInsPerAddress: opts.signInsPerAddress }),
        // Shown by /api/v1/me; the nodes choose their own runtime.
        runtime: 'docker',
        version: VERSION,
        webDir: defaultWebDir(),
        metricsToken: null,
      },
    },
    {
      logger: log,
      routes: nodeRoutes(catalogue, dispatcher, clock, {
        heartbeatIntervalMs: Math.max(1000, Math.floor(cfg.nodeTimeoutMs / 3)),
        nodeTimeoutMs: cfg.nodeTimeoutMs,
      }),
    },
  );
  return { app, stop: () => dispatcher.stop() };
}

export async function startControlPlane(cfg: ControlPlaneConfig, opts: ControlPlaneOptions = {}): Promise<RunningControlPlane> {
  const log = opts.logger ?? pino({ level: cfg.logLevel, base: { service: 'kova-control-plane' } });
  const catalogue = opts.catalogue ?? (await openCatalogue(cfg.databaseUrl, { clock: opts.clock }));
  let built: Awaited<ReturnType<typeof buildControlPlane>>;
  try {
    built = await buildControlPlane(cfg, catalogue, { ...opts, logger: log });
  } catch (err) {
    await catalogue.close();
    throw err;
  }
  const { app, stop } = built;
  let url: string;
  try {
    url = await app.listen({ host: cfg.host, port: cfg.port });
  } catch (err) {
    await app.close();
    await catalogue.close();
    throw err;
  }
  log.info({ url }, 'kova control plane is serving');
  let closed = false;
  return {
    app,
    catalogue,
    url,
    async close() {
      if (closed) return;
      closed = true;
      await stop();
      await app.close();
      await catalogue.close();
    },
  };
}
