/**
 * control-client: the node's HTTP(S) connection to the control plane.
 *
 * The node was given one or more replica URLs. A request goes to the
 * current replica; a connection error, a timeout or a 5xx answer moves on
 * to the next URL (coming back around to the first), and once every URL
 * failed in a row the client waits (exponential backoff with full jitter,
 * capped at `maxBackoffMs`) before going round again. It keeps trying until
 * a replica answers or the client is closed: callers see only real answers.
 *
 * An answer saying the token is wrong (401, 403, or an error code naming an
 * unknown node) is fatal: request() throws NodeRejectedError, and so does
 * every later request, so every loop of the node stops.
 *
 * Requests from different loops (operations, heartbeats, state) run
 * concurrently and share the current replica.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { KovaError } from '../core/errors.js';
import { type Capacity, type DeploymentState, type HelloRequest, NODE_PATHS, type OperationResult } from '../network/protocol.js';
import type { Answer, ControlTransport } from './transport.js';

/** The control plane refused the node's token (or does not know the node). */
export class NodeRejectedError extends KovaError {
  constructor(url: string, status: number, detail: string) {
    super(
      'NODE_REJECTED',
      `the control plane at ${url} refused this node (HTTP ${status}${detail ? `: ${detail}` : ''}); check --token / KOVA_NODE_TOKEN`,
      { status: 401, details: { url, status } },
    );
  }
}

/** The client was closed while a request was waiting for a replica. */
export class ClientClosedError extends KovaError {
  constructor() {
    super('CLIENT_CLOSED', 'the connection to the control plane was closed', { status: 503 });
  }
}

/** Error codes in an answer that mean the control plane does not know this node: fatal, like a 401. */
const UNKNOWN_NODE_CODES = new Set(['UNAUTHORIZED', 'NODE_UNKNOWN', 'UNKNOWN_NODE', 'NODE_NOT_FOUND', 'NODE_REMOVED', 'INVALID_TOKEN']);

export interface ControlClientOptions {
  readonly urls: readonly string[];
  readonly token: string;
  /** PEM certificate(s) to trust for https URLs (a self-signed control plane). */
  readonly ca?: string | Buffer | null;
  /** Per-request timeout unless the request gives its own. Default 30 s. */
  readonly timeoutMs?: number;
  /** First backoff once every URL failed. Default 100 ms. */
  readonly minBackoffMs?: number;
  /** Longest backoff. Default 5 s. */
  readonly maxBackoffMs?: number;
  /** Called once per failed attempt (for the log). */
  readonly onFailure?: (url: string, reason: string) => void;
  /** Default Math.random (tests pin it). */
  readonly random?: () => number;
}

export type { Answer } from './transport.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MIN_BACKOFF_MS = 100;
export const DEFAULT_MAX_BACKOFF_MS = 5_000;

/** parseJson reads an answer's body: null when empty or not JSON. */
function parseJson(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** readCa reads a --ca file. */
export function readCa(file: string): Buffer {
  return fs.readFileSync(file);
}

export class ControlClient implements ControlTransport {
  private current = 0;
  private closed = false;
  private rejected: NodeRejectedError | null = null;
  private readonly controller = new AbortController();
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent: https.Agent;
  private readonly urls: readonly URL[];

  constructor(private readonly opts: ControlClientOptions) {
    if (opts.urls.length === 0) throw new KovaError('INVALID_CONFIG', 'no control-plane URL given', { status: 400 });
    this.urls = opts.urls.map((u) => new URL(u));
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) });
  }

  /** The URL requests go to now. */
  get currentUrl(): string {
    return this.urls[this.current]!.origin;
  }

  hello(req: HelloRequest): Promise<Answer> {
    return this.request('POST', NODE_PATHS.hello, req);
  }

  heartbeat(capacity: Capacity): Promise<Answer> {
    return this.request('POST', NODE_PATHS.heartbeat, { capacity });
  }

  /** The long poll; its request timeout leaves the replica 10 s beyond the wait. */
  operations(waitMs: number): Promise<Answer> {
    return this.request('GET', `${NODE_PATHS.operations}?waitMs=${waitMs}`, undefined, { timeoutMs: waitMs + 10_000 });
  }

  result(opId: string, result: OperationResult): Promise<Answer> {
    return this.request('POST', NODE_PATHS.result(opId), result);
  }

  state(docs: readonly DeploymentState[]): Promise<Answer> {
    return this.request('POST', NODE_PATHS.state, { deployments: docs });
  }

  /**
   * request sends one request, failing over and backing off until a replica
   * answers (any status below 500). Throws NodeRejectedError on a refused
   * token, ClientClosedError once closed.
   */
  async request(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<Answer> {
    let failures = 0;
    let backoff = this.opts.minBackoffMs ?? DEFAULT_MIN_BACKOFF_MS;
    for (;;) {
      if (this.rejected) throw this.rejected;
      if (this.closed) throw new ClientClosedError();
      const index = this.current;
      const base = this.urls[index]!;
      try {
        const answer = await this.send(base, method, path, body, opts.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
        if (answer.status < 500) {
          this.checkAccepted(answer);
          return answer;
        }
        this.opts.onFailure?.(base.origin, `HTTP ${answer.status}`);
      } catch (err) {
        if (err instanceof NodeRejectedError) throw err;
        if (this.closed) throw new ClientClosedError();
        this.opts.onFailure?.(base.origin, err instanceof Error ? err.message : String(err));
      }
      // Move on, unless another request already did.
      if (this.current === index) this.current = (index + 1) % this.urls.length;
      failures++;
      if (failures % this.urls.length === 0) {
        const max = this.opts.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
        await this.sleep(Math.floor((this.opts.random ?? Math.random)() * backoff));
        backoff = Math.min(max, backoff * 2);
      }
    }
  }

  /** close makes every pending and later request fail with ClientClosedError. */
  close(): void {
    this.closed = true;
    this.controller.abort();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private checkAccepted(a: Answer): void {
    const error = (a.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof error?.code === 'string' ? error.code : '';
    if (a.status === 401 || a.status === 403 || UNKNOWN_NODE_CODES.has(code)) {
      this.rejected = new NodeRejectedError(a.url, a.status, typeof error?.message === 'string' ? error.message : code);
      throw this.rejected;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.controller.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.controller.signal.addEventListener('abort', done, { once: true });
    });
  }

  private send(base: URL, method: string, path: string, body: unknown, timeoutMs: number): Promise<Answer> {
    const url = new URL(path, base);
    const secure = url.protocol === 'https:';
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<Answer>((resolve, reject) => {
      const req = (secure ? https : http).request(
        url,
        {
          method,
          agent: secure ? this.httpsAgent : this.httpAgent,
          signal: this.controller.signal,
          timeout: timeoutMs,
          headers: {
            authorization: `Bearer ${this.opts.token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: parseJson(text), url: base.origin });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
