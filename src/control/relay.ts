/**
 * relay: a user's snapshot read (a listing, a file, an archive, a diff), or
 * a page of a deployment's verification history (control/verifications.ts),
 * answered by the deployment's node through the control plane. The node
 * has no inbound port and the snapshot's files live only in its
 * repository, so the replica that holds the user's request asks through
 * the catalogue and the node uploads its answer to whichever replica it
 * reaches:
 *
 *   1. ask() records the read (catalogue `reads`, queued) and wakes the
 *      node's long poll on every replica; the long poll hands it out once.
 *      Not taken within `pickupMs`: withdrawn, 503 NODE_UNAVAILABLE; taken
 *      but not answered within `answerMs`, or the node goes offline
 *      meanwhile: deleted, 503 NODE_UNAVAILABLE.
 *   2. The node runs it on its own BrowseService and uploads the answer,
 *      status and meta in headers, body streamed (receive()).
 *   3. Same replica as the user's request (the read waits in `waiting`):
 *      the upload's body is handed over as it is, backpressure included.
 *      Another replica: it records the answer's head and stores the body
 *      as pieces of `chunkBytes` in `read_chunks`, at most `window` unread
 *      at a time (so a slow user slows the node's upload down), and the
 *      waiting replica reads and deletes them in order.
 *   4. The user going away, or either side idle for `idleMs`, deletes the
 *      read and its pieces; the other side sees it gone and stops (the
 *      node's upload is answered 410 READ_CANCELLED). Rows of reads whose
 *      replica died expire and are pruned.
 *
 * An answer with a status of 400 or more is the node's error (a WireError
 * in JSON): ask() throws it as the all-in-one would have.
 *
 * Concurrency: any number of reads at once, on any replica; each read has
 * exactly one waiting request and at most one upload (answerRead, or the
 * in-process handoff, accepts the first).
 */
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { KovaError, NotFoundError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { ReadPayload, WireError } from '../network/protocol.js';
import { type Catalogue, type CatalogueNode, type CatalogueRead, nodeStatus } from './catalogue.js';
import { DEFAULT_NODE_TIMEOUT_MS } from './dispatch.js';
import { NodeUnavailableError, errorFromWire } from './errors.js';

export interface RelayOptions {
  /** How long a read waits for the node's long poll to take it. */
  readonly pickupMs: number;
  /**
   * How long, once taken, for the node's answer to begin (a read may wait
   * up to 15 s for the repository's lock); cut short when the node goes
   * offline meanwhile.
   */
  readonly answerMs: number;
  /** Longest pause between two pieces of an answer, on either side, before the read is given up. */
  readonly idleMs: number;
  /** Size of the pieces an answer crosses replicas in. */
  readonly chunkBytes: number;
  /** Pieces stored unread at most, per read. */
  readonly window: number;
  /** Largest JSON answer (listing, diff, error) read into memory. */
  readonly maxJsonBytes: number;
  /** After how long without a heartbeat a node is offline (the control plane's --node-timeout). */
  readonly nodeTimeoutMs: number;
}

export const RELAY_DEFAULTS: RelayOptions = {
  pickupMs: 5_000,
  answerMs: 30_000,
  idleMs: 30_000,
  chunkBytes: 256 * 1024,
  window: 4,
  maxJsonBytes: 64 * 1024 * 1024,
  nodeTimeoutMs: DEFAULT_NODE_TIMEOUT_MS,
};

/** The read is gone (the user went away, or it expired): the node stops sending (HTTP 410). */
export class ReadCancelledError extends KovaError {
  constructor(readId: string) {
    super('READ_CANCELLED', `read ${readId} is no longer waited for; stop sending`, { status: 410 });
  }
}

/** What the node answered, once it began: its meta and its body. */
export interface RelayedAnswer {
  readonly meta: Readonly<Record<string, unknown>> | null;
  readonly body: Readable;
}

/** An upload received by this replica for a read waiting here. */
interface Handoff {
  readonly status: number;
  readonly meta: Readonly<Record<string, unknown>> | null;
  readonly body: Readable;
}

export class ReadRelay {
  /** Reads whose user's request waits on this replica, by id: hands the node's upload over. */
  private readonly waiting = new Map<string, (h: Handoff) => void>();
  private readonly opts: RelayOptions;

  constructor(
    private readonly catalogue: Catalogue,
    private readonly clock: Clock,
    private readonly log: Logger | null = null,
    opts: Partial<RelayOptions> = {},
  ) {
    this.opts = { ...RELAY_DEFAULTS, ...opts };
  }

  /**
   * ask sends `payload` about snapshot `snapId` (empty: about the deployment) of deployment `depId` to
   * `node` (for `userId`) and resolves once the node's answer begins. The
   * caller consumes or destroys the body; either ends the read.
   */
  async ask(node: CatalogueNode, userId: string, depId: string, snapId: string, payload: ReadPayload): Promise<RelayedAnswer> {
    const id = newId('read');
    const now = this.clock.now();
    const stopWaiting = new AbortController();
    let arrived!: (h: Handoff) => void;
    const local = new Promise<Handoff>((resolve) => {
      arrived = resolve;
    });
    this.waiting.set(id, (h) => {
      this.waiting.delete(id);
      stopWaiting.abort();
      arrived(h);
    });
    let answer: (Handoff & { local: boolean }) | undefined;
    try {
      const { pickupMs, answerMs, idleMs } = this.opts;
      await this.catalogue.addRead(
        { id, userId, deploymentId: depId, snapshotId: snapId, payload, createdAt: now },
        node.id,
        now + pickupMs + answerMs + idleMs,
      );
      answer = await this.awaitAnswer(id, node, local, stopWaiting.signal);
      // Handed over in this process: the row is no longer needed, and is gone before the user sees a byte.
      if (answer.local) await this.catalogue.dropRead(id);
    } catch (err) {
      answer?.body.destroy();
      throw err;
    } finally {
      this.waiting.delete(id);
      stopWaiting.abort();
    }
    if (answer.status >= 400) {
      const text = await readAll(answer.body, this.opts.maxJsonBytes).catch(() => Buffer.alloc(0));
      let wire: WireError;
      try {
        wire = JSON.parse(text.toString('utf8')) as WireError;
      } catch {
        wire = { code: '', message: '', status: answer.status };
      }
      throw errorFromWire(wire);
    }
    return { meta: answer.meta, body: answer.body };
  }

  /** json asks and reads the whole answer as JSON. */
  async json<T>(node: CatalogueNode, userId: string, depId: string, snapId: string, payload: ReadPayload): Promise<T> {
    const { body } = await this.ask(node, userId, depId, snapId, payload);
    const text = await readAll(body, this.opts.maxJsonBytes);
    try {
      return JSON.parse(text.toString('utf8')) as T;
    } catch {
      throw new KovaError('INTERNAL_ERROR', `node ${node.name} sent an answer that is not JSON`, { status: 500 });
    }
  }

  /** awaitAnswer waits for the node to take the read, then for its answer: here (in-process) or through the catalogue. */
  private async awaitAnswer(
    id: string,
    node: CatalogueNode,
    arrived: Promise<Handoff>,
    signal: AbortSignal,
  ): Promise<Handoff & { local: boolean }> {
    const { pickupMs, answerMs } = this.opts;
    const local = arrived.then((h) => ({ ...h, local: true }));
    const viaDb = (timeoutMs: number, until: (r: CatalogueRead | undefined) => boolean) =>
      this.catalogue.waitRead(id, timeoutMs, until, signal).then((r) => ({ db: r }));

    const taken = await Promise.race([local, viaDb(pickupMs, (r) => r?.status !== 'queued')]);
    if (!('db' in taken)) return taken;
    if (taken.db === null && !signal.aborted && (await this.catalogue.withdrawRead(id))) {
      throw new NodeUnavailableError(
        `node ${node.name} did not take the request within ${seconds(pickupMs)}; nothing was read, try again`,
        {
          nodeId: node.id,
        },
      );
    }
    // Taken: wait for the answer, looking at the node's heartbeat every second (a node that froze after taking it goes offline).
    // Waiting is measured in real time (as waitRead does), whatever clock stamps the rows.
    const deadline = Date.now() + answerMs;
    let why = `node ${node.name} did not answer within ${seconds(pickupMs + answerMs)}; try again`;
    for (;;) {
      const left = deadline - Date.now();
      const answered = await Promise.race([
        local,
        viaDb(Math.max(0, Math.min(left, 1_000)), (r) => r === undefined || r.status === 'answered'),
      ]);
      if (!('db' in answered)) return answered;
      const r = answered.db;
      if (r?.response) return { status: r.response.status, meta: r.response.meta, body: this.chunks(id), local: false };
      if (r === undefined) {
        why = `node ${node.name} stopped answering the request; try again`;
        break;
      }
      if (left <= 1_000) break;
      const now = await this.catalogue.node(node.id);
      if (!now || nodeStatus(now, this.clock.now(), this.opts.nodeTimeoutMs) === 'offline') {
        why = `node ${node.name} went offline before answering; try again when it is back`;
        break;
      }
    }
    await this.catalogue.dropRead(id);
    throw new NodeUnavailableError(why, { nodeId: node.id });
  }

  /** chunks reads a body that crosses replicas, piece by piece, deleting each piece read; destroyed early, it ends the read. */
  private chunks(id: string): Readable {
    const { catalogue, log } = this;
    const idleMs = this.opts.idleMs;
    const stop = new AbortController();
    let seq = 0;
    let ended = false;
    const drop = (): void => {
      void catalogue.dropRead(id).catch((err: unknown) => this.log?.warn({ err, read: id }, 'could not delete a relayed read'));
    };
    return new Readable({
      read() {
        catalogue.pullChunk(id, seq, idleMs, stop.signal).then(
          (c) => {
            if (c === null || c === 'gone') {
              if (!stop.signal.aborted) this.destroy(new NodeUnavailableError(`the node stopped sending read ${id}`));
              return;
            }
            seq++;
            if (!c.last) return void this.push(c.data);
            ended = true;
            // Deleted before the stream ends, so the user's answer completes with nothing left behind.
            void catalogue
              .dropRead(id)
              .catch((err: unknown) => log?.warn({ err, read: id }, 'could not delete a relayed read'))
              .finally(() => {
                if (c.data.length > 0) this.push(c.data);
                this.push(null);
              });
          },
          (err: unknown) => this.destroy(err as Error),
        );
      },
      destroy(err, cb) {
        stop.abort();
        if (!ended) drop();
        cb(err);
      },
    });
  }

  /**
   * receive takes the node's answer to read `readId`: `status` and `meta`
   * for the user, then the body. Resolves once the body was passed on to
   * the end. 404 READ_NOT_FOUND when the read is not this node's or no
   * longer waited for; 410 READ_CANCELLED when the user went away midway.
   */
  async receive(
    nodeId: string,
    readId: string,
    status: number,
    meta: Readonly<Record<string, unknown>> | null,
    body: Readable,
  ): Promise<void> {
    const row = await this.catalogue.readRow(readId);
    if (!row || row.nodeId !== nodeId || row.status !== 'delivered') {
      throw new NotFoundError('READ_NOT_FOUND', `read ${readId} is not waiting for this node's answer`);
    }
    const hand = this.waiting.get(readId);
    if (hand) {
      const passed = new Promise<void>((resolve, reject) => {
        body.once('end', () => resolve());
        body.once('close', () => {
          if (!body.readableEnded) reject(new ReadCancelledError(readId));
        });
      });
      // Both ends are in this process: ask() deletes the row, then passes the body on.
      hand({ status, meta, body });
      return passed;
    }
    const { idleMs, chunkBytes, window } = this.opts;
    if (!(await this.catalogue.answerRead(readId, nodeId, { status, meta }, this.clock.now() + 2 * idleMs))) {
      throw new NotFoundError('READ_NOT_FOUND', `read ${readId} is not waiting for this node's answer`);
    }
    let seq = 0;
    const push = async (data: Buffer, last: boolean): Promise<void> => {
      const r = await this.catalogue.pushChunk(
        readId,
        seq++,
        { data, last },
        { window, timeoutMs: idleMs, expiresAt: this.clock.now() + 2 * idleMs },
      );
      if (r !== 'stored') throw new ReadCancelledError(readId);
    };
    try {
      let pending: Buffer[] = [];
      let size = 0;
      for await (const b of body as AsyncIterable<Buffer>) {
        pending.push(b);
        size += b.length;
        while (size >= chunkBytes) {
          const all = Buffer.concat(pending, size);
          await push(all.subarray(0, chunkBytes), false);
          pending = [all.subarray(chunkBytes)];
          size -= chunkBytes;
        }
      }
      await push(Buffer.concat(pending, size), true);
    } catch (err) {
      // The upload broke off, or nobody reads any more: the waiting side must not wait for the rest.
      await this.catalogue.dropRead(readId).catch(() => undefined);
      throw err;
    }
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

/** readAll collects a stream's bytes, refusing more than `max`. */
async function readAll(stream: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const b of stream as AsyncIterable<Buffer>) {
    size += b.length;
    if (size > max) {
      stream.destroy();
      throw new KovaError('INTERNAL_ERROR', `an answer larger than ${max} bytes was relayed as JSON`, { status: 500 });
    }
    parts.push(b);
  }
  return Buffer.concat(parts, size);
}
