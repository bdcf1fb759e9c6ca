/**
 * api: the dashboard's client of the public API (/api/v1). Every call sends
 * the signed-in API key as a bearer token; errors become ApiError with the
 * API's code and message. A 401 on a signed-in call signs out (see
 * onUnauthorized); a 429 on a read waits for Retry-After and tries again.
 * The shapes of the answers are the API contract's (src/api/contract.ts).
 */

/* The API's types come from its contract, shared with the server and the CLI (type-only: erased from the bundle). */
export type {
  ApiKey,
  ChangeKind,
  Deployment,
  DeploymentNode,
  DeploymentStatus,
  FileChange,
  FileEntry,
  FileType,
  Me,
  NodeStatus,
  NodeSummary,
  Progress,
  Recovery,
  Restore,
  RestorePlan,
  RestoreStatus,
  RetentionPreview,
  Service,
  ServiceState,
  SettingsChange,
  Snapshot,
  SnapshotHealth,
  SnapshotSettings,
  SnapshotStatus,
  SnapshotSummary,
  SnapshotTrigger,
  Verification,
  VerificationSummary,
  Volume,
  VolumePair,
  Webhook,
  WebhookDelivery,
} from '../../src/api/contract';
/** Which paths a restore puts back, and how (see docs/api.md, Restores). */
export interface RestoreSelection {
  paths: string[];
  mode: 'replace' | 'alongside';
  into?: string;
}

import type {
  Deployment,
  FileEntry,
  Me,
  NodeSummary,
  Recovery,
  Restore,
  RestorePlan,
  RetentionPreview,
  SettingsChange,
  Snapshot,
  SnapshotSettings,
  Verification,
  Webhook,
  WebhookDelivery,
} from '../../src/api/contract';

