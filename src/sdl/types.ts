/**
 * sdl/types: what a deployment's SDL means once parsed and validated: the
 * services to run and the persistent volumes each one mounts.
 */

export interface VolumeManifest {
  /** Volume name (SDL params.storage.<name>), unique within its service. */
  readonly name: string;
  /** Absolute path where the service sees the volume. */
  readonly mount: string;
  /** Requested size in bytes (profiles.compute.<profile>.resources.storage[].size). */
  readonly sizeBytes: number;
  /** Mounted read-only in the service (params.storage.<name>.readOnly). */
  readonly readOnly: boolean;
}

/** The limits a service runs under (profiles.compute.<profile>.resources). */
export interface ServiceResources {
  /** CPUs the service may use (cpu.units: 0.5 or "500m"), or null for no limit. */
  readonly cpus: number | null;
  /** Memory limit in bytes (memory.size), or null when the profile gives none. */
  readonly memoryBytes: number | null;
}

export interface ServiceManifest {
  readonly name: string;
  readonly image: string;
  readonly command: readonly string[];
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Ports the service exposes (recorded; containers here need no network). */
  readonly expose: ReadonlyArray<{ readonly port: number; readonly as: number }>;
  /** Persistent volumes only: those are what snapshots capture. */
  readonly volumes: readonly VolumeManifest[];
  /** Commands run inside the service around a snapshot's freeze (params.snapshot.pre / post). */
  readonly hooks: { readonly pre: readonly string[] | null; readonly post: readonly string[] | null };
  /** Its compute profile's cpu and memory; absent in manifests stored before limits were applied. */
  readonly resources?: ServiceResources;
}

export interface Manifest {
  readonly services: readonly ServiceManifest[];
}

/** One problem in an SDL, with the path of the bad field ("services.web.image"). */
export interface SdlIssue {
  readonly path: string;
  readonly message: string;
}
