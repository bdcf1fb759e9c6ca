/**
 * runtime: the port through which the service runs a deployment's services.
 * Two adapters implement it: docker/ (containers through the Docker Engine
 * API) and process/ (local process groups, for development and tests).
 *
 * Rules every adapter keeps:
 * - Operations are per deployment and idempotent: creating what exists
 *   replaces it, stopping what is stopped succeeds, removing what is gone
 *   succeeds.
 * - A volume's host directory is resolved when a service starts (bind mount,
 *   working directory): after a restore swaps the directory, start() picks
 *   up the new one.
 * - Errors are RuntimeError with a readable message (no stack traces or
 *   daemon internals meant for users).
 */
import { KovaError } from '../core/errors.js';

export interface VolumeMount {
  /** Volume name from the SDL (params.storage.<name>). */
  readonly name: string;
  /** Directory on the host holding the volume's data. */
  readonly hostPath: string;
  /** Where the service sees it (SDL params.storage.<name>.mount). */
  readonly mountPath: string;
  /** Mount it read-only (enforced by Docker; the process runtime cannot). */
  readonly readOnly?: boolean;
}

export interface ServiceSpec {
  readonly name: string;
  readonly image: string;
  /** Replaces the image's entrypoint when non-empty (SDL `command`). */
  readonly command: readonly string[];
  /** Replaces the image's arguments when non-empty (SDL `args`). */
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly volumes: readonly VolumeMount[];
  /** Limits from the SDL's compute profile; null or absent: the runtime's default. */
  readonly resources?: {
    /** CPUs the service may use (0.5: half of one). */
    readonly cpus: number | null;
    /** Memory (and memory plus swap) limit in bytes. */
    readonly memoryBytes: number | null;
  };
}

export interface DeploymentSpec {
  readonly deploymentId: string;
  readonly services: readonly ServiceSpec[];
}

export type ServiceState = 'running' | 'paused' | 'stopped' | 'missing';

export interface ServiceStatus {
  readonly name: string;
  readonly state: ServiceState;
  /** ISO time the service last started, when known. */
  readonly startedAt: string | null;
  /** Exit code of the last run, when stopped. */
  readonly exitCode: number | null;
}

export interface ExecResult {
  readonly exitCode: number;
  /** Combined stdout and stderr, truncated to the last 64 KiB. */
  readonly output: string;
}

export interface Runtime {
  readonly kind: 'docker' | 'process';
  /** Whether freeze() really suspends the services. */
  readonly canFreeze: boolean;
  /** create (re)creates the deployment's services, stopped. */
  create(spec: DeploymentSpec): Promise<void>;
  /** start starts every service of the deployment (or the named ones). */
  start(deploymentId: string): Promise<void>;
  /** stop stops every service, waiting up to the stop timeout before killing. */
  stop(deploymentId: string): Promise<void>;
  /** freeze suspends every service (cgroup freezer / SIGSTOP); returns once they are suspended. */
  freeze(deploymentId: string): Promise<void>;
  /** thaw resumes what freeze suspended. */
  thaw(deploymentId: string): Promise<void>;
  /** exec runs a command inside a running service. */
  exec(deploymentId: string, service: string, cmd: readonly string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  status(deploymentId: string): Promise<ServiceStatus[]>;
  /** remove stops and deletes the deployment's services. */
  remove(deploymentId: string): Promise<void>;
  /** deployments lists the deployment ids this runtime has services for. */
  deployments(): Promise<string[]>;
  close(): Promise<void>;
}

/** A runtime operation failed. */
export class RuntimeError extends KovaError {
  constructor(message: string, cause?: unknown) {
    super('RUNTIME_ERROR', message, { status: 500, cause });
  }
}
