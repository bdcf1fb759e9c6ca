/**
 * docker-runtime: the Runtime port on the Docker Engine API.
 *
 * One container per service, named kova-<deployment>-<service> and labelled
 * kova.managed / kova.deployment / kova.service; the labels, not the names,
 * are how containers are found again. Volumes are bind mounts of the host
 * directory, resolved by the daemon at each start, so a directory swapped
 * while the service is stopped is what the next start sees. freeze/thaw are
 * pause/unpause (cgroup freezer). Containers run under docker-init so that
 * SIGTERM reaches the service and stop is quick.
 *
 * A hosted service is untrusted code, so every container is confined: the
 * SDL's cpu and memory as limits (memory without extra swap; a default when
 * the SDL gives none), a pid limit, all capabilities dropped except the few
 * ordinary images need (SERVICE_CAPABILITIES), and no-new-privileges so
 * setuid binaries gain nothing. Volumes are never mounted on /, /proc, /sys
 * or /dev (spec.ts; the SDL refuses those first).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { checkMounts, validateSpec } from '../spec.js';
import type { DeploymentSpec, ExecResult, Runtime, ServiceSpec, ServiceState, ServiceStatus } from '../types.js';
import { RuntimeError } from '../types.js';
import { type ContainerSummary, DockerClient, compareApiVersions, ignoreStatus, isApiStatus } from './docker-client.js';
import { runExec } from './exec-stream.js';

export const LABEL_MANAGED = 'kova.managed';
export const LABEL_DEPLOYMENT = 'kova.deployment';
export const LABEL_SERVICE = 'kova.service';

export interface DockerRuntimeOptions {
  /** Socket path or DOCKER_HOST-style unix:///path (default /var/run/docker.sock). */
  readonly socketPath?: string;
  /** HostConfig.NetworkMode of every container (default 'bridge'). */
  readonly networkMode?: string;
  /** Seconds stop() waits after SIGTERM before SIGKILL (default 10). */
  readonly stopTimeoutSec?: number;
  /** Engine API version (default 'v1.41', what dockerd 20.10 speaks). */
  readonly apiVersion?: string;
  /** Deadline of ordinary API calls (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** Deadline of exec() when the call gives none (default 120 s). */
  readonly execTimeoutMs?: number;
  /** How long create() may spend pulling a missing image; 0 never pulls (default 300 s). */
  readonly pullTimeoutMs?: number;
  /** Memory limit of a service whose SDL profile gives no memory.size (default 1 GiB). */
  readonly defaultMemoryBytes?: number;
  /** Most processes (and threads) one service may run at a time (default 1024). */
  readonly pidsLimit?: number;
}

/**
 * The capabilities a service keeps; all others are dropped. These let an
 * image's entrypoint set up its files and drop to its own user (chown,
 * setuid/setgid, reading and writing files it does not own) and bind ports
 * below 1024. Gone are, among others, raw sockets (NET_RAW), device nodes
 * (MKNOD), chroot, file capabilities (SETFCAP, SETPCAP) and audit writes.
 */
export const SERVICE_CAPABILITIES: readonly string[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'NET_BIND_SERVICE',
];

interface Container {
  readonly id: string;
  readonly service: string;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;
  readonly canFreeze = true;
  private readonly client: DockerClient;
  private readonly networkMode: string;
  private readonly stopTimeoutSec: number;
  private readonly execTimeoutMs: number;
  private readonly pullTimeoutMs: number;
  private readonly defaultMemoryBytes: number;
  private readonly pidsLimit: number;
  /** Service names per deployment from create(), so status() can report missing ones. */
  private readonly known = new Map<string, readonly string[]>();
  private closed = false;

  constructor(opts: DockerRuntimeOptions = {}) {
    this.client = new DockerClient({ socketPath: opts.socketPath, apiVersion: opts.apiVersion, timeoutMs: opts.requestTimeoutMs });
    this.networkMode = opts.networkMode ?? 'bridge';
    this.stopTimeoutSec = opts.stopTimeoutSec ?? 10;
    this.execTimeoutMs = opts.execTimeoutMs ?? 120_000;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 300_000;
    this.defaultMemoryBytes = opts.defaultMemoryBytes ?? 1024 ** 3;
    this.pidsLimit = opts.pidsLimit ?? 1024;
  }

  /** available tells whether a daemon answers on the socket and speaks our API version. */
  static async available(opts: DockerRuntimeOptions & { timeoutMs?: number } = {}): Promise<boolean> {
    let client: DockerClient | undefined;
    try {
      client = new DockerClient({ socketPath: opts.socketPath, apiVersion: opts.apiVersion, timeoutMs: opts.timeoutMs ?? 1500 });
      const version = await client.ping();
      return version === '' || compareApiVersions(version, client.apiVersion) >= 0;
    } catch {
      return false;
    } finally {
      client?.close();
    }
  }

