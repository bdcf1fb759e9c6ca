/**
 * deps: what the HTTP layer needs from the rest of the system. buildApp takes
 * this object, so tests build the app around real services on a temp data
 * dir and call it with inject(), without a socket.
 */
import type { Clock } from '../core/clock.js';
import type { DeploymentService } from '../services/deployment-service.js';
import type { DiskHealth } from '../services/disk-health.js';
import type { KeyService } from '../services/keys.js';
import type { Metrics } from '../services/metrics.js';
import type { RestoreService } from '../services/restore-service.js';
import type { SettingsService } from '../services/settings-service.js';
import type { SnapshotService } from '../services/snapshot-service.js';

export interface AppConfig {
  readonly minSnapshotIntervalMs: number;
  /** Requests a minute per API key. */
  readonly rateLimitPerMinute: number;
  readonly runtime: 'docker' | 'process';
  readonly version: string;
  /** Built dashboard to serve at /, if present. */
  readonly webDir?: string | null;
}

export interface AppDeps {
  readonly keys: KeyService;
  readonly deployments: DeploymentService;
  readonly snapshots: SnapshotService;
  readonly restores: RestoreService;
  readonly settings: SettingsService;
  readonly metrics: Metrics;
  /** The data directory's health for /healthz; without it /healthz reports ok. */
  readonly disk?: DiskHealth;
  readonly clock: Clock;
  readonly config: AppConfig;
}
