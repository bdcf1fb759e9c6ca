/**
 * process-runtime: the Runtime port on plain local processes, for development
 * and tests. It offers NO isolation: services run as ordinary processes of
 * the server's user, see the whole host file system and network, and share
 * its limits. The image is ignored (only recorded in the state file).
 *
 * Each service is [...command, ...args] run as its own process group
 * (detached: new session, pgid = pid), with a clean environment (PATH, HOME,
 * the spec's env, KOVA_VOLUME_<NAME>, KOVA_DEPLOYMENT, KOVA_SERVICE), the
 * first volume's directory (or an empty scratch directory) as working
 * directory, and stdout/stderr appended to <stateDir>/logs/<id>/<service>.log.
 *
 * Processes outlive the server, like containers outlive an orchestrator
 * restart: a per-deployment state file records each leader's pid, start time
 * and boot id, so a new instance finds, signals and stops what an old one
 * started, and a recycled pid is never mistaken for a service. stop is
 * SIGTERM to the group, SIGKILL after stopTimeoutMs; freeze is SIGSTOP to the
 * group, confirmed in /proc for every member; thaw is SIGCONT. Exit codes are
 * known only for processes this instance started (it is their parent and
 * reaps them); processes of an earlier instance were re-parented to init.
 * Linux only (/proc).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { constants } from 'node:os';
import type { DeploymentSpec, ExecResult, Runtime, ServiceSpec, ServiceStatus } from '../types.js';
import { RuntimeError } from '../types.js';
import { runProcess } from './exec-process.js';
import { freezeGroup, serviceState, signalOwnGroup, stopGroup } from './group-control.js';
import { BOOT_ID, leaderAlive, startTimeOf } from './proc.js';
import { isValidName } from '../spec.js';
import { commandLine, serviceEnv, validateSpec } from './service-spec.js';
import { type DeploymentState, type ServiceRecord, StateStore } from './state-store.js';

export interface ProcessRuntimeOptions {
  /** Where state files, logs and scratch directories live. */
  readonly stateDir: string;
  /** How long stop() waits after SIGTERM before SIGKILL (default 10 s). */
  readonly stopTimeoutMs?: number;
  /** How long freeze() waits for every process to report stopped (default 5 s). */
  readonly freezeTimeoutMs?: number;
  /** Deadline of exec() when the call gives none (default 120 s). */
  readonly execTimeoutMs?: number;
}

interface Exit {
  readonly pid: number;
  readonly startTime: string;
  readonly code: number;
}

