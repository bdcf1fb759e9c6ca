/**
 * transport: how a node's agent (agent.ts) reaches its control plane, one
 * method per exchange of the protocol (src/network/protocol.ts). Two
 * implementations: ControlClient (control-client.ts) speaks HTTP(S) to the
 * replicas of `kova control-plane`; InProcessTransport
 * (in-process-transport.ts) calls the control plane's node side in the
 * same process (`kova serve`).
 *
 * Every method resolves with the control plane's answer (status below 500:
 * an unreachable or failing control plane is waited out inside the
 * transport), throws NodeRejectedError when the control plane does not know
 * the node (fatal), and ClientClosedError once closed. Calls from the
 * agent's loops run concurrently.
 */
import type { Readable } from 'node:stream';
import type { Capacity, DeploymentState, HelloRequest, NodeEvent, OperationResult } from '../network/protocol.js';

export interface Answer {
  readonly status: number;
  /** Parsed JSON, or null for an empty body or one that is not JSON. */
  readonly body: unknown;
  /** Who answered: the replica's URL, or `in-process`. */
  readonly url: string;
}

export interface ControlTransport {
  hello(req: HelloRequest): Promise<Answer>;
  heartbeat(capacity: Capacity): Promise<Answer>;
  /** The long poll: holds up to `waitMs` for an operation (and, with `upload`, a snapshot read). */
  operations(waitMs: number): Promise<Answer>;
  /**
   * Streams the answer to a snapshot read to the replica (src/node/relay.ts).
   * A transport without it is handed no reads: `kova serve` answers them
   * from the node's services directly.
   */
  upload?(path: string, headers: Readonly<Record<string, string>>, body: Readable, opts?: { timeoutMs?: number }): Promise<Answer>;
  result(opId: string, result: OperationResult): Promise<Answer>;
  state(docs: readonly DeploymentState[]): Promise<Answer>;
  /**
   * Sends events from the node's outbox (src/node/events.ts). A transport
   * without it sends none: `kova serve` records events for its webhooks
   * directly.
   */
  events?(events: readonly NodeEvent[]): Promise<Answer>;
  /** Ends every pending and later call with ClientClosedError. */
  close(): void;
}
