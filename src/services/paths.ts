/**
 * paths: where a deployment's files live under the data directory.
 *
 *   DATA/kova.db                          the state database
 *   DATA/volumes/<dep>/<service>/<volume> live volume directories
 *   DATA/volumes/<dep>/.restore-<rst>/    staging of a restore (same filesystem,
 *                                         so the swap is a rename)
 *   DATA/repos/<dep>/                     the deployment's snapshot repository
 *   DATA/runtime/                         the process runtime's state and logs
 */
import path from 'node:path';
import type { Manifest } from '../sdl/types.js';

export interface VolumeRef {
  readonly service: string;
  readonly volume: string;
  /** "service.volume": the name of this volume's directory in snapshots. */
  readonly key: string;
  readonly mount: string;
}

export class Paths {
  constructor(readonly dataDir: string) {}

  get database(): string {
    return path.join(this.dataDir, 'kova.db');
  }

  get runtimeDir(): string {
    return path.join(this.dataDir, 'runtime');
  }

  deploymentVolumes(depId: string): string {
    return path.join(this.dataDir, 'volumes', depId);
  }

  volume(depId: string, v: Pick<VolumeRef, 'service' | 'volume'>): string {
    return path.join(this.deploymentVolumes(depId), v.service, v.volume);
  }

  staging(depId: string, restoreId: string): string {
    return path.join(this.deploymentVolumes(depId), `.restore-${restoreId}`);
  }

  repo(depId: string): string {
    return path.join(this.dataDir, 'repos', depId);
  }
}

/** volumesOf lists every persistent volume of a manifest. */
export function volumesOf(m: Manifest): VolumeRef[] {
  return m.services.flatMap((s) => s.volumes.map((v) => ({ service: s.name, volume: v.name, key: `${s.name}.${v.name}`, mount: v.mount })));
}
