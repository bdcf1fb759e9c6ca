/**
 * capture: taking one consistent snapshot of all of a deployment's volumes.
 *
 *   1. pass 1 copies every volume while the services run, incremental
 *      against the deployment's last snapshot;
 *   2. pre-hooks run (e.g. a database checkpoint), then every service is
 *      frozen;
 *   3. pass 2 captures what changed during pass 1 (a metadata scan plus the
 *      changed bytes), so the freeze lasts as long as that, not as long as
 *      the volume is big;
 *   4. the services are thawed, post-hooks run, the snapshot is recorded.
 *
 * All volumes are children of one snapshot root, captured in the same
 * freeze: they are consistent with each other. The engine snapshot is tagged
 * with the service's snapshot id, so a capture that committed just before a
 * crash is found and adopted instead of being taken twice.
 */
import fs from 'node:fs/promises';
import { KovaError } from '../core/errors.js';
import { faultPoint } from '../core/faults.js';
import type { Progress, Repository, SnapshotRecord } from '../engine/index.js';
import type { Consistency } from '../db/snapshots.js';
import type { Deployment } from '../db/deployments.js';
import type { ServiceContext } from './context.js';
import { volumesOf } from './paths.js';
import { volumeTags } from './volume-map.js';

export interface CaptureOptions {
  readonly snapshotId: string;
  readonly label: string | null;
  /** Engine id of the snapshot to compare against (the deployment's latest). */
  readonly parentEngineId: string | null;
  readonly onProgress?: (p: Progress) => void;
}

export interface CaptureResult {
  readonly record: SnapshotRecord;
  readonly consistency: Consistency;
  readonly freezeMs: number | null;
  readonly warning: string | null;
}

const HOOK_TIMEOUT_MS = 5 * 60_000;

function tail(s: string, n = 2000): string {
  const t = s.trim();
  return t.length > n ? `…${t.slice(-n)}` : t;
}

function fromTags(record: SnapshotRecord): CaptureResult {
  const get = (k: string): string | undefined => record.tags.find((t) => t.startsWith(`${k}:`))?.slice(k.length + 1);
  const freeze = get('freeze-ms');
  return {
    record,
    consistency: get('consistency') === 'frozen' ? 'frozen' : 'live',
    freezeMs: freeze === undefined ? null : Number(freeze),
    warning: null,
  };
}

/**
 * captureDeployment snapshots the deployment's volumes into `repo` (opened
 * by the caller, who closes it) and returns the committed record.
 */
export async function captureDeployment(
  ctx: ServiceContext,
  dep: Deployment,
  opts: CaptureOptions,
  repo: Repository,
): Promise<CaptureResult> {
  const { runtime } = ctx;
  const tag = `kova:${opts.snapshotId}`;
  const done = (await repo.listSnapshots()).find((s) => s.tags.includes(tag));
  if (done) return fromTags(done);

  const volumes = volumesOf(dep.manifest);
  const sources = volumes.map((v) => ({ name: v.key, path: ctx.paths.volume(dep.id, v) }));
  for (const s of sources) await fs.mkdir(s.path, { recursive: true });
  const parent = opts.parentEngineId ? await repo.findSnapshot(opts.parentEngineId).catch(() => null) : null;

  const session = await repo.beginSnapshot();
  try {
    const first = await session.capture(sources, { parent, onProgress: opts.onProgress, scanTotals: true });
    faultPoint('snapshot:pass1');

    // Hooks run in running services only: a stopped service has nothing in flight.
    let running = (await runtime.status(dep.id)).filter((s) => s.state === 'running' || s.state === 'paused');
    if (running.some((s) => s.state === 'paused')) {
      // Frozen by something that did not finish (a crash mid-snapshot): hooks can't run in a frozen service.
      await runtime.thaw(dep.id);
      running = (await runtime.status(dep.id)).filter((s) => s.state === 'running' || s.state === 'paused');
    }
    const isRunning = (name: string): boolean => running.some((s) => s.name === name);
    for (const svc of dep.manifest.services) {
      if (!svc.hooks.pre || !isRunning(svc.name)) continue;
      const r = await runtime.exec(dep.id, svc.name, svc.hooks.pre, { timeoutMs: HOOK_TIMEOUT_MS });
      if (r.exitCode !== 0) {
        throw new KovaError(
          'HOOK_FAILED',
          `pre-snapshot hook of service ${svc.name} exited with ${r.exitCode}: ${tail(r.output) || '(no output)'}`,
          {
            status: 500,
          },
        );
      }
    }

    const warnings: string[] = [];
    let consistency: Consistency = running.length === 0 ? 'frozen' : 'live';
    let frozen = false;
    const t0 = performance.now();
    if (running.length > 0 && runtime.canFreeze) {
      try {
        await runtime.freeze(dep.id);
        frozen = true;
      } catch (err) {
        warnings.push(`services could not be frozen, the snapshot is crash-consistent per file only (${(err as Error).message})`);
      }
    }
    let second;
    let freezeMs: number | null = null;
    try {
      faultPoint('snapshot:frozen');
      second = await session.capture(sources, { parent: first });
    } finally {
      if (frozen) {
        await runtime.thaw(dep.id).catch((err: unknown) => ctx.log.error({ err, deployment: dep.id }, 'thaw failed'));
        freezeMs = Math.round(performance.now() - t0);
        consistency = 'frozen';
      }
    }

    for (const svc of dep.manifest.services) {
      if (!svc.hooks.post || !isRunning(svc.name)) continue;
      const r = await runtime.exec(dep.id, svc.name, svc.hooks.post, { timeoutMs: HOOK_TIMEOUT_MS }).catch((err: unknown) => ({
        exitCode: -1,
        output: (err as Error).message,
      }));
      if (r.exitCode !== 0) warnings.push(`post-snapshot hook of service ${svc.name} exited with ${r.exitCode}: ${tail(r.output, 500)}`);
    }

    // The volumes' mount paths and order, so a restore can follow them through a rename (see volume-map).
    const tags = [tag, `consistency:${consistency}`, ...(freezeMs === null ? [] : [`freeze-ms:${freezeMs}`]), ...volumeTags(volumes)];
    const record = await session.commit(second, { label: opts.label, tags, parent: parent?.id ?? null });
    if (freezeMs !== null) ctx.metrics.freezeWindow.observe(freezeMs / 1000);
    return { record, consistency, freezeMs, warning: warnings.length ? warnings.join('; ') : null };
  } finally {
    await session.abort();
  }
}
