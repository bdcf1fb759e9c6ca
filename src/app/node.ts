/**
 * node: the composition root of `kova node`, a provider node in network
 * mode. The same machinery as `kova serve` (runtime, local SQLite journal,
 * services, job queue, scheduler tick, reconcile at start), without HTTP
 * listener, API keys or bootstrap admin: the node dials out to the control
 * plane (node/agent.ts) and applies what it is asked there.
 *
 * Order at start: the runtime (refusing to start as serve does), the
 * database, the services; jobs a crash interrupted resume and deployments
 * are reconciled before the control plane is contacted, so a node that
 * cannot reach it still runs its deployments and automatic snapshots.
 *
 * With `--offsite` the node copies its deployments' snapshots to the
 * operator's bucket as `kova serve` does (offsite-service.ts), each
 * deployment's repository under PREFIX/deployments/<id>, but writes no
 * catalogue there: the control plane's database is the catalogue.
 */
import pino, { type Logger } from 'pino';
import { type Clock, systemClock } from '../core/clock.js';
import { Store } from '../db/store.js';
import { NodeAgent } from '../node/agent.js';
import { ControlClient, readCa } from '../node/control-client.js';
import { EventOutbox, type OutboxOptions } from '../node/events.js';
import type { StateSyncOptions } from '../node/state-sync.js';
import type { OffsiteOptions } from '../services/offsite-service.js';
import { type OffsiteTarget, targetIdentity } from '../services/offsite-target.js';
import { Paths } from '../services/paths.js';
import { ensurePrivateDataDir } from './data-dir.js';
import type { NodeConfig } from './node-config.js';
import { type Services, wireServices } from '../services/wire.js';
import { SCHEDULER_TICK_MS, VERSION, chooseRuntime, offsiteTarget } from './server.js';

export interface RunningNode {
  readonly services: Services;
  readonly agent: NodeAgent;
  /** Rejects with the error that stopped the node on its own (a refused token); resolves after close(). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

export async function startNode(
  cfg: NodeConfig,
  opts: {
    clock?: Clock;
    logger?: Logger;
    pollWaitMs?: number;
    stateSync?: StateSyncOptions;
    offsiteOptions?: OffsiteOptions;
    /** S3 settings of the off-node target (tests: fewer retries); default the AWS environment and the engine's retries. */
    offsiteS3?: OffsiteTarget['s3'];
    outbox?: OutboxOptions;
  } = {},
): Promise<RunningNode> {
  const s = cfg.server;
  const log = opts.logger ?? pino({ level: s.logLevel, base: { service: 'kova-node' } });
  const clock = opts.clock ?? systemClock;
  ensurePrivateDataDir(s.dataDir, log);
  const ca = cfg.caFile ? readCa(cfg.caFile) : null;
  const paths = new Paths(s.dataDir);
  // The runtime before the database: refusing to start leaves no database behind.
  const runtime = await chooseRuntime(s, paths, log);
  let store: Store;
  try {
    store = Store.open(paths.database);
  } catch (err) {
    await runtime.close();
    throw err;
  }
  // Events for webhooks wait in the journal until the control plane took them (node/events.ts).
  const outbox = new EventOutbox(store, clock, log, opts.outbox);
  const services = wireServices({
    store,
    events: outbox,
    runtime,
    paths,
    clock,
    log,
    minSnapshotIntervalMs: s.minSnapshotIntervalMs,
    gcIntervalMs: s.gcIntervalMs,
    jobConcurrency: s.jobConcurrency,
    offsite: s.offsite === null ? null : offsiteTarget({ ...s, recoverFrom: null }, opts.offsiteS3),
    // The catalogue is the control plane's database: only the deployments' repositories go to the bucket.
    offsiteOptions: { ...opts.offsiteOptions, catalogue: false },
  });
  const requeued = services.ctx.jobs.start();
  if (requeued > 0) log.warn({ jobs: requeued }, 'resuming jobs interrupted by a restart');
  await services.deployments.reconcile();
  services.offsite.start();
  const tick = setInterval(() => {
    try {
      services.settings.tick();
    } catch (err) {
      log.error({ err }, 'scheduler tick failed');
    }
  }, SCHEDULER_TICK_MS);
  tick.unref();

  const client = new ControlClient({
    urls: cfg.controlPlanes,
    token: cfg.token,
    ca,
    onFailure: (url, reason) => log.warn({ url, reason }, 'the control plane does not answer; trying the next URL'),
  });
  const agent = new NodeAgent(services, client, log, {
    version: VERSION,
    runtime: runtime.kind,
    offsiteTarget: services.offsite.target ? targetIdentity(services.offsite.target) : null,
    pollWaitMs: opts.pollWaitMs,
    stateSync: opts.stateSync,
    outbox,
  });
  agent.start();
  log.info(
    { controlPlanes: cfg.controlPlanes, runtime: runtime.kind, dataDir: s.dataDir, offsite: services.offsite.target?.url ?? null },
    'kova node is running',
  );

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    clearInterval(tick);
    agent.stop();
    await services.ctx.jobs.stop();
    await services.offsite.stop();
    await runtime.close();
    store.close();
  };
  // A fatal error (a refused token) stops the node's machinery too.
  const done = agent.done.catch(async (err: unknown) => {
    await close();
    throw err;
  });
  done.catch(() => undefined);
  return { services, agent, done, close };
}