  async create(spec: DeploymentSpec): Promise<void> {
    this.check();
    validateSpec(spec, (svc, bad) => {
      if (svc.image.trim() === '') bad(`service ${svc.name} has no image`);
      checkMounts(svc, bad);
    });
    for (const image of new Set(spec.services.map((s) => s.image))) await this.ensureImage(image);
    await this.remove(spec.deploymentId);
    this.known.set(
      spec.deploymentId,
      spec.services.map((s) => s.name),
    );
    const created: string[] = [];
    try {
      for (const svc of spec.services) {
        const name = `kova-${spec.deploymentId}-${svc.name}`;
        const res = await this.client
          .json<{ Id: string }>('POST', '/containers/create', { query: { name }, body: this.containerConfig(spec.deploymentId, svc) })
          .catch((err: unknown) => {
            if (isApiStatus(err, 409)) throw new RuntimeError(`container name ${name} is already in use by another container`, err);
            throw err;
          });
        if (res?.Id) created.push(res.Id);
      }
    } catch (err) {
      await Promise.allSettled(created.map((id) => this.client.removeContainer(id)));
      throw wrap(err, `create deployment ${spec.deploymentId}`);
    }
  }

  async start(deploymentId: string): Promise<void> {
    const containers = await this.containers(deploymentId);
    if (containers.length === 0) throw new RuntimeError(`deployment ${deploymentId} has no services on this node`);
    await eachService(containers, `start deployment ${deploymentId}`, async (c) => {
      const st = await this.client.containerState(c.id);
      if (st.Paused) await this.client.request('POST', `/containers/${c.id}/unpause`);
      else if (!st.Running) await this.client.request('POST', `/containers/${c.id}/start`); // 304: already started
    });
  }

  async stop(deploymentId: string): Promise<void> {
    const containers = await this.containers(deploymentId);
    await eachService(containers, `stop deployment ${deploymentId}`, (c) => this.stopContainer(c.id));
  }

  async freeze(deploymentId: string): Promise<void> {
    const containers = await this.containers(deploymentId);
    const paused: string[] = [];
    try {
      await eachService(containers, `freeze deployment ${deploymentId}`, async (c) => {
        if (await this.pause(c.id)) paused.push(c.id);
      });
    } catch (err) {
      // Leave nothing half-frozen.
      await Promise.allSettled(paused.map((id) => this.unpause(id)));
      throw err;
    }
  }

  async thaw(deploymentId: string): Promise<void> {
    const containers = await this.containers(deploymentId);
    await eachService(containers, `thaw deployment ${deploymentId}`, async (c) => {
      await this.unpause(c.id);
    });
  }

  async exec(deploymentId: string, service: string, cmd: readonly string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    if (cmd.length === 0) throw new RuntimeError('exec needs a command');
    const what = `exec in service ${service} of deployment ${deploymentId}`;
    const c = (await this.containers(deploymentId)).find((x) => x.service === service);
    if (!c) throw new RuntimeError(`${what}: no such service`);
    try {
      return await runExec(this.client, c.id, cmd, opts.timeoutMs ?? this.execTimeoutMs);
    } catch (err) {
      throw wrap(err, what);
    }
  }

  async status(deploymentId: string): Promise<ServiceStatus[]> {
    const containers = await this.containers(deploymentId);
    const names = [...(this.known.get(deploymentId) ?? [])];
    for (const c of [...containers].sort((a, b) => a.service.localeCompare(b.service))) {
      if (!names.includes(c.service)) names.push(c.service);
    }
    return Promise.all(
      names.map(async (name): Promise<ServiceStatus> => {
        const c = containers.find((x) => x.service === name);
        const st = c ? await this.client.containerState(c.id).catch(ignoreStatus(404)) : undefined;
        if (!st) return { name, state: 'missing', startedAt: null, exitCode: null };
        const state: ServiceState = st.Paused ? 'paused' : st.Running && !st.Restarting ? 'running' : 'stopped';
        const startedAt = st.StartedAt && st.StartedAt !== ZERO_TIME ? st.StartedAt : null;
        const ran = st.FinishedAt && st.FinishedAt !== ZERO_TIME;
        return { name, state, startedAt, exitCode: state === 'stopped' && ran ? st.ExitCode : null };
      }),
    );
  }

  /** remove stops the services gracefully (SIGTERM, then SIGKILL after the stop timeout), then deletes them. */
  async remove(deploymentId: string): Promise<void> {
    const containers = await this.containers(deploymentId);
    await eachService(containers, `remove deployment ${deploymentId}`, async (c) => {
      await this.stopContainer(c.id).catch(() => undefined); // the forced removal below kills it anyway
      await this.client.removeContainer(c.id);
    });
  }

  async deployments(): Promise<string[]> {
    const ids = (await this.list()).map((c) => c.Labels?.[LABEL_DEPLOYMENT] ?? '');
    return [...new Set(ids.filter((id) => id !== ''))].sort();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client.close();
  }

  private check(): void {
    if (this.closed) throw new RuntimeError('the Docker runtime is closed');
  }

