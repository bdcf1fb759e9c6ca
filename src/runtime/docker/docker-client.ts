/**
 * docker-client: a minimal Docker Engine API client over the daemon's unix
 * socket, on node:http (no dependency).
 *
 * Requests carry JSON (or raw bytes) and return the status and the body;
 * a status of 400 or more becomes a DockerApiError (a RuntimeError carrying
 * the HTTP status and the daemon's own `message`). Transport failures
 * (socket missing, refused, timeout) become a RuntimeError naming the socket.
 * Streaming endpoints (exec output, pull progress) pass each chunk to
 * `onData` instead of buffering the body. Each request uses its own
 * connection (no keep-alive): connecting to a local socket is cheap, and no
 * pooled connection can go stale under a restarted daemon. A few typed calls
 * (ping, containers, images) sit on top.
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { isErrno } from '../../core/errors.js';
import { RuntimeError } from '../types.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
export const DEFAULT_API_VERSION = 'v1.41';
const DEFAULT_TIMEOUT_MS = 30_000;

/** The daemon answered with an error status. */
export class DockerApiError extends RuntimeError {
  readonly statusCode: number;

  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'DockerApiError';
    this.statusCode = statusCode;
  }
}

/** True when `err` is a DockerApiError with one of the given statuses. */
export function isApiStatus(err: unknown, ...statuses: number[]): err is DockerApiError {
  return err instanceof DockerApiError && statuses.includes(err.statusCode);
}

/** A catch handler: an API error with `status` yields `value`, anything else is rethrown. */
export function ignoreStatus<T = undefined>(status: number, value?: T): (err: unknown) => T {
  return (err) => {
    if (isApiStatus(err, status)) return value as T;
    throw err;
  };
}

