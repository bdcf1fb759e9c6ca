/**
 * offsite-recovery: `kova serve --recover-from s3://BUCKET/PREFIX` on a
 * fresh data directory brings a lost all-in-one node back from its off-node
 * copies.
 *
 * In order, before the server starts its jobs and services:
 *   1. read and decrypt the catalogue (offsite-catalogue.ts);
 *   2. for each deployment, pull its whole bucket repository back into a
 *      new local repository (copy.ts: every blob checked against its id),
 *      so every snapshot of its history is restorable locally again;
 *   3. insert the catalogue's rows in one transaction: users and API keys
 *      (the same keys work), deployments with their SDL, settings, webhooks,
 *      and the snapshots whose records came back (marked `copied`);
 *   4. restore each deployment's newest snapshot into its volumes.
 * The server's start-up then creates and starts every deployment's
 * services (DeploymentService.reconcile). A recovery interrupted midway is
 * run again on an emptied data directory.
 */
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConflictError, NotFoundError } from '../core/errors.js';
import type { Store } from '../db/store.js';
import { Repository } from '../engine/index.js';
import { copySnapshots } from '../engine/repo/copy.js';
import type { Manifest } from '../sdl/types.js';
import { CATALOGUE_OBJECT, decodeCatalogue, insertRows } from './offsite-catalogue.js';
import { type OffsiteTarget, openCatalogueStore, openDeploymentRepo } from './offsite-target.js';
import { type Paths, volumesOf } from './paths.js';
import { mapVolumes, snapshotVolumes } from './volume-map.js';

export interface RecoveryReport {
  readonly users: number;
  readonly deployments: number;
  readonly snapshots: number;
}

type Row = Record<string, unknown>;

/** recoverFromOffsite fills an empty store and data directory from the target's catalogue and repositories. */
export async function recoverFromOffsite(store: Store, paths: Paths, target: OffsiteTarget, log: Logger): Promise<RecoveryReport> {
  if (store.users.count() > 0) {
    throw new ConflictError(
      'RECOVERY_TARGET_NOT_EMPTY',
      `--recover-from needs a fresh data directory; ${paths.dataDir} already holds users`,
    );
  }
  const cat = await openCatalogueStore(target, false);
  const bytes = await cat?.read(CATALOGUE_OBJECT).finally(() => cat.close());
  if (!bytes) throw new NotFoundError('CATALOGUE_NOT_FOUND', `no catalogue at ${target.url}: nothing to recover from`);
  const doc = decodeCatalogue(bytes);
  const rows = (t: string): Row[] => [...(doc.tables[t] ?? [])];

  // 2. The repositories, pulled back whole.
  const restored = new Map<string, Set<string>>();
  for (const d of rows('deployments')) {
    const depId = String(d.id);
    const remote = await openDeploymentRepo(target, depId);
    if (!remote) {
      restored.set(depId, new Set());
      continue;
    }
    try {
      await fs.rm(paths.repo(depId), { recursive: true, force: true });
      await fs.mkdir(paths.repo(depId), { recursive: true });
      const { chunker, packSize, compressionLevel } = remote.config;
      const local = await Repository.init(paths.repo(depId), {
        chunker: { minSize: chunker.minSize, avgSize: chunker.avgSize, maxSize: chunker.maxSize },
        packSize,
        compressionLevel,
      });
      try {
        const rep = await copySnapshots(remote, local);
        restored.set(depId, new Set((await local.listSnapshots()).map((r) => r.id)));
        log.info(
          { deployment: depId, snapshots: rep.copied.length, bytes: rep.rawBytesSent },
          'pulled the repository back from the off-node target',
        );
      } finally {
        await local.close();
      }
    } finally {
      await remote.close();
    }
  }

  // 3. The rows.
  const snapshots = rows('snapshots').filter((s) => restored.get(String(s.deployment_id))?.has(String(s.engine_id)) === true);
  store.tx(() => {
    for (const t of ['users', 'api_keys', 'deployments', 'snapshot_settings', 'offsite_settings', 'webhooks'])
      insertRows(store, t, rows(t));
    insertRows(store, 'snapshots', snapshots);
    for (const s of snapshots) store.offsite.insertCopied(String(s.id), String(s.deployment_id), Number(s.ready_at ?? s.created_at));
  });

  // 4. The volumes, from each deployment's newest snapshot.
  for (const d of store.deployments.listActive()) {
    const newest = store.snapshots.latestReady(d.id);
    await fs.rm(paths.deploymentVolumes(d.id), { recursive: true, force: true });
    if (!newest?.engineId) {
      for (const v of volumesOf(d.manifest)) await fs.mkdir(paths.volume(d.id, v), { recursive: true });
      continue;
    }
    await restoreVolumes(paths, d.id, d.manifest, newest.engineId);
    log.info({ deployment: d.id, snapshot: newest.id }, 'restored the volumes from the newest snapshot');
  }
  const report = { users: rows('users').length, deployments: rows('deployments').length, snapshots: snapshots.length };
  log.info(report, 'recovered from the off-node target');
  return report;
}

/** restoreVolumes fills each volume of a manifest from a local snapshot (volumes mapped as a clone maps them). */
export async function restoreVolumes(paths: Paths, depId: string, manifest: Manifest, engineId: string): Promise<void> {
  const repo = await Repository.open(paths.repo(depId));
  try {
    await restoreVolumesFrom(repo, paths, depId, manifest, engineId);
  } finally {
    await repo.close();
  }
}

/** restoreVolumesFrom fills each volume of a manifest from a snapshot of `repo` (local or in a bucket). */
export async function restoreVolumesFrom(
  repo: Repository,
  paths: Paths,
  depId: string,
  manifest: Manifest,
  engineId: string,
): Promise<void> {
  const record = await repo.findSnapshot(engineId);
  const names = record.root.subtree ? (await repo.readTree(record.root.subtree)).map((n) => n.name.toString()) : [];
  const from = new Map(mapVolumes(snapshotVolumes(record.tags, names), volumesOf(manifest)).pairs.map((p) => [p.to, p.from]));
  for (const v of volumesOf(manifest)) {
    const target = paths.volume(depId, v);
    await fs.mkdir(target.slice(0, target.lastIndexOf('/')), { recursive: true });
    const key = from.get(v.key);
    if (key !== undefined) await repo.restore(record, target, { subpath: key, sync: true });
    else await fs.mkdir(target);
  }
}
