/**
 * context: what every service needs, wired once by the composition root
 * (app/server.ts). Services take this object; tests build it with an
 * in-memory database, a temp data dir, a manual clock and either runtime.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Store } from '../db/store.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Runtime } from '../runtime/types.js';
import type { DiskHealth } from './disk-health.js';
import type { Metrics } from './metrics.js';
import type { Paths } from './paths.js';
import type { EventSink } from './webhooks/events.js';

export interface ServiceConfig {
  /** Smallest interval users may set for automatic snapshots. */
  readonly minSnapshotIntervalMs: number;
  /** How long after the first delete that left garbage a deployment's batched gc runs (gc-service.ts). */
  readonly gcIntervalMs: number;
}

export interface ServiceContext {
  readonly store: Store;
  readonly runtime: Runtime;
  readonly clock: Clock;
  readonly paths: Paths;
  readonly jobs: JobQueue;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly disk: DiskHealth;
  readonly config: ServiceConfig;
  /** Where snapshot and restore outcomes are reported for webhooks; none: not reported. */
  readonly events?: EventSink;
  /** Off-node copies (offsite-service.ts); set once by the composition root after the context exists. None: no copies. */
  offsite?: OffsiteSink;
}

/** What the snapshot workflows tell the off-node copies (offsite-service.ts). */
export interface OffsiteSink {
  /** True when the operator configured a target. */
  readonly configured: boolean;
  /** enabledFor tells whether a deployment's snapshots are copied (its setting, default on with a target). */
  enabledFor(deploymentId: string): boolean;
  /** snapshotReady queues a snapshot just marked ready for copying (when enabled); call in the transaction that marks it. */
  snapshotReady(deploymentId: string, snapshotId: string): void;
  /** snapshotDeleted queues the removal of a snapshot's copy; call in the transaction that deletes its row. */
  snapshotDeleted(deploymentId: string, snapshotId: string, engineId: string | null): void;
  /** deploymentClosed drops a closed deployment's pending copies. */
  deploymentClosed(deploymentId: string): void;
}

/** Job kinds, and which of them are user-visible operations (one at a time, 409 otherwise). */
export const JobKind = {
  Deploy: 'deploy',
  Snapshot: 'snapshot',
  DeleteSnapshot: 'delete-snapshot',
  Restore: 'restore',
  Update: 'update',
  Restart: 'restart',
  Close: 'close',
  Clone: 'clone',
  Gc: 'gc',
  Verify: 'verify',
  /** Network mode: a deployment moved to this node, pulled from its off-node copy (offsite-move.ts). */
  Recover: 'recover',
  /** Network mode: a clone of a snapshot whose deployment's node is offline, from its off-node copy (offsite-move.ts). */
  CloneOffsite: 'clone-offsite',
} as const;

export const OPERATION_KINDS: readonly string[] = [
  JobKind.Deploy,
  JobKind.Snapshot,
  JobKind.Restore,
  JobKind.Update,
  JobKind.Restart,
  JobKind.Close,
  JobKind.Clone,
  JobKind.Recover,
  JobKind.CloneOffsite,
];
