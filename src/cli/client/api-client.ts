/**
 * api-client: a typed client of the Kova REST API (docs/api.md) on
 * Node's fetch. Every method resolves to the object the API wraps in its
 * success envelope (typed by the API contract, src/api/contract.ts), or
 * rejects with one of:
 *
 * - ApiError: the server answered with an error body (code, HTTP status);
 * - UnreachableError: no answer (connection refused, unknown host, timeout);
 * - BadResponseError: an answer that is not the Kova API's.
 *
 * All three are KovaErrors whose message is one line, so the CLI prints
 * them as `kova: <message>` unchanged.
 */
import type {
  Deployment,
  FileChange,
  FileEntry,
  Me,
  Recovery,
  Restore,
  RestorePlan,
  SettingsChange,
  Snapshot,
  SnapshotSettings,
  Verification,
  VerificationSummary,
  Webhook,
  WebhookDelivery,
} from '../../api/contract.js';
import { KovaError } from '../../core/errors.js';

/* ---- wire types: the API contract's, shared with the server and the dashboard ---- */

export type {
  ApiKey,
  Deployment,
  DeploymentStatus,
  FileChange,
  FileEntry,
  Me,
  Progress as ApiProgress,
  Restore,
  RestorePlan,
  RestoreStatus,
  Service as DeploymentService,
  ServiceState,
  SettingsChange,
  Snapshot,
  SnapshotSettings,
  SnapshotStatus,
  SnapshotSummary,
  Verification,
  VerificationSummary,
  SnapshotTrigger,
  Volume as DeploymentVolume,
  VolumePair,
  Webhook,
  WebhookDelivery,
} from '../../api/contract.js';

/* ---- errors ---------------------------------------------------------------------- */

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** ApiError: the server answered `{"success": false, "error": {code, message}}`. */
export class ApiError extends KovaError {
  /** Seconds the server asked to wait (429), when given. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: string,
    readonly apiMessage: string,
    retryAfter: number | null = null,
  ) {
    super(code, `${oneLine(apiMessage) || `HTTP ${status}`} (${code})`, { status });
    this.name = 'ApiError';
    this.retryAfter = retryAfter;
  }
}

/** UnreachableError: the server did not answer at all. */
export class UnreachableError extends KovaError {
  constructor(
    readonly url: string,
    reason: string | null,
    cause?: unknown,
  ) {
    super(
      'UNREACHABLE',
      reason === null
        ? `cannot reach the Kova server at ${url} (is "kova serve" running?)`
        : `cannot reach the Kova server at ${url}: ${oneLine(reason)}`,
      { status: 503, cause },
    );
    this.name = 'UnreachableError';
  }
}

/** BadResponseError: something answered, but not as the Kova API does. */
export class BadResponseError extends KovaError {
  constructor(url: string, status: number, what: string) {
    super('BAD_RESPONSE', `unexpected answer from ${url} (HTTP ${status}): ${what}; is this a Kova server?`, { status: 502 });
    this.name = 'BadResponseError';
  }
}

/* ---- client ---------------------------------------------------------------------- */

export interface ClientOptions {
  /** Per-request timeout (default 30 s). */
  readonly timeoutMs?: number;
  /** How many times a rate-limited (429) request is retried after Retry-After (default 2). */
  readonly rateLimitRetries?: number;
  /** The longest Retry-After honoured by waiting, in seconds (default 10); longer ones fail at once. */
  readonly maxRetryAfterSec?: number;
  /** Replaces the global fetch (tests). */
  readonly fetch?: typeof fetch;
}

/** Why a connection failed, by errno code; null: nothing listens there (the hint to start the server). */
const CONNECT_REASONS: Readonly<Record<string, string | null>> = {
  ECONNREFUSED: null,
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'cannot resolve the host name',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  ECONNRESET: 'the connection was reset',
};

function causeCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ABORT_ERR') return code;
    // An AggregateError (several addresses tried) carries its errors in `errors`.
    const errors = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      const inner = causeCode(errors[0]);
      if (inner) return inner;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** query builds a query string from the defined values. */
function query(values: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined) q.set(k, String(v));
  return q.toString();
}