/** An error answered by the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const TOKEN_KEY = 'kova.apiKey';
const BASE = '/api/v1';
const MAX_RETRY_WAIT_S = 15;

let token: string | null = readStoredToken();
let unauthorized: (message: string) => void = () => undefined;

function readStoredToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storedToken(): string | null {
  return token;
}

export function setToken(next: string | null): void {
  token = next;
  try {
    if (next === null) localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, next);
  } catch {
    // Storage may be unavailable (private mode): the key then lasts for this tab only.
  }
}

/** onUnauthorized registers what a 401 on a signed-in call does (sign out with a message). */
export function onUnauthorized(handler: (message: string) => void): void {
  unauthorized = handler;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RequestOptions {
  body?: unknown;
  /** Use this token instead of the signed-in one (sign-in checks a key before keeping it). */
  token?: string;
  signal?: AbortSignal;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const bearer = opts.token ?? token;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(`${BASE}${path}`, {
        method,
        headers,
        body: opts.body === undefined ? null : JSON.stringify(opts.body),
        signal: opts.signal ?? null,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw new ApiError(0, 'NETWORK_ERROR', 'Could not reach the Kova server. Check your connection and try again.');
    }
    if (res.status === 429 && method === 'GET' && attempt < 2) {
      const wait = Math.min(Number(res.headers.get('retry-after')) || 1, MAX_RETRY_WAIT_S);
      await sleep(wait * 1000);
      continue;
    }
    const body = (await res.json().catch((err: unknown) => {
      // A body cut short by the caller's abort is the abort, not an empty answer.
      if (opts.signal?.aborted) throw err;
      return null;
    })) as { success?: boolean; error?: { code?: string; message?: string } } | null;
    if (res.ok && body?.success !== false) return body as T;
    const code = body?.error?.code ?? `HTTP_${res.status}`;
    const message = body?.error?.message ?? `The server answered ${res.status} ${res.statusText}`.trim();
    if (res.status === 401 && opts.token === undefined && token !== null) {
      unauthorized('Your API key was not accepted any more (it may have been revoked). Sign in again.');
    }
    throw new ApiError(res.status, code, message);
  }
}

const enc = encodeURIComponent;
const dep = (id: string) => `/deployments/${enc(id)}`;

export const api = {
  me: (opts: RequestOptions = {}) => request<{ success: true } & Me>('GET', '/me', opts),

  listDeployments: async (signal?: AbortSignal) =>
    (await request<{ deployments: Deployment[] }>('GET', '/deployments', { signal })).deployments,
  getDeployment: async (id: string, signal?: AbortSignal) =>
    (await request<{ deployment: Deployment }>('GET', dep(id), { signal })).deployment,
  createDeployment: async (sdl: string, name?: string) =>
    (await request<{ deployment: Deployment }>('POST', '/deployments', { body: name ? { sdl, name } : { sdl } })).deployment,
  updateDeployment: async (id: string, sdl: string, snapshot: boolean) =>
    (await request<{ deployment: Deployment }>('PUT', dep(id), { body: { sdl, snapshot } })).deployment,
  restartDeployment: async (id: string) => (await request<{ deployment: Deployment }>('POST', `${dep(id)}/restart`)).deployment,
  closeDeployment: async (id: string) => (await request<{ deployment: Deployment }>('POST', `${dep(id)}/close`)).deployment,
  /** Network mode: run a deployment whose node is offline on another node, from a snapshot's off-node copy. */
  recoverDeployment: async (id: string, snapshotId: string) =>
    request<{ deployment: Deployment; recovery: Recovery }>('POST', `${dep(id)}/recover`, { body: { snapshotId } }),

  listSnapshots: async (id: string, signal?: AbortSignal) =>
    (await request<{ snapshots: Snapshot[] }>('GET', `${dep(id)}/snapshots`, { signal })).snapshots,
  requestVerification: async (id: string, full = false) =>
    (await request<{ verification: Verification }>('POST', `${dep(id)}/verifications`, { body: full ? { full: true } : {} })).verification,
  createSnapshot: async (id: string, label: string | null) =>
    (await request<{ snapshot: Snapshot }>('POST', `${dep(id)}/snapshots`, { body: label === null ? {} : { label } })).snapshot,
  deleteSnapshot: async (id: string, snapshotId: string) => {
    await request<unknown>('DELETE', `${dep(id)}/snapshots/${enc(snapshotId)}`);
  },
  restoreSnapshot: async (id: string, snapshotId: string, safetySnapshot: boolean, selection?: RestoreSelection) =>
    (
      await request<{ restore: Restore }>('POST', `${dep(id)}/snapshots/${enc(snapshotId)}/restore`, {
        body: { safetySnapshot, ...selection },
      })
    ).restore,
  restorePlan: async (id: string, snapshotId: string, signal?: AbortSignal, selection?: RestoreSelection) => {
    const q = new URLSearchParams();
    for (const p of selection?.paths ?? []) q.append('paths', p);
    if (selection) q.set('mode', selection.mode);
    if (selection?.into !== undefined) q.set('into', selection.into);
    const query = selection ? `?${q.toString()}` : '';
    return (await request<{ plan: RestorePlan }>('GET', `${dep(id)}/snapshots/${enc(snapshotId)}/restore-plan${query}`, { signal })).plan;
  },
  /** One page of a snapshot folder, for the restore dialog's path picker. */
  restorePickerEntries: async (id: string, snapshotId: string, path: string, signal?: AbortSignal) =>
    (
      await request<{ entries: FileEntry[]; cursor: string | null }>(
        'GET',
        `${dep(id)}/snapshots/${enc(snapshotId)}/files?${new URLSearchParams({ path, limit: '200' }).toString()}`,
        { signal },
      )
    ).entries,
  cloneSnapshot: async (id: string, snapshotId: string, name: string | null) =>
    (await request<{ deployment: Deployment }>('POST', `${dep(id)}/snapshots/${enc(snapshotId)}/clone`, { body: name ? { name } : {} }))
      .deployment,

  listRestores: async (id: string, signal?: AbortSignal) =>
    (await request<{ restores: Restore[] }>('GET', `${dep(id)}/restores`, { signal })).restores,
  getRestore: async (id: string, restoreId: string, signal?: AbortSignal) =>
    (await request<{ restore: Restore }>('GET', `${dep(id)}/restores/${enc(restoreId)}`, { signal })).restore,

  getSettings: async (id: string, signal?: AbortSignal) =>
    (await request<{ settings: SnapshotSettings }>('GET', `${dep(id)}/snapshot-settings`, { signal })).settings,
  putSettings: async (id: string, change: SettingsChange) =>
    (await request<{ settings: SnapshotSettings }>('PUT', `${dep(id)}/snapshot-settings`, { body: change })).settings,
  previewSettings: async (id: string, change: SettingsChange, signal?: AbortSignal): Promise<RetentionPreview> =>
    await request<RetentionPreview>('POST', `${dep(id)}/snapshot-settings/preview`, { body: change, signal }),

  listWebhooks: async (signal?: AbortSignal) => (await request<{ webhooks: Webhook[] }>('GET', '/webhooks', { signal })).webhooks,
  createWebhook: async (url: string, events: string[]) =>
    await request<{ webhook: Webhook; secret: string }>('POST', '/webhooks', { body: { url, events } }),
  deleteWebhook: async (id: string) => {
    await request<unknown>('DELETE', `/webhooks/${enc(id)}`);
  },
  /** Every node, with its status and capacity (admins, network mode). */
  listNodes: async (signal?: AbortSignal) => (await request<{ nodes: NodeSummary[] }>('GET', '/nodes', { signal })).nodes,

  webhookDeliveries: async (id: string, signal?: AbortSignal) =>
    await request<{ deliveries: WebhookDelivery[]; cursor: string | null }>('GET', `/webhooks/${enc(id)}/deliveries?limit=50`, { signal }),
};

/** errorMessage turns anything thrown into a sentence for the page. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export const isAbort = (err: unknown): boolean => err instanceof DOMException && err.name === 'AbortError';
