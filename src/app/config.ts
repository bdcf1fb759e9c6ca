/**
 * config: the server's settings. Each comes from a command-line flag, else
 * an environment variable, else its default; defaults are applied here and
 * nowhere else.
 */
import path from 'node:path';
import { DEFAULT_LIMITS, USER_LIMIT_FACTOR } from '../api/deps.js';
import { ValidationError } from '../core/errors.js';
import { DEFAULT_GC_INTERVAL_MS } from '../services/gc-service.js';
import { DEFAULT_MAX_KEYS_PER_USER } from '../services/keys.js';
import { formatDuration, parseDuration } from '../core/units.js';
import { MAX_INTERVAL_MS } from '../scheduler/policy.js';

export type RuntimeChoice = 'auto' | 'docker' | 'process';

export interface ServerConfig {
  /** Where the database, volumes and repositories live. Default ./.kova */
  readonly dataDir: string;
  /** Default 127.0.0.1: only this machine can reach the API unless told otherwise. */
  readonly host: string;
  /** Default 8080. */
  readonly port: number;
  /** Default auto: Docker when its socket answers, else no start. `process` (no isolation) only when named. */
  readonly runtime: RuntimeChoice;
  /** Docker socket (unix:///path or a path). Default /var/run/docker.sock. */
  readonly dockerHost: string | null;
  /** Network mode of containers. Default bridge; tests use none. */
  readonly dockerNetwork: string;
  /** Seconds services get to stop before being killed. Default 10. */
  readonly stopTimeoutSec: number;
  /** Smallest automatic snapshot interval users may set. Default 1h. */
  readonly minSnapshotIntervalMs: number;
  /** How long after the first delete that left garbage a deployment's batched gc runs. Default 1h. */
  readonly gcIntervalMs: number;
  /** Requests a minute per API key. Default 100. */
  readonly rateLimitPerMinute: number;
  /** Requests a minute per user, all their keys together. Default three times rateLimitPerMinute (300). */
  readonly userRateLimitPerMinute: number;
  /** Active API keys a user may have. Default 20. */
  readonly maxKeysPerUser: number;
  /** Jobs (snapshots, restores, …) running at once across deployments. Default 2. */
  readonly jobConcurrency: number;
  /** pino level. Default info. */
  readonly logLevel: string;
  /**
   * File holding the bearer token GET /metrics takes (Prometheus reads the
   * same file). Default DATA_DIR/metrics.token, created on first start.
   */
  readonly metricsTokenFile: string;
  /**
   * Let webhooks call loopback, private, link-local and reserved addresses.
   * Default false: such URLs are refused (they would reach the node's own network).
   */
  readonly webhooksAllowPrivate: boolean;
  /** Off-node copies: s3://BUCKET/PREFIX. Default none (no copies). */
  readonly offsite: string | null;
  /** The S3-compatible service of the off-node target. Default AWS S3. */
  readonly s3Endpoint: string | null;
  /** The operator's master key file; required with offsite or recoverFrom. */
  readonly offsiteKeyFile: string | null;
  /** Recover a lost node from this off-node target on a fresh data dir before serving (offsite-recovery.ts). Default none. */
  readonly recoverFrom: string | null;
}

export type ConfigInput = Partial<Record<keyof ServerConfig, string | number | boolean | undefined>>;

const ENV: Record<keyof ServerConfig, string> = {
  dataDir: 'KOVA_DATA_DIR',
  host: 'KOVA_HOST',
  port: 'KOVA_PORT',
  runtime: 'KOVA_RUNTIME',
  dockerHost: 'KOVA_DOCKER_HOST',
  dockerNetwork: 'KOVA_DOCKER_NETWORK',
  stopTimeoutSec: 'KOVA_STOP_TIMEOUT',
  minSnapshotIntervalMs: 'KOVA_MIN_SNAPSHOT_INTERVAL',
  gcIntervalMs: 'KOVA_GC_INTERVAL',
  rateLimitPerMinute: 'KOVA_RATE_LIMIT',
  userRateLimitPerMinute: 'KOVA_USER_RATE_LIMIT',
  maxKeysPerUser: 'KOVA_MAX_KEYS_PER_USER',
  jobConcurrency: 'KOVA_JOB_CONCURRENCY',
  logLevel: 'KOVA_LOG_LEVEL',
  metricsTokenFile: 'KOVA_METRICS_TOKEN_FILE',
  webhooksAllowPrivate: 'KOVA_WEBHOOKS_ALLOW_PRIVATE',
  offsite: 'KOVA_OFFSITE',
  s3Endpoint: 'KOVA_S3_ENDPOINT',
  offsiteKeyFile: 'KOVA_OFFSITE_KEY_FILE',
  recoverFrom: 'KOVA_RECOVER_FROM',
};

/** The environment variable behind each setting, for help texts and docs. */
export const CONFIG_ENV = ENV;

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

