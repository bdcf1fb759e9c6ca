/**
 * metrics: counters, gauges and histograms rendered in the Prometheus text
 * format at GET /metrics. Deliberately small: no labels beyond a fixed set
 * per metric, no dependency.
 */

type Labels = Readonly<Record<string, string>>;

function key(labels: Labels): string {
  return Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

class Counter {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) out.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return out;
  }
}

class Gauge {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(labels: Labels, v: number): void {
    this.values.set(key(labels), v);
  }
  remove(labels: Labels): void {
    this.values.delete(key(labels));
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [k, v] of this.values) out.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return out;
  }
}

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    this.buckets.forEach((b, i) => {
      if (v <= b) this.counts[i]!++;
    });
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    out.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return out;
  }
}

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
const SHORT = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

export class Metrics {
  readonly snapshotDuration = new Histogram('kova_snapshot_duration_seconds', 'Time to take a snapshot, both passes.', SECONDS);
  readonly freezeWindow = new Histogram('kova_snapshot_freeze_seconds', 'How long services were frozen for a snapshot.', SHORT);
  readonly restoreDuration = new Histogram('kova_restore_duration_seconds', 'Time from restore request to completion.', SECONDS);
  readonly restoreDowntime = new Histogram('kova_restore_downtime_seconds', 'How long services were stopped for a restore swap.', SHORT);
  readonly snapshots = new Counter('kova_snapshots_total', 'Snapshots finished, by outcome and trigger.');
  readonly restores = new Counter('kova_restores_total', 'Restores finished, by outcome.');
  readonly repositoryBytes = new Gauge('kova_repository_bytes', 'Bytes stored in each deployment\'s snapshot repository.');
  readonly httpRequests = new Counter('kova_http_requests_total', 'HTTP requests, by method and status code.');
  readonly diskFull = new Counter('kova_disk_full_total', 'Writes that failed for lack of space, by where (repository, restore target, database).');
  readonly dataFreeBytes = new Gauge('kova_data_free_bytes', 'Free bytes of the data directory\'s filesystem, as of the last health check.');

  render(): string {
    return (
      [
        this.snapshotDuration,
        this.freezeWindow,
        this.restoreDuration,
        this.restoreDowntime,
        this.snapshots,
        this.restores,
        this.repositoryBytes,
        this.httpRequests,
        this.diskFull,
        this.dataFreeBytes,
      ]
        .flatMap((m) => m.render())
        .join('\n') + '\n'
    );
  }
}
