/**
 * control-plane: the composition root of `kova control-plane`. Opens the
 * catalogue (PostgreSQL; several replicas may share one database), wires
 * the network-mode backend and the node endpoints into the same HTTP API
 * and dashboard as `kova serve`, and serves. No runtime, no volumes: the
 * nodes (`kova node`) run the deployments.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
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
import { ReadRelay } from '../control/relay.js';
import { openCatalogue } from '../control/store/index.js';
import { NodeEvents, catalogueWebhookStore } from '../control/webhooks.js';
import { MAX_INTERVAL_MS } from '../scheduler/policy.js';
import { Metrics } from '../services/metrics.js';
import { type DispatcherOptions, WebhookDispatcher } from '../services/webhooks/dispatcher.js';
import { WebhookService } from '../services/webhooks/service.js';
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
  /** PEM certificate (with its chain) to serve HTTPS with; null: plain HTTP. Given with tlsKeyFile or not at all. */
  readonly tlsCertFile: string | null;
  /** PEM private key of tlsCertFile; null: plain HTTP. */
  readonly tlsKeyFile: string | null;
  /** Let webhooks call loopback, private, link-local and reserved addresses. Default false (refused). */
  readonly webhooksAllowPrivate: boolean;
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
  tlsCertFile: 'KOVA_TLS_CERT',
  tlsKeyFile: 'KOVA_TLS_KEY',
  webhooksAllowPrivate: 'KOVA_WEBHOOKS_ALLOW_PRIVATE',
};

function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ValidationError('INVALID_CONFIG', `${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

function bool(name: string, v: string | undefined): boolean {
  if (v === undefined) return false;
  if (['1', 'true', 'yes'].includes(v.toLowerCase())) return true;
  if (['0', 'false', 'no'].includes(v.toLowerCase())) return false;
  throw new ValidationError('INVALID_CONFIG', `${name} must be true or false, got "${v}"`);
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
  const tlsCert = get('tlsCertFile');
  const tlsKey = get('tlsKeyFile');
  if (Boolean(tlsCert) !== Boolean(tlsKey))
    throw new ValidationError(
      'INVALID_CONFIG',
      'give both --tls-cert and --tls-key (KOVA_TLS_CERT, KOVA_TLS_KEY) to serve HTTPS, or neither for plain HTTP',
    );
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
    tlsCertFile: tlsCert ? path.resolve(tlsCert) : null,
    tlsKeyFile: tlsKey ? path.resolve(tlsKey) : null,
    webhooksAllowPrivate: bool('webhooks allow private', get('webhooksAllowPrivate')),
  };
}

/** The PEM certificate and key the control plane serves HTTPS with. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * readTls reads and checks cfg's certificate and key: null for plain HTTP.
 * Throws INVALID_CONFIG when a file cannot be read, is not PEM, or the key
 * is not the certificate's, so a mistake stops the start with one line
 * instead of a TLS error at the first connection.
 */
export function readTls(cfg: Pick<ControlPlaneConfig, 'tlsCertFile' | 'tlsKeyFile'>): TlsFiles | null {
  if (!cfg.tlsCertFile || !cfg.tlsKeyFile) return null;
  const read = (flag: string, file: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ValidationError('INVALID_CONFIG', `cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const cert = read('--tls-cert', cfg.tlsCertFile);
  const key = read('--tls-key', cfg.tlsKeyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new ValidationError('INVALID_CONFIG', `--tls-cert ${cfg.tlsCertFile} is not a PEM certificate`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ValidationError('INVALID_CONFIG', `--tls-key ${cfg.tlsKeyFile} is not an unencrypted PEM private key`);
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new ValidationError('INVALID_CONFIG', `--tls-key ${cfg.tlsKeyFile} is not the private key of --tls-cert ${cfg.tlsCertFile}`);
  return { cert, key };
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
  /** The certificate and key already read (readTls); default: read from cfg. */
  readonly tls?: TlsFiles | null;
  /** Webhook delivery settings (concurrency, timeout, backoff jitter, lease); default the dispatcher's. */
  readonly webhooks?: DispatcherOptions;
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
  const backend = new ControlBackend(catalogue, dispatcher, clock, cfg.nodeTimeoutMs, {
    relay: new ReadRelay(catalogue, clock, log, { nodeTimeoutMs: cfg.nodeTimeoutMs }),
  });
  // Webhooks live in the catalogue; every replica sends the deliveries due, each claimed under a lease.
  const hookStore = catalogueWebhookStore(catalogue);
  const webhooks = new WebhookService(hookStore, clock, log, { allowPrivate: cfg.webhooksAllowPrivate });
  const deliveries = new WebhookDispatcher(hookStore, clock, log, webhooks.options, opts.webhooks);
  webhooks.onEmitted = () => deliveries.kick();
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
      verifications: backend.verifications,
      nodes: backend.nodes,
      webhooks,
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
      https: opts.tls !== undefined ? opts.tls : readTls(cfg),
      routes: nodeRoutes(catalogue, dispatcher, clock, {
        heartbeatIntervalMs: Math.max(1000, Math.floor(cfg.nodeTimeoutMs / 3)),
        nodeTimeoutMs: cfg.nodeTimeoutMs,
        relay: backend.relay,
        events: new NodeEvents(webhooks, log),
      }),
    },
  );
  deliveries.start();
  return {
    app,
    stop: async () => {
      await deliveries.stop();
      await dispatcher.stop();
    },
  };
}

export async function startControlPlane(cfg: ControlPlaneConfig, opts: ControlPlaneOptions = {}): Promise<RunningControlPlane> {
  const log = opts.logger ?? pino({ level: cfg.logLevel, base: { service: 'kova-control-plane' } });
  // Before the database: a wrong certificate or key stops the start at once.
  const tls = readTls(cfg);
  const catalogue = opts.catalogue ?? (await openCatalogue(cfg.databaseUrl, { clock: opts.clock }));
  let built: Awaited<ReturnType<typeof buildControlPlane>>;
  try {
    built = await buildControlPlane(cfg, catalogue, { ...opts, logger: log, tls });
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
  log.info({ url, tls: tls !== null }, 'kova control plane is serving');
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
