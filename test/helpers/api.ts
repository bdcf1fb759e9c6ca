/**
 * api: small helpers shared by the API and scheduler suites, on top of the
 * harness: asserting the error envelope, creating a deployment and waiting
 * for it to run, writing into its volume, taking a snapshot to `ready`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { type Harness, sdlFor } from './harness.js';

export type ApiResult = Awaited<ReturnType<Harness['api']>>;
/** A parsed response body (JSON of any shape). */
export type Body = ApiResult['body'];

/** The contract fields of a snapshot, and the extras the suites read. */
export interface SnapshotView {
  readonly id: string;
  readonly label: string | null;
  readonly status: 'creating' | 'ready' | 'failed' | 'deleting';
  readonly size: string;
  readonly automatic: boolean;
  readonly createdAt: string;
  readonly trigger: string;
  readonly sizeBytes: number | null;
  readonly error: string | null;
}

/** A service that does nothing but stay up, so snapshots can freeze it and hooks can run in it. */
export const IDLE_SCRIPT = 'exec sleep 100000';

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** expectError asserts the status and that the body is exactly {success:false, error:{code, message}}. */
export function expectError(r: ApiResult, status: number, code: string): { code: string; message: string } {
  expect({ status: r.status, body: r.body }).toMatchObject({ status, body: { success: false, error: { code } } });
  expect(Object.keys(r.body as object).sort()).toEqual(['error', 'success']);
  const err = (r.body as { error: { code: string; message: string } }).error;
  expect(Object.keys(err).sort()).toEqual(['code', 'message']);
  expect(typeof err.message).toBe('string');
  expect(err.message.length).toBeGreaterThan(0);
  return err;
}

/** expectOk asserts the status and `success: true`, and returns the body. */
export function expectOk(r: ApiResult, status = 200): Body {
  expect({ status: r.status, body: r.body }).toMatchObject({ status, body: { success: true } });
  return r.body;
}

/** createDeployment creates a deployment through the API and waits until its services run. */
export async function createDeployment(h: Harness, sdl: string = sdlFor(IDLE_SCRIPT), token?: string): Promise<string> {
  const r = await h.api('POST', '/api/v1/deployments', { sdl }, token);
  const body = expectOk(r, 201);
  await h.idle();
  return body.deployment.id as string;
}

/** volumeDir is the host directory of one of a deployment's volumes (service `app` by default). */
export function volumeDir(h: Harness, depId: string, volume = 'data', service = 'app'): string {
  return h.paths.volume(depId, { service, volume });
}

/** writeVolume writes a file into a deployment's volume. */
export function writeVolume(h: Harness, depId: string, file: string, data: string | Buffer, volume = 'data'): void {
  const dir = volumeDir(h, depId, volume);
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), data);
}

/** readVolume reads a file from a deployment's volume (null when missing). */
export function readVolume(h: Harness, depId: string, file: string, volume = 'data'): string | null {
  try {
    return fs.readFileSync(path.join(volumeDir(h, depId, volume), file), 'utf8');
  } catch {
    return null;
  }
}

/** takeSnapshot creates a manual snapshot through the API, waits for the jobs, and returns its final view. */
export async function takeSnapshot(h: Harness, depId: string, label?: string | null): Promise<SnapshotView> {
  const r = await h.api('POST', `/api/v1/deployments/${depId}/snapshots`, label === undefined ? {} : { label });
  const created = expectOk(r, 202).snapshot;
  await h.idle();
  const got = expectOk(await h.api('GET', `/api/v1/deployments/${depId}/snapshots/${created.id}`)).snapshot as SnapshotView;
  expect(got.status).toBe('ready');
  return got;
}

/** listSnapshots returns a deployment's snapshots as the API lists them. */
export async function listSnapshots(h: Harness, depId: string, token?: string): Promise<SnapshotView[]> {
  return expectOk(await h.api('GET', `/api/v1/deployments/${depId}/snapshots`, undefined, token)).snapshots as SnapshotView[];
}

/** The six fields the contract fixes for every snapshot. */
export function expectContractSnapshot(s: SnapshotView): void {
  expect(s).toEqual(
    expect.objectContaining({
      id: expect.stringMatching(/^snap-/),
      label: s.label === null ? null : expect.any(String),
      status: expect.stringMatching(/^(creating|ready|failed|deleting)$/),
      size: expect.stringMatching(/^(\d+ B|\d+\.\d (KB|MB|GB|TB))$/),
      automatic: expect.any(Boolean),
      createdAt: expect.stringMatching(ISO_UTC),
    }),
  );
}

/** The file that, present in a slowSdl deployment's volume, makes its snapshots slow. */
export const SLOW_MARKER = '.slow-snapshots';

/**
 * slowSdl is a deployment whose snapshots take at least `seconds` while
 * setSlow(…, true) is in effect: a pre-snapshot hook (run in the volume)
 * sleeps when the marker file is there.
 */
export function slowSdl(seconds = 1): string {
  return sdlFor(IDLE_SCRIPT, { pre: ['sh', '-c', `if [ -e ${SLOW_MARKER} ]; then sleep ${seconds}; fi`] });
}

/** setSlow turns a slowSdl deployment's slow snapshots on or off. */
export function setSlow(h: Harness, depId: string, on: boolean): void {
  const marker = path.join(volumeDir(h, depId), SLOW_MARKER);
  if (on) fs.writeFileSync(marker, '');
  else fs.rmSync(marker, { force: true });
}

/**
 * raw sends a request exactly as given (no body and no content type unless
 * set), with alice's token unless `token` is given (null: none).
 */
export async function raw(
  h: Harness,
  method: string,
  url: string,
  opts: { token?: string | null; headers?: Record<string, string>; payload?: string | Buffer } = {},
): Promise<ApiResult> {
  const token = opts.token === undefined ? h.token : opts.token;
  const res = await h.app.inject({
    method: method as 'GET',
    url,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(opts.headers ?? {}) },
    ...(opts.payload === undefined ? {} : { payload: opts.payload }),
  });
  return { status: res.statusCode, body: parseBody(res.body), res };
}

function parseBody(text: string): Body {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** While this file is in a holdSdl deployment's volume, its snapshots wait in their pre-snapshot hook. */
const HOLD_MARKER = '.hold-snapshots';

/**
 * occupyJobSlots starts held snapshots on two fresh deployments, so the
 * job queue's two slots stay busy until release() (not for a fixed time,
 * which a loaded machine can outrun): a job queued meanwhile stays queued.
 * Call release() before waiting for the queue to drain.
 */
export async function occupyJobSlots(h: Harness): Promise<{ deployments: [string, string]; release(): void }> {
  const sdl = sdlFor(IDLE_SCRIPT, { pre: ['sh', '-c', `while [ -e ${HOLD_MARKER} ]; do sleep 0.05; done`] });
  const a = await createDeployment(h, sdl);
  const b = await createDeployment(h, sdl);
  for (const dep of [a, b]) {
    fs.writeFileSync(path.join(volumeDir(h, dep), HOLD_MARKER), '');
    expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots`, {}), 202);
  }
  return {
    deployments: [a, b],
    release: () => {
      for (const dep of [a, b]) fs.rmSync(path.join(volumeDir(h, dep), HOLD_MARKER), { force: true });
    },
  };
}