export class ProcessRuntime implements Runtime {
  readonly kind = 'process' as const;
  readonly canFreeze = true;
  private readonly store: StateStore;
  private readonly stopTimeoutMs: number;
  private readonly freezeTimeoutMs: number;
  private readonly execTimeoutMs: number;
  /** Service names per deployment seen here, so status() reports removed ones as missing. */
  private readonly known = new Map<string, readonly string[]>();
  /** Last exit of each service this instance started, by "<deployment>/<service>". */
  private readonly exits = new Map<string, Exit>();
  private readonly children = new Map<ChildProcess, (code: number | null, signal: NodeJS.Signals | null) => void>();
  /** Operations on one deployment run one after the other. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private closed = false;

  constructor(opts: ProcessRuntimeOptions) {
    if (!opts.stateDir) throw new RuntimeError('the process runtime needs a state directory');
    this.store = new StateStore(opts.stateDir);
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
    this.freezeTimeoutMs = opts.freezeTimeoutMs ?? 5000;
    this.execTimeoutMs = opts.execTimeoutMs ?? 120_000;
  }

  async create(spec: DeploymentSpec): Promise<void> {
    this.check();
    validateSpec(spec);
    const id = spec.deploymentId;
    await this.serial(id, async () => {
      const old = await this.store.read(id);
      if (old) await this.stopAll(old, `create deployment ${id}`);
      await rm(this.store.scratchRoot(id), { recursive: true, force: true });
      await this.store.write({ version: 1, spec, services: {} });
      this.known.set(
        id,
        spec.services.map((s) => s.name),
      );
      for (const s of spec.services) this.exits.delete(`${id}/${s.name}`);
    });
  }

  async start(deploymentId: string): Promise<void> {
    await this.serial(deploymentId, async () => {
      const state = await this.load(deploymentId);
      if (!state) throw new RuntimeError(`deployment ${deploymentId} has no services on this node`);
      const services: Record<string, ServiceRecord> = { ...state.services };
      const errors: Failure[] = [];
      for (const svc of state.spec.services) {
        const rec = services[svc.name];
        try {
          if (rec && leaderAlive(rec)) {
            signalOwnGroup(rec, 'SIGCONT'); // start resumes a frozen service
            continue;
          }
          if (rec) await stopGroup(rec, this.stopTimeoutMs); // leftovers of the last run
          services[svc.name] = await this.spawnService(deploymentId, svc);
          // Recorded at once: a server killed now must still find what it started.
          await this.store.write({ ...state, services });
        } catch (err) {
          errors.push({ name: svc.name, err });
        }
      }
      throwFailures(errors, `start deployment ${deploymentId}`);
    });
  }

  async stop(deploymentId: string): Promise<void> {
    await this.serial(deploymentId, async () => {
      const state = await this.load(deploymentId);
      if (state) await this.stopAll(state, `stop deployment ${deploymentId}`);
    });
  }

  async freeze(deploymentId: string): Promise<void> {
    await this.serial(deploymentId, async () => {
      const signalled: ServiceRecord[] = [];
      try {
        await eachService(records(await this.load(deploymentId)), `freeze deployment ${deploymentId}`, async (rec) => {
          if (!leaderAlive(rec)) return; // a stopped service has nothing to freeze
          signalled.push(rec);
          await freezeGroup(rec, this.freezeTimeoutMs);
        });
      } catch (err) {
        // Leave nothing half-frozen.
        for (const rec of signalled) signalOwnGroup(rec, 'SIGCONT');
        throw err;
      }
    });
  }

  async thaw(deploymentId: string): Promise<void> {
    await this.serial(deploymentId, async () => {
      for (const { rec } of records(await this.load(deploymentId))) signalOwnGroup(rec, 'SIGCONT');
    });
  }

  async exec(deploymentId: string, service: string, cmd: readonly string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    this.check();
    if (cmd.length === 0) throw new RuntimeError('exec needs a command');
    const what = `exec in service ${service} of deployment ${deploymentId}`;
    const state = await this.load(deploymentId);
    const svc = state?.spec.services.find((s) => s.name === service);
    if (!state || !svc) throw new RuntimeError(`${what}: no such service`);
    const st = serviceState(state.services[service]);
    if (st !== 'running') throw new RuntimeError(`${what}: the service is ${st === 'paused' ? 'frozen' : 'not running'}`);
    const cwd = await this.workDir(deploymentId, svc).catch((err: unknown) => {
      throw new RuntimeError(`${what}: ${(err as Error).message}`, err);
    });
    return runProcess(cmd, { cwd, env: serviceEnv(deploymentId, svc), timeoutMs: opts.timeoutMs ?? this.execTimeoutMs });
  }

  async status(deploymentId: string): Promise<ServiceStatus[]> {
    const state = await this.load(deploymentId);
    const names = state?.spec.services.map((s) => s.name) ?? [];
    for (const n of this.known.get(deploymentId) ?? []) if (!names.includes(n)) names.push(n);
    return names.map((name): ServiceStatus => {
      if (!state?.spec.services.some((s) => s.name === name)) return { name, state: 'missing', startedAt: null, exitCode: null };
      const rec = state.services[name];
      const st = serviceState(rec);
      const exit = this.exits.get(`${deploymentId}/${name}`);
      const known = st === 'stopped' && rec && exit && exit.pid === rec.pid && exit.startTime === rec.startTime;
      return { name, state: st, startedAt: rec?.startedAt ?? null, exitCode: known ? exit.code : null };
    });
  }

  /** remove stops the services and forgets the deployment; volume directories and logs are kept. */
  async remove(deploymentId: string): Promise<void> {
    await this.serial(deploymentId, async () => {
      const state = await this.load(deploymentId);
      if (state) await this.stopAll(state, `remove deployment ${deploymentId}`);
      await this.store.delete(deploymentId);
      await rm(this.store.scratchRoot(deploymentId), { recursive: true, force: true });
    });
  }

  async deployments(): Promise<string[]> {
    this.check();
    return this.store.list();
  }

  /** close forgets the child processes; the services keep running, for the next instance to find. */
  async close(): Promise<void> {
    this.closed = true;
    for (const [child, onExit] of this.children) child.off('exit', onExit);
    this.children.clear();
    this.exits.clear();
  }