/** seg encodes one id as a path segment; an empty one would name another route. */
function seg(s: string): string {
  if (s.trim() === '') throw new KovaError('INVALID_ID', 'an id must not be empty', { status: 400 });
  return encodeURIComponent(s);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class KovaClient {
  private readonly timeoutMs: number;
  private readonly rateLimitRetries: number;
  private readonly maxRetryAfterSec: number;
  private readonly fetchFn: typeof fetch;

  constructor(
    /** The server's base URL, without a trailing slash (http://127.0.0.1:8080). */
    readonly url: string,
    private readonly token: string,
    opts: ClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.rateLimitRetries = opts.rateLimitRetries ?? 2;
    this.maxRetryAfterSec = opts.maxRetryAfterSec ?? 10;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /* who */

  async me(): Promise<Me> {
    const body = await this.request('GET', '/api/v1/me');
    return { user: this.field(body, 'user', 200) as Me['user'], server: this.field(body, 'server', 200) as Me['server'] };
  }

  /* deployments */

  listDeployments(): Promise<Deployment[]> {
    return this.pick('GET', '/api/v1/deployments', 'deployments');
  }

  getDeployment(id: string): Promise<Deployment> {
    return this.pick('GET', `/api/v1/deployments/${seg(id)}`, 'deployment');
  }

  createDeployment(sdl: string, name?: string): Promise<Deployment> {
    return this.pick('POST', '/api/v1/deployments', 'deployment', { sdl, ...(name === undefined ? {} : { name }) });
  }

  /** updateDeployment re-applies an SDL; `snapshot` takes a before-update snapshot first. */
  updateDeployment(id: string, sdl: string, snapshot: boolean): Promise<Deployment> {
    return this.pick('PUT', `/api/v1/deployments/${seg(id)}`, 'deployment', { sdl, snapshot });
  }

  restartDeployment(id: string): Promise<Deployment> {
    return this.pick('POST', `/api/v1/deployments/${seg(id)}/restart`, 'deployment', {});
  }

  closeDeployment(id: string): Promise<Deployment> {
    return this.pick('POST', `/api/v1/deployments/${seg(id)}/close`, 'deployment', {});
  }

  /**
   * recoverDeployment runs a deployment whose node is offline or gone on
   * another node, from `snapshotId`'s off-node copy (default: the newest
   * copied snapshot). Network mode only.
   */
  async recoverDeployment(id: string, snapshotId?: string): Promise<{ deployment: Deployment; recovery: Recovery }> {
    const body = snapshotId === undefined ? {} : { snapshotId };
    const res = await this.request<Record<string, unknown>>('POST', `/api/v1/deployments/${seg(id)}/recover`, body);
    return { deployment: this.field(res, 'deployment', 202) as Deployment, recovery: this.field(res, 'recovery', 202) as Recovery };
  }

  /* snapshots */

  listSnapshots(deploymentId: string): Promise<Snapshot[]> {
    return this.pick('GET', `/api/v1/deployments/${seg(deploymentId)}/snapshots`, 'snapshots');
  }

  createSnapshot(deploymentId: string, label?: string): Promise<Snapshot> {
    return this.pick('POST', `/api/v1/deployments/${seg(deploymentId)}/snapshots`, 'snapshot', label === undefined ? {} : { label });
  }

  /** verificationSummary is where the checks of a deployment's stored data stand (the settings' verification). */
  async verificationSummary(deploymentId: string): Promise<VerificationSummary> {
    return (await this.getSettings(deploymentId)).verification;
  }

  requestVerification(deploymentId: string, full: boolean): Promise<Verification> {
    return this.pick('POST', `/api/v1/deployments/${seg(deploymentId)}/verifications`, 'verification', full ? { full: true } : {});
  }

  async listVerifications(
    deploymentId: string,
    page: { cursor?: string | null; limit?: number } = {},
  ): Promise<{ verifications: Verification[]; cursor: string | null }> {
    const q = query({ cursor: page.cursor ?? undefined, limit: page.limit });
    const body = await this.request('GET', `/api/v1/deployments/${seg(deploymentId)}/verifications${q ? `?${q}` : ''}`);
    return {
      verifications: this.field(body, 'verifications', 200) as Verification[],
      cursor: (body.cursor as string | null | undefined) ?? null,
    };
  }

  getSnapshot(deploymentId: string, snapshotId: string): Promise<Snapshot> {
    return this.pick('GET', `/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}`, 'snapshot');
  }

  async deleteSnapshot(deploymentId: string, snapshotId: string): Promise<void> {
    await this.request('DELETE', `/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}`);
  }

  /** restoreSnapshot restores everything, or only `selection.paths` (in place, or alongside under `into`). */
  restoreSnapshot(
    deploymentId: string,
    snapshotId: string,
    safetySnapshot: boolean,
    selection?: { paths: string[]; mode: 'replace' | 'alongside'; into?: string },
  ): Promise<Restore> {
    return this.pick('POST', `/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}/restore`, 'restore', {
      safetySnapshot,
      ...selection,
    });
  }

  restorePlan(
    deploymentId: string,
    snapshotId: string,
    selection?: { paths: string[]; mode: 'replace' | 'alongside'; into?: string },
  ): Promise<RestorePlan> {
    const q = new URLSearchParams();
    for (const p of selection?.paths ?? []) q.append('paths', p);
    if (selection) q.set('mode', selection.mode);
    if (selection?.into !== undefined) q.set('into', selection.into);
    const query = selection ? `?${q.toString()}` : '';
    return this.pick('GET', `/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}/restore-plan${query}`, 'plan');
  }

  getRestore(deploymentId: string, restoreId: string): Promise<Restore> {
    return this.pick('GET', `/api/v1/deployments/${seg(deploymentId)}/restores/${seg(restoreId)}`, 'restore');
  }

  listRestores(deploymentId: string): Promise<Restore[]> {
    return this.pick('GET', `/api/v1/deployments/${seg(deploymentId)}/restores`, 'restores');
  }

  /** cloneSnapshot creates a new deployment whose volumes start from the snapshot. */
  cloneSnapshot(deploymentId: string, snapshotId: string, name?: string): Promise<Deployment> {
    return this.pick(
      'POST',
      `/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}/clone`,
      'deployment',
      name === undefined ? {} : { name },
    );
  }

  /* automatic snapshot settings */

  getSettings(deploymentId: string): Promise<SnapshotSettings> {
    return this.pick('GET', `/api/v1/deployments/${seg(deploymentId)}/snapshot-settings`, 'settings');
  }

  updateSettings(deploymentId: string, change: SettingsChange): Promise<SnapshotSettings> {
    return this.pick('PUT', `/api/v1/deployments/${seg(deploymentId)}/snapshot-settings`, 'settings', change);
  }

  /* browsing snapshots */

  /** listFiles returns one page of a snapshot directory (path "service/volume/..."; "" the root). */
  async listFiles(
    deploymentId: string,
    snapshotId: string,
    path: string,
    page: { cursor?: string | null; limit?: number } = {},
  ): Promise<{ entries: FileEntry[]; cursor: string | null }> {
    const q = query({ path, cursor: page.cursor ?? undefined, limit: page.limit });
    const body = await this.request('GET', `/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}/files?${q}`);
    return { entries: this.field(body, 'entries', 200) as FileEntry[], cursor: (body.cursor as string | null | undefined) ?? null };
  }

  /** diff returns one page of the changes from snapshot `against` to `snapshotId`. */
  async diff(
    deploymentId: string,
    snapshotId: string,
    against: string,
    page: { cursor?: string | null; limit?: number } = {},
  ): Promise<{ changes: FileChange[]; cursor: string | null }> {
    const q = query({ against, cursor: page.cursor ?? undefined, limit: page.limit });
    const body = await this.request('GET', `/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}/diff?${q}`);
    return { changes: this.field(body, 'changes', 200) as FileChange[], cursor: (body.cursor as string | null | undefined) ?? null };
  }

  /** downloadFile opens one file of a snapshot as a stream (the answer's body). */
  downloadFile(deploymentId: string, snapshotId: string, path: string): Promise<Response> {
    return this.stream(`/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}/files/content?${query({ path })}`);
  }

  /** downloadArchive opens a directory of a snapshot as a tar (or tar.zst) stream. */
  downloadArchive(deploymentId: string, snapshotId: string, path: string, format: 'tar' | 'tar.zst'): Promise<Response> {
    return this.stream(`/api/v1/deployments/${seg(deploymentId)}/snapshots/${seg(snapshotId)}/archive?${query({ path, format })}`);
  }

  /* webhooks */

  listWebhooks(): Promise<Webhook[]> {
    return this.pick('GET', '/api/v1/webhooks', 'webhooks');
  }

  /** createWebhook adds a webhook; the answer's secret is shown only this once. */
  async createWebhook(url: string, events: readonly string[], secret?: string): Promise<{ webhook: Webhook; secret: string }> {
    const body = await this.request('POST', '/api/v1/webhooks', { url, events, ...(secret === undefined ? {} : { secret }) });
    return { webhook: this.field(body, 'webhook', 201) as Webhook, secret: this.field(body, 'secret', 201) as string };
  }

  async deleteWebhook(id: string): Promise<void> {
    await this.request('DELETE', `/api/v1/webhooks/${seg(id)}`);
  }

  /** webhookDeliveries returns one page of a webhook's delivery log, newest first. */
  async webhookDeliveries(
    id: string,
    page: { cursor?: string | null; limit?: number } = {},
  ): Promise<{ deliveries: WebhookDelivery[]; cursor: string | null }> {
    const q = query({ cursor: page.cursor ?? undefined, limit: page.limit });
    const body = await this.request('GET', `/api/v1/webhooks/${seg(id)}/deliveries${q ? `?${q}` : ''}`);
    return {
      deliveries: this.field(body, 'deliveries', 200) as WebhookDelivery[],
      cursor: (body.cursor as string | null | undefined) ?? null,
    };
  }

  /* ---- transport ----------------------------------------------------------------- */

  private async pick<T>(method: string, path: string, key: string, body?: unknown): Promise<T> {
    const res = await this.request<Record<string, unknown>>(method, path, body);
    return this.field(res, key, 200) as T;
  }

  private field(body: object, key: string, status: number): unknown {
    const v = (body as Record<string, unknown>)[key];
    if (v === undefined || v === null) throw new BadResponseError(this.url, status, `no "${key}" in the response`);
    return v;
  }

  /**
   * request sends one API request and returns the parsed success body.
   * Rate-limited requests are retried after Retry-After (a 429 is answered
   * before the request is handled, so retrying never repeats an action).
   */
  async request<T extends object = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(method, path, body);
      } catch (err) {
        if (
          err instanceof ApiError &&
          err.status === 429 &&
          attempt < this.rateLimitRetries &&
          err.retryAfter !== null &&
          err.retryAfter <= this.maxRetryAfterSec
        ) {
          await sleep(Math.max(0.1, err.retryAfter) * 1000);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * stream sends a GET whose success answer is a byte stream and returns it
   * unread; the timeout covers the answer's headers only, not the body.
   * An error answer rejects like request() does.
   */
  async stream(path: string): Promise<Response> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException('timeout', 'TimeoutError')), this.timeoutMs);
    let res: Response;
    try {
      res = await this.fetchFn(`${this.url}${path}`, {
        headers: { authorization: `Bearer ${this.token}` },
        signal: abort.signal,
        redirect: 'error',
      });
    } catch (err) {
      throw this.unreachable(err);
    } finally {
      clearTimeout(timer);
    }
    if (res.ok && res.body) return res;
    await this.answer(res);
    throw new BadResponseError(this.url, res.status, 'no body');
  }

  private unreachable(err: unknown): UnreachableError {
    const e = err as Error;
    if (e.name === 'TimeoutError') return new UnreachableError(this.url, `no answer within ${Math.round(this.timeoutMs / 1000)} s`, err);
    const code = causeCode(err);
    if (code && code in CONNECT_REASONS) return new UnreachableError(this.url, CONNECT_REASONS[code] ?? null, err);
    return new UnreachableError(this.url, code ?? (e.cause instanceof Error ? e.cause.message : e.message), err);
  }

  private async once<T>(method: string, path: string, body: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchFn(`${this.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    return this.answer<T>(res);
  }

  /** answer reads a JSON answer: the success body, or the error it carries thrown. */
  private async answer<T>(res: Response): Promise<T> {
    const text = await res.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      throw new BadResponseError(this.url, res.status, 'the body is not JSON');
    }
    const env =
      parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { success?: unknown; error?: unknown }) : null;
    if (res.ok && env && env.success === true) return env as T;
    if (env && env.success === false && env.error && typeof env.error === 'object') {
      const { code, message } = env.error as { code?: unknown; message?: unknown };
      const retry = Number(res.headers.get('retry-after'));
      throw new ApiError(
        res.status,
        typeof code === 'string' && code !== '' ? code : `HTTP_${res.status}`,
        typeof message === 'string' ? message : '',
        Number.isFinite(retry) && retry >= 0 && res.headers.has('retry-after') ? retry : null,
      );
    }
    throw new BadResponseError(this.url, res.status, 'the body is not a Kova API response');
  }
}
