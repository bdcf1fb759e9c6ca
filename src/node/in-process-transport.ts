/**
 * in-process-transport: the local node of `kova serve` talking to the
 * control plane in the same process. Each exchange calls the control
 * plane's node side (src/control/node-side.ts), the very functions its HTTP
 * routes call, for the node registered under `nodeId`: no socket, no token,
 * no JSON round trip. The long poll waits on the catalogue's in-process
 * wake (SQLite), so an operation reaches the node as soon as it is queued.
 *
 * As over HTTP, a refusal (a KovaError below 500) is an answer with its
 * status and error body; a failure of the control plane itself (its
 * database: 5xx, or any other error) is retried with backoff (50 ms,
 * doubling to 2 s) until it answers or the transport is closed. A node
 * missing from the catalogue is fatal (NodeRejectedError).
 */
import { errorBody } from '../api/errors.js';
import { KovaError } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { Catalogue, CatalogueNode } from '../control/catalogue.js';
import type { NodeSide } from '../control/node-side.js';
import type { Capacity, DeploymentState, HelloRequest, OperationResult } from '../network/protocol.js';
import { ClientClosedError, NodeRejectedError } from './control-client.js';
import type { Answer, ControlTransport } from './transport.js';

const WHO = 'in-process';
const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2_000;

export class InProcessTransport implements ControlTransport {
  private readonly closing = new AbortController();

  constructor(
    private readonly side: NodeSide,
    private readonly catalogue: Catalogue,
    private readonly nodeId: string,
    /** Called once per failed attempt (for the log). */
    private readonly onFailure: (reason: unknown) => void = () => undefined,
  ) {}

  hello(req: HelloRequest): Promise<Answer> {
    return this.call((n) => this.side.hello(n, req));
  }

  heartbeat(capacity: Capacity): Promise<Answer> {
    return this.call((n) => this.side.heartbeat(n, capacity));
  }

  operations(waitMs: number): Promise<Answer> {
    return this.call((n) => this.side.operations(n, waitMs, { reads: false, signal: this.closing.signal }));
  }

  result(opId: string, result: OperationResult): Promise<Answer> {
    return this.call((n) => this.side.result(n, opId, result));
  }

  state(docs: readonly DeploymentState[]): Promise<Answer> {
    return this.call((n) => this.side.state(n, docs));
  }

  close(): void {
    this.closing.abort();
  }

  private async call(fn: (node: CatalogueNode) => Promise<unknown>): Promise<Answer> {
    let backoff = MIN_BACKOFF_MS;
    for (;;) {
      if (this.closing.signal.aborted) throw new ClientClosedError();
      try {
        const node = await this.catalogue.node(this.nodeId);
        if (!node) throw new NodeRejectedError(WHO, 401, `node ${this.nodeId} is not in the catalogue`);
        return { status: 200, body: await fn(node), url: WHO };
      } catch (err) {
        if (err instanceof NodeRejectedError) throw err;
        if (err instanceof KovaError && err.status < 500) return { status: err.status, body: errorBody(err.code, err.message), url: WHO };
        if (this.closing.signal.aborted) throw new ClientClosedError();
        this.onFailure(err);
      }
      await this.sleep(backoff);
      backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
    }
  }

  private sleep(ms: number): Promise<void> {
    return sleep(ms, this.closing.signal);
  }
}