  private check(): void {
    if (this.closed) throw new RuntimeError('the process runtime is closed');
  }

  private serial<T>(deploymentId: string, fn: () => Promise<T>): Promise<T> {
    this.check();
    const run = (this.queues.get(deploymentId) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => undefined);
    this.queues.set(deploymentId, tail);
    void tail.then(() => {
      if (this.queues.get(deploymentId) === tail) this.queues.delete(deploymentId);
    });
    return run;
  }

  private async load(deploymentId: string): Promise<DeploymentState | null> {
    this.check();
    if (!isValidName(deploymentId)) return null; // never a state file of ours
    const state = await this.store.read(deploymentId);
    if (state && !this.known.has(deploymentId))
      this.known.set(
        deploymentId,
        state.spec.services.map((s) => s.name),
      );
    return state;
  }

  private async stopAll(state: DeploymentState, what: string): Promise<void> {
    await eachService(records(state), what, (rec) => stopGroup(rec, this.stopTimeoutMs));
  }

  private async spawnService(deploymentId: string, svc: ServiceSpec): Promise<ServiceRecord> {
    const [program = '', ...rest] = commandLine(svc);
    const cwd = await this.workDir(deploymentId, svc);
    await mkdir(this.store.logDir(deploymentId), { recursive: true });
    const fd = openSync(this.store.logPath(deploymentId, svc.name), 'a', 0o600);
    let child: ChildProcess;
    try {
      writeSync(fd, `--- ${new Date().toISOString()} starting ${JSON.stringify(commandLine(svc))} in ${cwd}\n`);
      child = spawn(program, rest, { detached: true, cwd, env: serviceEnv(deploymentId, svc), stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    child.on('error', () => undefined);
    const pid = child.pid;
    // Read before yielding to the event loop: until then the child cannot have been reaped.
    const startTime = pid === undefined ? null : startTimeOf(pid);
    if (pid === undefined || startTime === null) {
      const [err] = pid === undefined ? ((await once(child, 'error')) as [NodeJS.ErrnoException]) : [undefined];
      const why =
        err?.code === 'ENOENT' ? 'not found' : err?.code === 'EACCES' ? 'permission denied' : (err?.message ?? 'it vanished at once');
      throw new RuntimeError(`cannot run "${program}": ${why}`, err);
    }
    const key = `${deploymentId}/${svc.name}`;
    this.exits.delete(key);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      this.children.delete(child);
      this.exits.set(key, { pid, startTime, code: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0) });
    };
    child.once('exit', onExit);
    this.children.set(child, onExit);
    child.unref(); // the server may exit while its services keep running
    return { pid, startTime, bootId: BOOT_ID, startedAt: new Date().toISOString() };
  }

  /** workDir is the first volume's directory, or the service's scratch directory when it has none. */
  private async workDir(deploymentId: string, svc: ServiceSpec): Promise<string> {
    const first = svc.volumes[0];
    if (!first) {
      const dir = this.store.scratchDir(deploymentId, svc.name);
      await mkdir(dir, { recursive: true });
      return dir;
    }
    const st = await stat(first.hostPath).catch(() => null);
    if (!st?.isDirectory()) throw new RuntimeError(`volume ${first.name}: directory ${first.hostPath} does not exist`);
    return first.hostPath;
  }
}

interface Named {
  readonly name: string;
  readonly rec: ServiceRecord;
}

interface Failure {
  readonly name: string;
  readonly err: unknown;
}

/** records pairs each started service with its leader's record. */
function records(state: DeploymentState | null): Named[] {
  return state ? Object.entries(state.services).map(([name, rec]) => ({ name, rec })) : [];
}

/** Runs fn on every service in parallel; failures are reported together. */
async function eachService(items: readonly Named[], what: string, fn: (rec: ServiceRecord) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(items.map((x) => fn(x.rec)));
  throwFailures(
    results.flatMap((r, i) => (r.status === 'rejected' ? [{ name: items[i]?.name ?? '?', err: r.reason as unknown }] : [])),
    what,
  );
}

function throwFailures(failures: readonly Failure[], what: string): void {
  if (failures.length === 0) return;
  const msg = failures.map((f) => `service ${f.name}: ${f.err instanceof Error ? f.err.message : String(f.err)}`).join('; ');
  throw new RuntimeError(`${what}: ${msg}`, failures[0]?.err);
}