export function loadConfig(flags: ConfigInput = {}, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const get = (k: keyof ServerConfig): string | undefined => {
    const f = flags[k];
    if (f !== undefined && f !== '') return String(f);
    const e = env[ENV[k]];
    return e !== undefined && e !== '' ? e : undefined;
  };
  const runtime = get('runtime') ?? 'auto';
  if (runtime !== 'auto' && runtime !== 'docker' && runtime !== 'process') {
    throw new ValidationError('INVALID_CONFIG', `runtime must be auto, docker or process, got "${runtime}"`);
  }
  const minInterval = get('minSnapshotIntervalMs') ?? '1h';
  const minMs = parseDuration(minInterval);
  if (minMs === null)
    throw new ValidationError('INVALID_CONFIG', `min snapshot interval must be a duration like 30s, 10m or 1h, got "${minInterval}"`);
  const dataDir = path.resolve(get('dataDir') ?? '.kova');
  const rateLimitPerMinute = int('rate limit', get('rateLimitPerMinute') ?? String(DEFAULT_LIMITS.perKey), 1, 1_000_000);
  if (minMs > MAX_INTERVAL_MS)
    throw new ValidationError(
      'INVALID_CONFIG',
      `min snapshot interval must be at most ${formatDuration(MAX_INTERVAL_MS)}, got "${minInterval}"`,
    );
  const gcInterval = get('gcIntervalMs') ?? formatDuration(DEFAULT_GC_INTERVAL_MS);
  const gcMs = parseDuration(gcInterval);
  if (gcMs === null || gcMs < 1000 || gcMs > MAX_INTERVAL_MS)
    throw new ValidationError(
      'INVALID_CONFIG',
      `gc interval must be a duration from 1s to ${formatDuration(MAX_INTERVAL_MS)}, like 30s, 10m or 1h, got "${gcInterval}"`,
    );
  return {
    dataDir,
    host: get('host') ?? '127.0.0.1',
    port: int('port', get('port') ?? '8080', 0, 65535),
    runtime,
    dockerHost: get('dockerHost') ?? env.DOCKER_HOST ?? null,
    dockerNetwork: get('dockerNetwork') ?? 'bridge',
    stopTimeoutSec: int('stop timeout', get('stopTimeoutSec') ?? '10', 0, 3600),
    minSnapshotIntervalMs: minMs,
    gcIntervalMs: gcMs,
    rateLimitPerMinute,
    userRateLimitPerMinute: int(
      'user rate limit',
      get('userRateLimitPerMinute') ?? String(USER_LIMIT_FACTOR * rateLimitPerMinute),
      1,
      1_000_000_000,
    ),
    maxKeysPerUser: int('max keys per user', get('maxKeysPerUser') ?? String(DEFAULT_MAX_KEYS_PER_USER), 1, 10_000),
    jobConcurrency: int('job concurrency', get('jobConcurrency') ?? '2', 1, 64),
    logLevel: get('logLevel') ?? 'info',
    metricsTokenFile: path.resolve(get('metricsTokenFile') ?? path.join(dataDir, 'metrics.token')),
    webhooksAllowPrivate: bool('webhooks allow private', get('webhooksAllowPrivate')),
    ...offsiteConfig(get),
  };
}

/** offsiteConfig checks the off-node settings: s3:// URLs, an http(s) endpoint, and a key file whenever a target is named. */
function offsiteConfig(
  get: (k: keyof ServerConfig) => string | undefined,
): Pick<ServerConfig, 'offsite' | 's3Endpoint' | 'offsiteKeyFile' | 'recoverFrom'> {
  const offsite = get('offsite') ?? null;
  const recoverFrom = get('recoverFrom') ?? null;
  const s3Endpoint = get('s3Endpoint') ?? null;
  const keyFile = get('offsiteKeyFile');
  for (const [name, url] of [
    ['--offsite', offsite],
    ['--recover-from', recoverFrom],
  ] as const) {
    if (url !== null && !/^s3:\/\/[^/]+/.test(url)) {
      throw new ValidationError('INVALID_CONFIG', `${name} must be an s3://BUCKET/PREFIX URL, got "${url}"`);
    }
  }
  if (s3Endpoint !== null && !/^https?:\/\/[^/]+/.test(s3Endpoint)) {
    throw new ValidationError('INVALID_CONFIG', `the S3 endpoint must be an http:// or https:// URL, got "${s3Endpoint}"`);
  }
  if ((offsite !== null || recoverFrom !== null) && keyFile === undefined) {
    throw new ValidationError(
      'INVALID_CONFIG',
      'off-node copies are encrypted: give the master key file with --offsite-key-file FILE (or KOVA_OFFSITE_KEY_FILE)',
    );
  }
  return { offsite, s3Endpoint, recoverFrom, offsiteKeyFile: keyFile === undefined ? null : path.resolve(keyFile) };
}
