/**
 * wire: a node's services built around its journal (kova.db) and runtime,
 * the one place that says which service gets which. `kova serve` (src/app/
 * server.ts), `kova node` (src/app/node.ts), the node's agent and executor
 * (src/node/) and the tests use it.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Store } from '../db/store.js';
import { JobQueue } from '../jobs/queue.js';
import type { Runtime } from '../runtime/types.js';
import { BrowseService } from './browse-service.js';
import type { ServiceContext } from './context.js';
import { DeploymentService } from './deployment-service.js';
import { DiskHealth } from './disk-health.js';
import { DEFAULT_GC_INTERVAL_MS, GcService } from './gc-service.js';
import { KeyService } from './keys.js';
import { Metrics } from './metrics.js';
import { OffsiteMove } from './offsite-move.js';
import { type OffsiteOptions, OffsiteService } from './offsite-service.js';
import type { OffsiteTarget } from './offsite-target.js';
import type { Paths } from './paths.js';
import { RestoreService } from './restore-service.js';
import { SettingsService } from './settings-service.js';
import { SnapshotService } from './snapshot-service.js';
import { VerificationService } from './verification-service.js';
import { type DispatcherOptions, WebhookDispatcher } from './webhooks/dispatcher.js';
import type { EventSink } from './webhooks/events.js';
import { type WebhookOptions, WebhookService } from './webhooks/service.js';
import { journalWebhookStore } from './webhooks/store.js';

export interface Services {
  readonly ctx: ServiceContext;
  readonly keys: KeyService;
  readonly deployments: DeploymentService;
  readonly snapshots: SnapshotService;
  readonly restores: RestoreService;
  readonly browse: BrowseService;
  readonly settings: SettingsService;
  readonly verifications: VerificationService;
  readonly webhooks: WebhookService;
  /** Sends the webhooks' deliveries; the server starts it, tests call runDue(). */
  readonly dispatcher: WebhookDispatcher;
  /** Off-node copies; inert without a target. The server starts it, tests call runDue(). */
  readonly offsite: OffsiteService;
  /** Network mode: deployments recovered here from their off-node copies, or forgotten after moving away. */
  readonly moves: OffsiteMove;
}

/** wireServices builds every service around a store and runtime (also used by tests). */
export function wireServices(opts: {
  store: Store;
  runtime: Runtime;
  paths: Paths;
  clock: Clock;
  log: Logger;
  minSnapshotIntervalMs: number;
  /** Default DEFAULT_GC_INTERVAL_MS. */
  gcIntervalMs?: number;
  jobConcurrency: number;
  /** Default DEFAULT_MAX_KEYS_PER_USER. */
  maxKeysPerUser?: number;
  /** Webhook rules (private addresses refused, 10 per user unless given) and delivery settings. */
  webhooks?: WebhookOptions & DispatcherOptions;
  /** Where the services report events; default the webhooks in this journal (`kova node`: its outbox). */
  events?: EventSink;
  /** Where off-node copies go; default none. */
  offsite?: OffsiteTarget | null;
  offsiteOptions?: OffsiteOptions;
}): Services {
  const metrics = new Metrics();
  const jobs = new JobQueue(opts.store, opts.clock, opts.log, opts.jobConcurrency);
  const hookStore = journalWebhookStore(opts.store);
  const webhooks = new WebhookService(hookStore, opts.clock, opts.log, opts.webhooks);
  const dispatcher = new WebhookDispatcher(hookStore, opts.clock, opts.log, webhooks.options, opts.webhooks);
  webhooks.onEmitted = () => dispatcher.kick();
  const ctx: ServiceContext = {
    store: opts.store,
    runtime: opts.runtime,
    clock: opts.clock,
    paths: opts.paths,
    jobs,
    log: opts.log,
    metrics,
    disk: new DiskHealth(opts.paths.dataDir, opts.clock, metrics, opts.log),
    config: { minSnapshotIntervalMs: opts.minSnapshotIntervalMs, gcIntervalMs: opts.gcIntervalMs ?? DEFAULT_GC_INTERVAL_MS },
    events: opts.events ?? webhooks,
  };
  const offsite = new OffsiteService(ctx, opts.offsite ?? null, opts.offsiteOptions);
  ctx.offsite = offsite;
  const snapshots = new SnapshotService(ctx);
  const restores = new RestoreService(ctx, snapshots);
  const deployments = new DeploymentService(ctx, snapshots);
  const verifications = new VerificationService(ctx);
  const settings = new SettingsService(ctx, snapshots, new GcService(ctx), verifications);
  return {
    ctx,
    keys: new KeyService(opts.store, opts.clock, { maxKeysPerUser: opts.maxKeysPerUser }),
    deployments,
    snapshots,
    restores,
    browse: new BrowseService(ctx),
    settings,
    verifications,
    webhooks,
    dispatcher,
    offsite,
    moves: new OffsiteMove(ctx, offsite),
  };
}
