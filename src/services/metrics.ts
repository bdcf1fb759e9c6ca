/**
 * metrics: Kova's counters, gauges and histograms, kept with prom-client in
 * a registry of their own (one per Metrics, so several apps in one process
 * do not collide), together with Node's default process metrics, and
 * rendered in the Prometheus text format at GET /metrics.
 *
 * Call sites use inc(labels, by), set(labels, v), remove(labels) and
 * observe(v); each metric takes exactly the label names declared here.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
const SHORT = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

export class Metrics {
  readonly registry = new Registry();

  readonly snapshotDuration = new Histogram({
    name: 'kova_snapshot_duration_seconds',
    help: 'Time to take a snapshot, both passes.',
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly freezeWindow = new Histogram({
    name: 'kova_snapshot_freeze_seconds',
    help: 'How long services were frozen for a snapshot.',
    buckets: SHORT,
    registers: [this.registry],
  });
  readonly restoreDuration = new Histogram({
    name: 'kova_restore_duration_seconds',
    help: 'Time from restore request to completion.',
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly restoreDowntime = new Histogram({
    name: 'kova_restore_downtime_seconds',
    help: 'How long services were stopped for a restore swap.',
    buckets: SHORT,
    registers: [this.registry],
  });
  readonly snapshots = new Counter({
    name: 'kova_snapshots_total',
    help: 'Snapshots finished, by outcome and trigger.',
    labelNames: ['outcome', 'trigger'] as const,
    registers: [this.registry],
  });
  readonly restores = new Counter({
    name: 'kova_restores_total',
    help: 'Restores finished, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly offsiteCopies = new Counter({
    name: 'kova_offsite_copies_total',
    help: 'Snapshot copies to the off-node target finished, by outcome (copied or failed; a failed attempt is retried).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly repositoryBytes = new Gauge({
    name: 'kova_repository_bytes',
    help: "Bytes stored in each deployment's snapshot repository.",
    labelNames: ['deployment'] as const,
    registers: [this.registry],
  });
  readonly gcDuration = new Histogram({
    name: 'kova_gc_duration_seconds',
    help: "Time a batched garbage collection of a deployment's repository took.",
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly gcReclaimed = new Counter({
    name: 'kova_gc_reclaimed_bytes_total',
    help: 'Bytes of repository packs freed by garbage collection.',
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'kova_http_requests_total',
    help: 'HTTP requests, by method and status code.',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  readonly diskFull = new Counter({
    name: 'kova_disk_full_total',
    help: 'Writes that failed for lack of space, by where (repository, restore target, database).',
    labelNames: ['where'] as const,
    registers: [this.registry],
  });
  readonly dataFreeBytes = new Gauge({
    name: 'kova_data_free_bytes',
    help: "Free bytes of the data directory's filesystem, as of the last health check.",
    registers: [this.registry],
  });

  constructor(opts: { readonly processMetrics?: boolean } = {}) {
    // process_* and nodejs_* (CPU, memory, event loop lag, GC, handles), read at each scrape.
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The Content-Type of render()'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** render returns every metric in the Prometheus text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
