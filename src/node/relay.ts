/**
 * relay: the node's side of a relayed snapshot read (src/control/relay.ts).
 * The long poll hands the node reads next to its operations; each runs at
 * once, on its own, with the node's BrowseService (the same checks as on
 * the all-in-one: the deployment must be the user's, the snapshot ready),
 * or for a page of a deployment's checks its VerificationService, and its
 * answer is uploaded to the control plane, body streamed:
 *
 *   list, stat, diff   the JSON answer;
 *   verifications      `{ verifications }`, the checks' rows;
 *   content, archive   the bytes, as they are read from the repository
 *                      (the upload's backpressure paces the reading);
 *   any error          its status and its WireError as JSON.
 *
 * A read is answered once and never retried: if the upload fails (the
 * replica went away, or the user did: 410 READ_CANCELLED), the reader is
 * closed and the read dropped; the user's request answers on its own.
 */
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { BrowseApi, VerificationsApi } from '../api/deps.js';
import { KovaError, ValidationError } from '../core/errors.js';
import { NODE_PATHS, READ_HEADERS, type ReadRequest, type WireError } from '../network/protocol.js';
import type { ChangeView } from '../services/browse-service.js';
import type { ControlTransport } from './transport.js';

/** How long an upload may make no progress (a user reading slowly holds it) before it is given up. */
export const UPLOAD_IDLE_MS = 120_000;

interface Answer {
  readonly status: number;
  readonly meta?: Readonly<Record<string, unknown>>;
  readonly body: Readable;
  /** Runs once the body was sent or abandoned (closes the snapshot). */
  readonly done?: () => Promise<void>;
}

const jsonAnswer = (status: number, value: unknown): Answer => ({ status, body: Readable.from([Buffer.from(JSON.stringify(value))]) });

/** wireError is how the API would answer `err`: its code, message and status; anything else is a 500 whose details stay here. */
export function wireError(err: unknown): WireError {
  if (err instanceof KovaError) return { code: err.code, message: err.message, status: err.status };
  return { code: 'INTERNAL_ERROR', message: 'the node failed to read the snapshot', status: 500 };
}

function decodePath(path: unknown): Buffer[] {
  if (!Array.isArray(path) || !path.every((p) => typeof p === 'string')) throw new ValidationError('INVALID_PATH', 'malformed path');
  return path.map((p: string) => Buffer.from(p, 'base64'));
}

export class ReadRunner {
  /** Reads being answered, so stop() can wait for them. */
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly browse: BrowseApi,
    private readonly client: Required<Pick<ControlTransport, 'upload'>>,
    private readonly log: Logger,
    /** Answers `verifications` reads; null: they are refused (UNKNOWN_READ). */
    private readonly verifications: Pick<VerificationsApi, 'list'> | null = null,
  ) {}

  /** accept starts every read handed out (they run side by side, apart from operations). */
  accept(reads: readonly ReadRequest[]): void {
    for (const r of reads) {
      const p = this.run(r).catch((err: unknown) => this.log.warn({ err, read: r.id }, 'could not answer a read'));
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
  }

  private async run(r: ReadRequest): Promise<void> {
    let a: Answer;
    try {
      a = await this.answer(r);
    } catch (err) {
      if (!(err instanceof KovaError) || err.status >= 500) this.log.error({ err, read: r.id, kind: r.payload.kind }, 'a read failed');
      const e = wireError(err);
      a = jsonAnswer(e.status, e);
    }
    try {
      const headers: Record<string, string> = { [READ_HEADERS.status]: String(a.status) };
      if (a.meta) headers[READ_HEADERS.meta] = Buffer.from(JSON.stringify(a.meta)).toString('base64url');
      const res = await this.client.upload(NODE_PATHS.readResponse(r.id), headers, a.body, { timeoutMs: UPLOAD_IDLE_MS });
      if (res.status >= 300)
        this.log.info({ read: r.id, status: res.status, body: res.body }, 'the control plane did not take a read answer');
    } finally {
      await a.done?.();
    }
  }

  /** answer runs the read on the local BrowseService. */
  private async answer(r: ReadRequest): Promise<Answer> {
    const { userId, deploymentId: dep, snapshotId: snap, payload: p } = r;
    switch (p.kind) {
      case 'list': {
        const path = decodePath(p.path);
        const page = await this.browse.read(userId, dep, snap, (x) => x.list(path, { cursor: p.cursor, limit: p.limit, q: p.q }));
        return jsonAnswer(200, page);
      }
      case 'stat': {
        const path = decodePath(p.path);
        const stat = await this.browse.read(userId, dep, snap, async (x) => {
          const f = await x.file(path);
          return { size: f.node.size, name: f.name };
        });
        return jsonAnswer(200, stat);
      }
      case 'diff': {
        const kinds = p.kinds === undefined ? undefined : new Set<ChangeView['change']>(p.kinds);
        return jsonAnswer(200, await this.browse.diff(userId, dep, snap, p.against, { cursor: p.cursor, limit: p.limit, kinds }));
      }
      case 'verifications': {
        if (!this.verifications) break;
        return jsonAnswer(200, { verifications: await this.verifications.list(userId, dep, p.limit, p.before) });
      }
      case 'content':
      case 'archive': {
        const path = decodePath(p.path);
        const reader = await this.browse.open(userId, dep, snap);
        try {
          if (p.kind === 'content') {
            const f = await reader.file(path);
            const range = p.range && p.range.start >= 0 && p.range.end <= f.node.size && p.range.start < p.range.end ? p.range : null;
            if (p.range && !range) throw new ValidationError('INVALID_RANGE', 'the range is outside the file');
            return { status: 200, body: f.stream(range), done: () => reader.close() };
          }
          const { top, stream } = await reader.archive(path, p.zstd);
          return { status: 200, meta: { top }, body: stream, done: () => reader.close() };
        } catch (err) {
          await reader.close();
          throw err;
        }
      }
    }
    throw new ValidationError('UNKNOWN_READ', `this node does not know reads of kind ${(p as { kind: string }).kind}`);
  }

  /** stop waits for the reads being answered (their uploads end with the client). */
  async stop(): Promise<void> {
    await Promise.all([...this.running]);
  }
}