/** Compares 'v1.41' / '1.41' style API versions numerically. */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split('.').map(Number);
  const pb = b.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * resolveSocketPath accepts a socket path or a DOCKER_HOST-style
 * `unix:///path` URL. Other schemes (tcp://, ssh://) are not supported.
 */
export function resolveSocketPath(hostOrPath: string | undefined): string {
  if (hostOrPath === undefined || hostOrPath === '') return DEFAULT_DOCKER_SOCKET;
  if (hostOrPath.startsWith('unix://')) {
    const p = hostOrPath.slice('unix://'.length);
    if (p.startsWith('/')) return p;
  } else if (hostOrPath.startsWith('/')) {
    return hostOrPath;
  }
  throw new RuntimeError(`unsupported Docker host "${hostOrPath}": only a unix socket path or unix:///path is supported`);
}

export type QueryValue = string | number | boolean | readonly string[] | undefined;

export interface RequestOptions {
  readonly query?: Readonly<Record<string, QueryValue>>;
  /** A Buffer is sent as is (with `contentType`); anything else as JSON. */
  readonly body?: unknown;
  readonly contentType?: string;
  /** Deadline for the whole exchange, body included. */
  readonly timeoutMs?: number;
  /** Receives the body chunk by chunk; the returned body is then empty. */
  readonly onData?: (chunk: Buffer) => void;
}

export interface DockerResponse {
  readonly statusCode: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface ContainerSummary {
  Id: string;
  Labels?: Record<string, string> | null;
}

/** The part of a container's inspect State the runtime uses. */
export interface ContainerState {
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  ExitCode: number;
  StartedAt: string;
  FinishedAt: string;
}

export interface DockerClientOptions {
  /** Socket path or unix:///path (default /var/run/docker.sock). */
  readonly socketPath?: string;
  /** API version prefix, e.g. 'v1.41' (default). */
  readonly apiVersion?: string;
  /** Default deadline of a request (default 30 s). */
  readonly timeoutMs?: number;
}

export class DockerClient {
  readonly socketPath: string;
  readonly apiVersion: string;
  private readonly timeoutMs: number;
  private readonly agent = new http.Agent({ keepAlive: false });

  constructor(opts: DockerClientOptions = {}) {
    this.socketPath = resolveSocketPath(opts.socketPath);
    const v = opts.apiVersion ?? DEFAULT_API_VERSION;
    this.apiVersion = v.startsWith('v') ? v : `v${v}`;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** request sends one versioned API call; statuses of 400 or more throw DockerApiError. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<DockerResponse> {
    const res = await this.raw(method, `/${this.apiVersion}${path}`, opts);
    if (res.statusCode >= 400) throw new DockerApiError(res.statusCode, errorMessage(res));
    return res;
  }

  /** json sends one call and parses the answer (undefined when the body is empty). */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T | undefined> {
    const res = await this.request(method, path, opts);
    if (res.body.length === 0) return undefined;
    try {
      return JSON.parse(res.body.toString('utf8')) as T;
    } catch {
      throw new RuntimeError(`Docker API ${method} ${path}: the daemon answered with invalid JSON`);
    }
  }

  /** ping returns the daemon's API version ('' when it does not say); throws when it does not answer. */
  async ping(): Promise<string> {
    const res = await this.raw('GET', '/_ping');
    if (res.statusCode !== 200) throw new DockerApiError(res.statusCode, errorMessage(res));
    const v = res.headers['api-version'];
    return typeof v === 'string' ? v : '';
  }

  /** listContainers lists all containers (running or not) carrying every given label (`key=value`). */
  async listContainers(labels: readonly string[]): Promise<ContainerSummary[]> {
    const query = { all: true, filters: JSON.stringify({ label: labels }) };
    return (await this.json<ContainerSummary[]>('GET', '/containers/json', { query })) ?? [];
  }

  async containerState(id: string): Promise<ContainerState> {
    const info = await this.json<{ State?: ContainerState }>('GET', `/containers/${id}/json`);
    if (!info?.State) throw new RuntimeError(`the daemon returned no state for container ${id.slice(0, 12)}`);
    return info.State;
  }

  /** removeContainer force-removes a container, keeping volumes; gone already is success. */
  async removeContainer(id: string): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await this.request('DELETE', `/containers/${id}`, { query: { force: true, v: false } });
        return;
      } catch (err) {
        if (isApiStatus(err, 404)) return;
        // 409 "removal already in progress": wait for the other removal to finish.
        if (!isApiStatus(err, 409) || i >= 50) throw err;
        await sleep(100);
      }
    }
  }

  /** imageExists tells whether the image is present locally. */
  async imageExists(ref: string): Promise<boolean> {
    const path = `/images/${ref.split('/').map(encodeURIComponent).join('/')}/json`;
    return this.request('GET', path).then(() => true, ignoreStatus(404, false));
  }

  /** pullImage pulls from the image's registry; resolves to the daemon's error, or null on success. */
  async pullImage(ref: string, timeoutMs: number): Promise<string | null> {
    const res = await this.request('POST', '/images/create', { query: splitImageRef(ref), timeoutMs });
    return streamError(res.body);
  }

  /** close aborts the requests in flight; the client is not to be used afterwards. */
  close(): void {
    this.agent.destroy();
  }

  /** raw sends a request to an unversioned path and returns any status. */
  raw(method: string, path: string, opts: RequestOptions = {}): Promise<DockerResponse> {
    const url = path + queryString(opts.query);
    let payload: Buffer | undefined;
    const headers: Record<string, string | number> = { Host: 'docker' };
    if (opts.body !== undefined) {
      payload = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(JSON.stringify(opts.body), 'utf8');
      headers['Content-Type'] = Buffer.isBuffer(opts.body) ? (opts.contentType ?? 'application/octet-stream') : 'application/json';
      headers['Content-Length'] = payload.length;
    }
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const what = `Docker API ${method} ${path}`;

    return new Promise<DockerResponse>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null, res?: DockerResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else if (res) resolve(res);
      };
      const req = http.request({ socketPath: this.socketPath, path: url, method, headers, agent: this.agent });
      const timer = setTimeout(() => {
        finish(new RuntimeError(`${what} timed out after ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);

      req.on('error', (err) => finish(transportError(err, this.socketPath, what)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        const failed = res.statusCode === undefined || res.statusCode >= 400;
        res.on('data', (chunk: Buffer) => {
          if (opts.onData && !failed) opts.onData(chunk);
          else chunks.push(chunk);
        });
        res.on('error', (err) => finish(transportError(err, this.socketPath, what)));
        const done = (): void => finish(null, { statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        res.on('end', done);
        // A hijacked stream (exec output) ends when the daemon closes the connection: complete then.
        res.on('close', () => {
          if (res.complete) done();
          else finish(new RuntimeError(`${what}: the daemon closed the connection early`));
        });
      });
      req.end(payload);
    });
  }
}

function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value as readonly string[]) params.append(key, v);
    else params.append(key, String(value));
  }
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}

/** The daemon's `message` (JSON error body), else its text, else the status; container ids shortened. */
function errorMessage(res: DockerResponse): string {
  return fullErrorMessage(res).replace(/\b([0-9a-f]{12})[0-9a-f]{52}\b/g, '$1');
}

function fullErrorMessage(res: DockerResponse): string {
  const text = res.body.toString('utf8').trim();
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === 'string' && parsed.message !== '') return parsed.message;
    } catch {
      // not JSON after all: use the text
    }
  }
  if (text !== '') return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  return `Docker daemon answered HTTP ${res.statusCode}`;
}

function transportError(err: Error, socketPath: string, what: string): RuntimeError {
  if (isErrno(err, 'ENOENT')) return new RuntimeError(`Docker daemon socket ${socketPath} does not exist (is dockerd running?)`, err);
  if (isErrno(err, 'ECONNREFUSED')) return new RuntimeError(`Docker daemon is not accepting connections on ${socketPath}`, err);
  if (isErrno(err, 'EACCES', 'EPERM')) return new RuntimeError(`permission denied on the Docker socket ${socketPath}`, err);
  if (isErrno(err, 'ECONNRESET')) return new RuntimeError(`${what}: the Docker daemon closed the connection`, err);
  return new RuntimeError(`${what} failed: ${err.message}`, err);
}

/** Splits an image reference into the `fromImage` and `tag` a pull needs. */
function splitImageRef(ref: string): { fromImage: string; tag: string | undefined } {
  if (ref.includes('@')) return { fromImage: ref, tag: undefined };
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { fromImage: ref, tag: 'latest' };
}

/**
 * streamError scans the JSON-lines body of a streaming call (pull, import)
 * for an error the daemon reported after answering 200.
 */
export function streamError(body: Buffer): string | null {
  let found: string | null = null;
  for (const line of body.toString('utf8').split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    try {
      const msg = JSON.parse(t) as { error?: unknown; errorDetail?: { message?: unknown } };
      if (typeof msg.errorDetail?.message === 'string') found = msg.errorDetail.message;
      else if (typeof msg.error === 'string') found = msg.error;
    } catch {
      // a partial or non-JSON line: ignore
    }
  }
  return found;
}
