/**
 * capacity: what this node can take, sent with every heartbeat
 * (network/protocol.ts, Capacity): the data directory's disk, the bytes the
 * volumes use and the SDL sizes they were promised, the active deployments
 * and their running services, and the disk's health (DiskHealth).
 */
import fs from 'node:fs/promises';
import type { Capacity } from '../network/protocol.js';
import type { ServiceContext } from '../services/context.js';
import type { DeploymentService } from '../services/deployment-service.js';

export async function measureCapacity(ctx: ServiceContext, deployments: DeploymentService): Promise<Capacity> {
  const st = await fs.statfs(ctx.paths.dataDir);
  const active = ctx.store.deployments.listActive();
  let volumeUsedBytes = 0;
  let volumeReservedBytes = 0;
  let runningServices = 0;
  for (const d of active) {
    const extras = await deployments.extras(d);
    for (const used of Object.values(extras.volumeBytes ?? {})) volumeUsedBytes += used;
    runningServices += (extras.services ?? []).filter((s) => s.state === 'running').length;
    for (const s of d.manifest.services) for (const v of s.volumes) volumeReservedBytes += v.sizeBytes;
  }
  return {
    diskFreeBytes: st.bavail * st.bsize,
    diskTotalBytes: st.blocks * st.bsize,
    volumeUsedBytes,
    volumeReservedBytes,
    deployments: active.length,
    runningServices,
    health: (await ctx.disk.check()).status,
  };
}