  private containerConfig(deploymentId: string, svc: ServiceSpec): Record<string, unknown> {
    const memory = svc.resources?.memoryBytes ?? this.defaultMemoryBytes;
    const cpus = svc.resources?.cpus ?? null;
    return {
      Image: svc.image,
      ...(svc.command.length > 0 ? { Entrypoint: [...svc.command] } : {}),
      ...(svc.args.length > 0 ? { Cmd: [...svc.args] } : {}),
      Env: Object.entries(svc.env).map(([k, v]) => `${k}=${v}`),
      Labels: { [LABEL_MANAGED]: 'true', [LABEL_DEPLOYMENT]: deploymentId, [LABEL_SERVICE]: svc.name },
      Tty: false,
      OpenStdin: false,
      StopTimeout: this.stopTimeoutSec,
      HostConfig: {
        // Mounts (not Binds): a missing host directory fails the start instead of
        // being created empty, so a volume can never silently come up blank.
        Mounts: svc.volumes.map((v) => ({ Type: 'bind', Source: v.hostPath, Target: v.mountPath, ReadOnly: v.readOnly === true })),
        NetworkMode: this.networkMode,
        Init: true,
        RestartPolicy: { Name: 'unless-stopped' },
        // Limits: memory plus swap equal to memory means no swap on top.
        Memory: memory,
        MemorySwap: memory,
        PidsLimit: this.pidsLimit,
        ...(cpus !== null ? { NanoCpus: Math.round(cpus * 1e9) } : {}),
        CapDrop: ['ALL'],
        CapAdd: [...SERVICE_CAPABILITIES],
        SecurityOpt: ['no-new-privileges:true'],
      },
    };
  }

  /** list returns the managed containers, all of them or one deployment's. */
  private list(deploymentId?: string): Promise<ContainerSummary[]> {
    this.check();
    return this.client.listContainers([
      `${LABEL_MANAGED}=true`,
      ...(deploymentId === undefined ? [] : [`${LABEL_DEPLOYMENT}=${deploymentId}`]),
    ]);
  }

  private async containers(deploymentId: string): Promise<Container[]> {
    return (await this.list(deploymentId)).map((c) => ({ id: c.Id, service: c.Labels?.[LABEL_SERVICE] ?? c.Id.slice(0, 12) }));
  }

  private async stopContainer(id: string): Promise<void> {
    // A paused service would get SIGTERM only once thawed: thaw it first so it can shut down cleanly.
    await this.unpause(id);
    const opts = { query: { t: this.stopTimeoutSec }, timeoutMs: this.stopTimeoutSec * 1000 + 30_000 };
    await this.client.request('POST', `/containers/${id}/stop`, opts).catch(ignoreStatus(404)); // 304: already stopped
  }

  /** pause freezes a running container and waits until it reports Paused; false when there was nothing to freeze. */
  private async pause(id: string): Promise<boolean> {
    let st = await this.client.containerState(id);
    if (st.Paused || !st.Running) return false; // a stopped service has nothing to freeze
    if (st.Restarting) throw new RuntimeError('the service is restarting (crashing?) and cannot be frozen');
    try {
      await this.client.request('POST', `/containers/${id}/pause`);
    } catch (err) {
      st = await this.client.containerState(id);
      if (st.Paused || !st.Running) return false; // raced with another freeze or an exit
      throw err;
    }
    for (let i = 0; i < 200; i++) {
      st = await this.client.containerState(id);
      if (st.Paused) return true;
      if (!st.Running) return false;
      await sleep(10);
    }
    throw new RuntimeError('the service did not report paused after the pause request');
  }

  private async unpause(id: string): Promise<void> {
    const st = await this.client.containerState(id).catch(ignoreStatus(404));
    if (!st?.Paused) return;
    try {
      await this.client.request('POST', `/containers/${id}/unpause`);
    } catch (err) {
      const now = await this.client.containerState(id).catch(ignoreStatus(404));
      if (now?.Paused) throw err;
    }
  }

  /** ensureImage pulls a missing image when allowed; offline the pull fails fast and the error says so. */
  private async ensureImage(image: string): Promise<void> {
    if (await this.client.imageExists(image)) return;
    let why = 'pulling is disabled';
    if (this.pullTimeoutMs > 0) {
      why = (await this.client.pullImage(image, this.pullTimeoutMs).catch(messageOf)) ?? 'the pull did not produce it';
      if (await this.client.imageExists(image)) return;
    }
    throw new RuntimeError(`image ${image} is not available on this node and could not be pulled (${why})`);
  }
}

/** Runs fn on every container in parallel; failures are reported together, per service. */
async function eachService(containers: readonly Container[], what: string, fn: (c: Container) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(containers.map(fn));
  const errors = results.flatMap((r, i) =>
    r.status === 'rejected' ? [`service ${containers[i]?.service ?? '?'}: ${messageOf(r.reason)}`] : [],
  );
  if (errors.length > 0) {
    const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    throw new RuntimeError(`${what}: ${errors.join('; ')}`, first?.reason);
  }
}

function wrap(err: unknown, what: string): RuntimeError {
  return new RuntimeError(`${what}: ${messageOf(err)}`, err);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
