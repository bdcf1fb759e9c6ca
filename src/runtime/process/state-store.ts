/**
 * state-store: the process runtime's files under its state directory.
 *
 *   deployments/<id>.json        the spec and, per started service, who its
 *                                leader process is (pid, start time, boot id)
 *   logs/<id>/<service>.log      stdout and stderr of the service, appended
 *   scratch/<id>/<service>/      working directory of a service without volume
 *
 * State files are replaced atomically (temp file + rename), so a server killed
 * mid-write leaves the old or the new state, never a torn one; a new server
 * finds the processes of the old one through them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeploymentSpec } from '../types.js';
import { RuntimeError } from '../types.js';
import type { ProcessIdentity } from './proc.js';

export interface ServiceRecord extends ProcessIdentity {
  /** ISO time the process was started. */
  readonly startedAt: string;
}

export interface DeploymentState {
  readonly version: 1;
  readonly spec: DeploymentSpec;
  /** Leader of each service's last run; absent for a service never started. */
  readonly services: Readonly<Record<string, ServiceRecord>>;
}

const SUFFIX = '.json';

export class StateStore {
  constructor(readonly dir: string) {}

  statePath(deploymentId: string): string {
    return join(this.dir, 'deployments', deploymentId + SUFFIX);
  }

  logDir(deploymentId: string): string {
    return join(this.dir, 'logs', deploymentId);
  }

  logPath(deploymentId: string, service: string): string {
    return join(this.logDir(deploymentId), `${service}.log`);
  }

  scratchRoot(deploymentId: string): string {
    return join(this.dir, 'scratch', deploymentId);
  }

  scratchDir(deploymentId: string, service: string): string {
    return join(this.scratchRoot(deploymentId), service);
  }

  /** read returns the deployment's state, or null when there is none. */
  async read(deploymentId: string): Promise<DeploymentState | null> {
    const path = this.statePath(deploymentId);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new RuntimeError(`cannot read ${path}: ${(err as Error).message}`, err);
    }
    return parseState(text, path, deploymentId);
  }

  async write(state: DeploymentState): Promise<void> {
    const path = this.statePath(state.spec.deploymentId);
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(join(this.dir, 'deployments'), { recursive: true });
      await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new RuntimeError(`cannot write ${path}: ${(err as Error).message}`, err);
    }
  }

  async delete(deploymentId: string): Promise<void> {
    await rm(this.statePath(deploymentId), { force: true });
  }

  /** list returns the ids of the deployments that have a state file. */
  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, 'deployments'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.'))
      .map((n) => n.slice(0, -SUFFIX.length))
      .sort();
  }
}

function parseState(text: string, path: string, deploymentId: string): DeploymentState {
  const bad = (why: string): never => {
    throw new RuntimeError(`state file ${path} is unreadable (${why}); remove it to forget the deployment`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    bad('not JSON');
  }
  const obj = raw as Partial<DeploymentState> | null;
  if (obj === null || typeof obj !== 'object' || obj.version !== 1) return bad('unknown version');
  const spec = obj.spec;
  if (!spec || spec.deploymentId !== deploymentId || !Array.isArray(spec.services)) return bad('no deployment spec');
  const services = obj.services ?? {};
  if (typeof services !== 'object') return bad('bad service records');
  for (const [name, rec] of Object.entries(services)) {
    if (typeof rec?.pid !== 'number' || typeof rec.startTime !== 'string' || typeof rec.bootId !== 'string') {
      bad(`bad record for service ${name}`);
    }
  }
  return { version: 1, spec, services };
}
