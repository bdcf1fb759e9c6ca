/**
 * flows: the API calls the workflow suites repeat (create a deployment and
 * wait for it to run, take a snapshot and wait for it, restore and wait),
 * over any client: the in-process harness or a real server over HTTP.
 * Each step checks the status code it gets, so a suite fails at the step
 * that went wrong, with the server's answer in the message.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { Paths } from '../../src/services/paths.js';
import { openRepo } from '../../src/services/repos.js';
import { waitFor } from './harness.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface ApiResult {
  readonly status: number;
  readonly body: any;
}
export type Api = (method: string, url: string, body?: unknown) => Promise<ApiResult>;
/* eslint-enable @typescript-eslint/no-explicit-any */

const show = (r: ApiResult): string => JSON.stringify(r.body);

/** expectStatus fails with the whole answer when the status is not `status`. */
export function expectStatus(r: ApiResult, status: number, what: string): void {
  expect(r.status, `${what}: HTTP ${r.status} ${show(r)}`).toBe(status);
}

export async function createDeployment(api: Api, sdl: string, name?: string): Promise<string> {
  const r = await api('POST', '/api/v1/deployments', name === undefined ? { sdl } : { sdl, name });
  expectStatus(r, 201, 'create deployment');
  expect(r.body.deployment.status).toBe('active');
  return r.body.deployment.id as string;
}

/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function getDeployment(api: Api, depId: string): Promise<any> {
  const r = await api('GET', `/api/v1/deployments/${depId}`);
  expectStatus(r, 200, `get deployment ${depId}`);
  return r.body.deployment;
}

/** waitRunning waits until every service of the deployment runs and no operation is in progress. */
/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function waitRunning(api: Api, depId: string, timeoutMs = 30_000): Promise<any> {
  let last: unknown = null;
  try {
    return await waitFor(
      async () => {
        const d = await getDeployment(api, depId);
        last = d;
        const services = d.services as Array<{ state: string }>;
        return services.length > 0 && services.every((s) => s.state === 'running') && d.operation === null ? d : null;
      },
      timeoutMs,
      `deployment ${depId} to run`,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`, { cause: err });
  }
}

/** waitIdle waits until no operation is in progress on the deployment. */
export async function waitIdle(api: Api, depId: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await getDeployment(api, depId)).operation === null, timeoutMs, `deployment ${depId} to be idle`);
}

/** startSnapshot requests a snapshot (202, creating) and returns its id. */
export async function startSnapshot(api: Api, depId: string, label?: string): Promise<string> {
  const r = await api('POST', `/api/v1/deployments/${depId}/snapshots`, label === undefined ? {} : { label });
  expectStatus(r, 202, 'create snapshot');
  expect(r.body.snapshot.status).toBe('creating');
  expect(r.body.snapshot.id).toMatch(/^snap-/);
  return r.body.snapshot.id as string;
}

/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function getSnapshot(api: Api, depId: string, snapId: string): Promise<any> {
  const r = await api('GET', `/api/v1/deployments/${depId}/snapshots/${snapId}`);
  expectStatus(r, 200, `get snapshot ${snapId}`);
  return r.body.snapshot;
}

/** waitSnapshot waits until the snapshot is no longer `creating` and returns it. */
/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function waitSnapshot(api: Api, depId: string, snapId: string, timeoutMs = 60_000): Promise<any> {
  return waitFor(
    async () => {
      const s = await getSnapshot(api, depId, snapId);
      return s.status === 'creating' ? null : s;
    },
    timeoutMs,
    `snapshot ${snapId} to finish`,
  );
}

/** snapshotReady takes a snapshot, waits for it and checks it is ready. */
/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function snapshotReady(api: Api, depId: string, label?: string): Promise<any> {
  const id = await startSnapshot(api, depId, label);
  const s = await waitSnapshot(api, depId, id);
  expect(s.status, `snapshot ${id}: ${JSON.stringify(s)}`).toBe('ready');
  return s;
}

/** startRestore requests a restore (202, pending) and returns its id. */
export async function startRestore(api: Api, depId: string, snapId: string, body: { safetySnapshot?: boolean } = {}): Promise<string> {
  const r = await api('POST', `/api/v1/deployments/${depId}/snapshots/${snapId}/restore`, body);
  expectStatus(r, 202, 'restore');
  expect(r.body.restore.id).toMatch(/^rst-/);
  expect(r.body.restore.snapshotId).toBe(snapId);
  return r.body.restore.id as string;
}

/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function getRestore(api: Api, depId: string, rstId: string): Promise<any> {
  const r = await api('GET', `/api/v1/deployments/${depId}/restores/${rstId}`);
  expectStatus(r, 200, `get restore ${rstId}`);
  return r.body.restore;
}

/** waitRestore waits until the restore is completed or failed and returns it. */
/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function waitRestore(api: Api, depId: string, rstId: string, timeoutMs = 60_000): Promise<any> {
  return waitFor(
    async () => {
      const r = await getRestore(api, depId, rstId);
      return r.status === 'completed' || r.status === 'failed' ? r : null;
    },
    timeoutMs,
    `restore ${rstId} to finish`,
  );
}

/** restoreCompleted restores a snapshot, waits and checks it completed. */
/* eslint-disable-next-line @typescript-eslint/no-explicit-any */
export async function restoreCompleted(api: Api, depId: string, snapId: string, body: { safetySnapshot?: boolean } = {}): Promise<any> {
  const id = await startRestore(api, depId, snapId, body);
  const r = await waitRestore(api, depId, id);
  expect(r.status, `restore ${id}: ${JSON.stringify(r)}`).toBe('completed');
  return r;
}

/** volumeDir is where a volume's data lives on the host (see src/services/paths.ts). */
export function volumeDir(dataDir: string, depId: string, volume = 'data', service = 'app'): string {
  return path.join(dataDir, 'volumes', depId, service, volume);
}

/** stagingDirs lists the restore staging directories left in a deployment's volume directory. */
export function stagingDirs(dataDir: string, depId: string): string[] {
  try {
    return fs.readdirSync(path.join(dataDir, 'volumes', depId)).filter((n) => n.startsWith('.restore-'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * extractSnapshot restores one volume of a stored snapshot into a new
 * temporary directory (straight from the repository, not through the
 * service) and returns that directory; the caller removes it.
 */
export async function extractSnapshot(paths: Paths, depId: string, engineId: string, volumeKey = 'app.data'): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-extract-'));
  const target = path.join(dir, 'v');
  const repo = await openRepo(paths, depId, false);
  try {
    await repo.restore(await repo.findSnapshot(engineId), target, { subpath: volumeKey });
  } finally {
    await repo.close();
  }
  return target;
}
