/**
 * scoped-runtime: a Runtime that forwards everything to another one but
 * lists only the deployments created through it. The Docker runtime lists
 * every Kova container on the engine, and the harness removes whatever the
 * runtime lists when it closes: on a Docker engine shared with other test
 * runs, scoping keeps a suite from removing containers that are not its own.
 */
import type { DeploymentSpec, ExecResult, Runtime, ServiceStatus } from '../../src/runtime/types.js';

export class ScopedRuntime implements Runtime {
  private readonly mine = new Set<string>();

  constructor(readonly inner: Runtime) {}

  get kind(): Runtime['kind'] {
    return this.inner.kind;
  }

  get canFreeze(): boolean {
    return this.inner.canFreeze;
  }

  async create(spec: DeploymentSpec): Promise<void> {
    this.mine.add(spec.deploymentId);
    await this.inner.create(spec);
  }

  start(id: string): Promise<void> {
    return this.inner.start(id);
  }

  stop(id: string): Promise<void> {
    return this.inner.stop(id);
  }

  freeze(id: string): Promise<void> {
    return this.inner.freeze(id);
  }

  thaw(id: string): Promise<void> {
    return this.inner.thaw(id);
  }

  exec(id: string, service: string, cmd: readonly string[], opts?: { timeoutMs?: number }): Promise<ExecResult> {
    return this.inner.exec(id, service, cmd, opts);
  }

  status(id: string): Promise<ServiceStatus[]> {
    return this.inner.status(id);
  }

  remove(id: string): Promise<void> {
    return this.inner.remove(id);
  }

  async deployments(): Promise<string[]> {
    return (await this.inner.deployments()).filter((id) => this.mine.has(id));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
