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
 * A certificate the node does not trust (self-signed without --ca, a name
 * that does not match the URL, expired) is fatal too as long as no replica
 * has answered yet: it is a mistake in the node's settings, and retrying
 * would hide it. request() throws UntrustedCertificateError (and so does
 * every later request). Once a replica has answered, the same error is
 * logged and retried like a refused connection: a certificate replaced
 * badly on the control plane must not stop a running node's snapshots.
 *
 * Requests from different loops (operations, heartbeats, state) run
 * concurrently and share the current replica.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { type Readable, pipeline } from 'node:stream';
import { KovaError } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import {
  type Capacity,
  type DeploymentState,
  type HelloRequest,
  NODE_PATHS,
  type NodeEvent,
  type OperationResult,
  READS_QUERY,
} from '../network/protocol.js';
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

/** Errors of the TLS handshake that mean the control plane's certificate is not trusted. */
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The control plane's TLS certificate is not trusted by this node (before any replica answered). */
export class UntrustedCertificateError extends KovaError {
  constructor(url: string, tlsCode: string, reason: string, opts: { caGiven: boolean; cause?: unknown }) {
    const hint =
      tlsCode === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? 'use a control-plane URL with a host name or IP address the certificate names'
        : tlsCode === 'CERT_HAS_EXPIRED' || tlsCode === 'CERT_NOT_YET_VALID'
          ? "renew the control plane's certificate"
          : opts.caGiven
            ? 'the file given with --ca (KOVA_CONTROL_PLANE_CA) is not the certificate or CA that signed it'
            : 'give the certificate, or the private CA that signed it, with --ca FILE (KOVA_CONTROL_PLANE_CA)';
    super('UNTRUSTED_CERTIFICATE', `the control plane at ${url} presented a certificate this node does not trust (${reason}); ${hint}`, {
      status: 502,
      details: { url, tlsCode },
      cause: opts.cause,
    });
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
  private rejected: NodeRejectedError | UntrustedCertificateError | null = null;
  /** Set once any replica answered: from then on, certificate errors are retried. */
  private answered = false;
  private readonly controller = new AbortController();
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent: https.Agent;
  private readonly uploadHttpAgent = new http.Agent({ keepAlive: false });
  private readonly uploadHttpsAgent: https.Agent;
  private readonly urls: readonly URL[];

  constructor(private readonly opts: ControlClientOptions) {
    if (opts.urls.length === 0) throw new KovaError('INVALID_CONFIG', 'no control-plane URL given', { status: 400 });
    this.urls = opts.urls.map((u) => new URL(u));
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) });
    this.uploadHttpsAgent = new https.Agent({ keepAlive: false, ...(opts.ca ? { ca: opts.ca } : {}) });
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
    // This node answers snapshot reads (relay.ts): it says so, and gets them with its operations.
    return this.request('GET', `${NODE_PATHS.operations}?waitMs=${waitMs}&${READS_QUERY}`, undefined, { timeoutMs: waitMs + 10_000 });
  }

  result(opId: string, result: OperationResult): Promise<Answer> {
    return this.request('POST', NODE_PATHS.result(opId), result);
  }

  state(docs: readonly DeploymentState[]): Promise<Answer> {
    return this.request('POST', NODE_PATHS.state, { deployments: docs });
  }

  events(events: readonly NodeEvent[]): Promise<Answer> {
    return this.request('POST', NODE_PATHS.events, { events });
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
        this.answered = true;
        if (answer.status < 500) {
          this.checkAccepted(answer);
          return answer;
        }
        this.opts.onFailure?.(base.origin, `HTTP ${answer.status}`);
      } catch (err) {
        if (err instanceof NodeRejectedError) throw err;
        if (this.closed) throw new ClientClosedError();
        const tlsCode = (err as NodeJS.ErrnoException).code;
        if (!this.answered && tlsCode && UNTRUSTED_CERTIFICATE_CODES.has(tlsCode)) {
          this.rejected ??= new UntrustedCertificateError(base.origin, tlsCode, (err as Error).message, {
            caGiven: Boolean(this.opts.ca),
            cause: err,
          });
          throw this.rejected;
        }
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

  /**
   * upload sends `body` as a stream to the current replica, once: a
   * stream cannot be sent again, so there is no failover (the caller's
   * read is simply lost, and its user's request answers 503). Destroying
   * `body` aborts the upload; the upload ending early destroys `body`.
   */
  upload(path: string, headers: Readonly<Record<string, string>>, body: Readable, opts: { timeoutMs?: number } = {}): Promise<Answer> {
    if (this.rejected) return Promise.reject(this.rejected);
    if (this.closed) return Promise.reject(new ClientClosedError());
    const base = this.urls[this.current]!;
    const url = new URL(path, base);
    const secure = url.protocol === 'https:';
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise<Answer>((resolve, reject) => {
      const req = (secure ? https : http).request(
        url,
        {
          method: 'POST',
          // A connection of its own: one answered before its body was all sent must not be reused.
          agent: secure ? this.uploadHttpsAgent : this.uploadHttpAgent,
          signal: this.controller.signal,
          timeout: timeoutMs,
          headers: {
            ...headers,
            authorization: `Bearer ${this.opts.token}`,
            accept: 'application/json',
            'content-type': 'application/octet-stream',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            // Answered before the whole body was taken (the read was cancelled): stop producing and sending it.
            if (!body.readableEnded) {
              body.destroy();
              req.destroy();
            }
            resolve({ status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks).toString('utf8')), url: base.origin });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no progress within ${timeoutMs} ms`)));
      req.on('error', (err) => {
        body.destroy();
        reject(err);
      });
      pipeline(body, req, (err) => {
        if (err) req.destroy(err);
      });
    });
  }

  /** close makes every pending and later request fail with ClientClosedError. */
  close(): void {
    this.closed = true;
    this.controller.abort();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.uploadHttpAgent.destroy();
    this.uploadHttpsAgent.destroy();
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
    return sleep(ms, this.controller.signal);
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
