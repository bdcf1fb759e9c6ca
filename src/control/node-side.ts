/**
 * node-side: the control plane's side of the node protocol
 * (src/network/protocol.ts), as plain functions over the catalogue. Two
 * callers share this one implementation: the HTTP routes of network mode
 * (node-routes.ts, after checking the node's token and the body's shape)
 * and the in-process transport of `kova serve`, where the local node's
 * agent calls these directly (src/node/in-process-transport.ts).
 *
 * A node only ever sees and touches its own: the long poll hands it its own
 * operations, a result for another node's operation is 404, and the
 * catalogue ignores documents of deployments not placed on it. Results and
 * documents may come more than once (delivery is at least once): a repeat
 * changes nothing and is answered as success.
 */
import type { Clock } from '../core/clock.js';
import { KovaError, NotFoundError } from '../core/errors.js';
import {
  type Capacity,
  type DeploymentState,
  type EventsReply,
  type HelloReply,
  type HelloRequest,
  MAX_POLL_WAIT_MS,
  type NodeEvent,
  type OperationResult,
  type OperationsReply,
  PROTOCOL_VERSION,
  type StateReply,
} from '../network/protocol.js';
import type { Catalogue, CatalogueNode } from './catalogue.js';
import type { Dispatcher } from './dispatch.js';
import type { NodeEvents } from './webhooks.js';

export interface NodeSideOptions {
  /** How often the control plane expects a heartbeat (told in the hello reply). */
  readonly heartbeatIntervalMs: number;
  /** After how long without one the node is offline (told in the hello reply). */
  readonly nodeTimeoutMs: number;
  /** Records the nodes' events for webhooks (webhooks.ts); absent: events are refused (404) and stay in the nodes' outboxes. */
  readonly events?: NodeEvents;
}

export class NodeSide {
  constructor(
    private readonly catalogue: Catalogue,
    private readonly dispatcher: Dispatcher,
    private readonly clock: Clock,
    private readonly opts: NodeSideOptions,
  ) {}

  /** hello records the node's version, runtime and boot; PROTOCOL_MISMATCH (400) for another protocol. */
  async hello(node: CatalogueNode, req: HelloRequest): Promise<HelloReply> {
    if (req.protocol !== PROTOCOL_VERSION) {
      throw new KovaError(
        'PROTOCOL_MISMATCH',
        `this control plane speaks node protocol ${PROTOCOL_VERSION}, the node ${req.protocol}; upgrade the older one`,
        { status: 400 },
      );
    }
    await this.catalogue.hello(
      node.id,
      { version: req.version, runtime: req.runtime, bootId: req.bootId, offsiteTarget: req.offsiteTarget ?? null },
      this.clock.now(),
    );
    return {
      protocol: PROTOCOL_VERSION,
      nodeId: node.id,
      name: node.name,
      heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
      nodeTimeoutMs: this.opts.nodeTimeoutMs,
    };
  }

  async heartbeat(node: CatalogueNode, capacity: Capacity): Promise<{ success: true }> {
    await this.catalogue.heartbeat(node.id, capacity, this.clock.now());
    return { success: true };
  }

  /**
   * operations: the node's unfinished operations, and with `reads` the
   * snapshot reads waiting for it (relay.ts), waiting up to `waitMs`
   * (capped) for one, or until `signal`.
   */
  async operations(
    node: CatalogueNode,
    waitMs: number,
    opts: { readonly reads: boolean; readonly signal?: AbortSignal },
  ): Promise<OperationsReply> {
    return this.catalogue.poll(node.id, Math.min(waitMs, MAX_POLL_WAIT_MS), opts);
  }

  /** result records an operation's outcome (OPERATION_NOT_FOUND, 404, when it is not this node's). */
  async result(node: CatalogueNode, opId: string, result: OperationResult): Promise<{ success: true; recorded: boolean }> {
    const op = await this.catalogue.operation(opId);
    if (!op || op.nodeId !== node.id) throw new NotFoundError('OPERATION_NOT_FOUND', `operation ${opId} not found`);
    // The documents first: whoever waits for the result reads them next (dispatch.ts applies them too).
    if (result.ok) await this.dispatcher.apply(node.id, result);
    const recorded = await this.catalogue.finish(op.id, node.id, result, this.clock.now());
    return { success: true, recorded };
  }

  async state(node: CatalogueNode, docs: readonly DeploymentState[]): Promise<StateReply> {
    return { acked: await this.catalogue.applyState(node.id, docs) };
  }

  /** events records the node's events for webhooks, once per id; the reply lists what the node may delete. */
  async events(node: CatalogueNode, events: readonly NodeEvent[]): Promise<EventsReply> {
    if (!this.opts.events) throw new NotFoundError('NOT_FOUND', 'this control plane does not take events');
    return this.opts.events.take(node, events);
  }
}
