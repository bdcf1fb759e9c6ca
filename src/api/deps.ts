/**
 * deps: what the HTTP layer needs from the rest of the system. buildApp takes
 * this object, so tests build the app around real services on a temp data
 * dir and call it with inject(), without a socket.
 */
import type { Clock } from '../core/clock.js';
import type { BrowseService } from '../services/browse-service.js';
import type { DeploymentService } from '../services/deployment-service.js';
import type { DiskHealth } from '../services/disk-health.js';
import type { KeyService } from '../services/keys.js';
import type { Metrics } from '../services/metrics.js';
import type { RestoreService } from '../services/restore-service.js';
import type { SettingsService } from '../services/settings-service.js';
import type { SnapshotService } from '../services/snapshot-service.js';
import type { WebhookService } from '../services/webhooks/service.js';

/** The API's rate limits, each per minute (see rate-limit.ts). */
export interface Limits {
  readonly perKey: number;
  readonly perUser: number;
  readonly signInsPerPrefix: number;
  readonly signInsPerAddress: number;
}

/** The limits unless configured otherwise; a user's is USER_LIMIT_FACTOR times the per-key limit. */
export const DEFAULT_LIMITS: Omit<Limits, 'perUser'> = { perKey: 100, signInsPerPrefix: 10, signInsPerAddress: 30 };
export const USER_LIMIT_FACTOR = 3;

export interface AppConfig {
  readonly minSnapshotIntervalMs: number;
  /** Requests a minute per API key. */
  readonly rateLimitPerMinute: number;
  /** Requests a minute per user, all their keys together. Default USER_LIMIT_FACTOR × rateLimitPerMinute. */
  readonly userRateLimitPerMinute?: number;
  /** Scrypt checks of API keys a minute per key prefix, and per client address (see rate-limit.ts). */
  readonly signInsPerPrefix?: number;
  readonly signInsPerAddress?: number;
  readonly runtime: 'docker' | 'process';
  /** The bearer token GET /metrics takes; none: /metrics answers 401 to everyone. */
  readonly metricsToken?: string | null;
  readonly version: string;
  /** Built dashboard to serve at /, if present. */
  readonly webDir?: string | null;
}

export interface AppDeps {
  readonly keys: KeyService;
  readonly deployments: DeploymentService;
  readonly snapshots: SnapshotService;
  readonly restores: RestoreService;
  readonly browse: BrowseService;
  readonly settings: SettingsService;
  /** Webhooks; without them the /api/v1/webhooks routes are not served. */
  readonly webhooks?: WebhookService;
  readonly metrics: Metrics;
  /** The data directory's health for /healthz; without it /healthz reports ok. */
  readonly disk?: DiskHealth;
  readonly clock: Clock;
  readonly config: AppConfig;
}
