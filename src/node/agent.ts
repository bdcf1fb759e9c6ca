/**
 * agent: the node's side of the conversation with the control plane
 * (network/protocol.ts). After `hello` it runs three loops side by side:
 *
 *   operations  long polls for operations and hands them to the executor,
 *               and the snapshot reads it hands out to the read runner (relay.ts);
 *   heartbeat   every heartbeatIntervalMs (from the hello reply): counts a
 *               change of the live part (state-sync) and sends the capacity;
 *   state       sends the documents of deployments that changed (state-sync);
 *   events      with an outbox, sends the events for webhooks it keeps (events.ts).
 *
 * The control plane is reached through a transport (transport.ts): HTTP to
 * the replicas of `kova control-plane`, or direct calls in `kova serve`.
 * Each loop waits out an unreachable control plane in the transport
 * (failover, backoff); nothing on the node waits for it: jobs and the scheduler keep
 * running, and what changed meanwhile is sent once a replica answers.
 * Nothing is closed, deleted or pruned because the control plane cannot be
 * reached.
 *
 * A refused token (NodeRejectedError), a certificate the node does not
 * trust before it ever reached a replica (UntrustedCertificateError), a
 * protocol the control plane does not speak or a hello it refuses is
 * fatal: every loop stops and `done` rejects with the error.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Services } from '../services/wire.js';
import { KovaError } from '../core/errors.js';
import {
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
import { measureCapacity } from './capacity.js';
import { ClientClosedError, NodeRejectedError, UntrustedCertificateError } from './control-client.js';
import type { EventOutbox } from './events.js';
import { Executor } from './executor.js';
import { ReadRunner } from './relay.js';
import { StateSync, type StateSyncOptions } from './state-sync.js';
import type { ControlTransport } from './transport.js';

/** The control plane refused the hello, or speaks another protocol. */
export class HelloRefusedError extends KovaError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('HELLO_REFUSED', message, { status: 502, details });
  }
}

export interface AgentOptions {
  readonly version: string;
  readonly runtime: 'docker' | 'process';
  /** The off-node target the node copies to (targetIdentity), told in hello and in every document; default none. */
  readonly offsiteTarget?: string | null;
  /** How long a poll asks the replica to hold (capped at MAX_POLL_WAIT_MS). Default 20 s. */
  readonly pollWaitMs?: number;
  /** Pause after a result the control plane did not take, growing to 5 s. Default 200 ms. */
  readonly retryMs?: number;
  readonly stateSync?: StateSyncOptions;
  /** The outbox the node's services report events to; sent when the transport can send events. Default none. */
  readonly outbox?: EventOutbox;
}

export const AGENT_DEFAULTS = { pollWaitMs: 20_000, retryMs: 200 } as const;
const MAX_RETRY_MS = 5_000;
const DEFAULT_HEARTBEAT_MS = 10_000;
const MIN_HEARTBEAT_MS = 100;
const MAX_HEARTBEAT_MS = 10 * 60_000;

export class NodeAgent {
  readonly sync: StateSync;
  readonly executor: Executor;
  /** Answers the snapshot reads the long poll hands out (relay.ts); null over a transport that hands out none. */
  readonly reads: ReadRunner | null;
  /** Changes on every start of the process: tells the control plane the node restarted. */
  readonly bootId = randomUUID();
  /** The hello reply, once the control plane answered. */
  hello: HelloReply | null = null;
  /** Resolves once stopped; rejects with the error that stopped the node (a refused token). */
  readonly done: Promise<void>;
  /** Resolves with the hello reply once the control plane answered it (stays pending if the agent stops first). */
  readonly connected: Promise<HelloReply>;
  private connect!: (reply: HelloReply) => void;
  private stopped = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private finish!: (err?: unknown) => void;
  private readonly opts: AgentOptions & { readonly pollWaitMs: number; readonly retryMs: number };

  constructor(
    private readonly services: Services,
    private readonly client: ControlTransport,
    private readonly log: Logger,
    opts: AgentOptions,
  ) {
    this.opts = { ...opts, pollWaitMs: opts.pollWaitMs ?? AGENT_DEFAULTS.pollWaitMs, retryMs: opts.retryMs ?? AGENT_DEFAULTS.retryMs };
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (err?: unknown) => (err === undefined ? resolve() : reject(err as Error));
    });
    this.connected = new Promise<HelloReply>((resolve) => {
      this.connect = resolve;
    });
    // A caller that only stops the agent must not see an unhandled rejection.
    this.done.catch(() => undefined);
    this.sync = new StateSync(
      services.ctx,
      services.deployments,
      (docs) => this.sendState(docs),
      opts.stateSync,
      opts.offsiteTarget ?? null,
    );
    const upload = client.upload?.bind(client);
    this.reads = upload ? new ReadRunner(services.browse, { upload }, log, services.verifications) : null;
    this.executor = new Executor(
      services,
      this.sync,
      (id, r) => this.postResult(id, r),
      log,
      (err) => void this.loopError(err, 'could not apply an operation or post its result; it is applied when handed out again'),
    );
  }

  /** start says hello (waiting for a replica to answer), then runs the loops. Returns at once. */
  start(): void {
    void this.run().catch((err: unknown) => this.failed(err));
  }

  private async run(): Promise<void> {
    const req: HelloRequest = {
      protocol: PROTOCOL_VERSION,
      version: this.opts.version,
      runtime: this.opts.runtime,
      bootId: this.bootId,
      offsiteTarget: this.opts.offsiteTarget ?? null,
    };
    const a = await this.client.hello(req);
    const reply = a.body as HelloReply | null;
    if (a.status !== 200 || !reply || typeof reply.nodeId !== 'string') {
      throw new HelloRefusedError(`the control plane at ${a.url} refused the hello (HTTP ${a.status}${errorText(a.body)})`, {
        status: a.status,
      });
    }
    if (reply.protocol !== PROTOCOL_VERSION) {
      throw new HelloRefusedError(
        `the control plane at ${a.url} speaks protocol ${reply.protocol}, this node ${PROTOCOL_VERSION}: upgrade the older of the two`,
        { protocol: reply.protocol },
      );
    }
    if (this.stopped) return;
    this.hello = reply;
    this.connect(reply);
    this.log.info({ node: reply.nodeId, name: reply.name, url: a.url }, 'connected to the control plane');
    void this.sync.run((err) => this.loopError(err, 'could not send deployment state'));
    if (this.opts.outbox && this.client.events) {
      void this.opts.outbox.run(
        (events) => this.sendEvents(events),
        (err) => this.loopError(err, 'could not send events'),
      );
    }
    void this.pollLoop();
    this.scheduleHeartbeat(0);
  }

  private async pollLoop(): Promise<void> {
    const waitMs = Math.min(this.opts.pollWaitMs, MAX_POLL_WAIT_MS);
    while (!this.stopped) {
      try {
        const a = await this.client.operations(waitMs);
        if (a.status === 200) {
          const reply = a.body as OperationsReply;
          const ops = reply.operations ?? [];
          this.reads?.accept(reply.reads ?? []);
          // The control plane hands out what is unfinished at once: operations still in hand come back without
          // waiting. Poll again once one of them is done (or after retryMs), not in a tight loop.
          if (this.executor.accept(ops) === 0 && ops.length > 0) {
            await Promise.race([this.executor.released(), this.pause(this.opts.retryMs)]);
          }
        } else {
          this.log.warn({ status: a.status, body: a.body }, 'the control plane did not hand out operations');
          await this.pause(this.opts.retryMs * 5);
        }
      } catch (err) {
        if (this.loopError(err, 'polling for operations failed')) return;
        await this.pause(this.opts.retryMs);
      }
    }
  }

  private scheduleHeartbeat(delayMs: number): void {
    if (this.stopped) return;
    this.heartbeatTimer = setTimeout(() => {
      void this.heartbeat().finally(() => this.scheduleHeartbeat(heartbeatInterval(this.hello!)));
    }, delayMs);
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.sync.checkLive();
      this.sync.poke();
      const capacity = await measureCapacity(this.services.ctx, this.services.deployments);
      const a = await this.client.heartbeat(capacity);
      if (a.status >= 300) this.log.warn({ status: a.status, body: a.body }, 'the control plane did not take the heartbeat');
    } catch (err) {
      this.loopError(err, 'heartbeat failed');
    }
  }

  private async sendState(docs: readonly DeploymentState[]): Promise<StateReply['acked']> {
    const a = await this.client.state(docs);
    if (a.status === 200) return (a.body as StateReply).acked ?? [];
    this.log.warn({ status: a.status, body: a.body }, 'the control plane did not take the deployment state');
    return [];
  }

  /** sendEvents sends a batch of the outbox: the ids acknowledged, or null when the control plane did not take it. */
  private async sendEvents(events: readonly NodeEvent[]): Promise<readonly string[] | null> {
    const a = await this.client.events!(events);
    if (a.status === 200) return (a.body as EventsReply).acked ?? [];
    // 404: a control plane older than events; they wait here until it is upgraded.
    this.log.warn({ status: a.status, body: a.body, events: events.length }, 'the control plane did not take the events; kept');
    return null;
  }

  /** postResult posts a result until a replica takes it, or answers that it no longer knows the operation (404, 409). */
  private async postResult(opId: string, result: OperationResult): Promise<void> {
    let wait = this.opts.retryMs;
    for (;;) {
      const a = await this.client.result(opId, result);
      if (a.status >= 200 && a.status < 300) return;
      if (a.status === 404 || a.status === 409) {
        this.log.info({ operation: opId, status: a.status }, 'the control plane no longer waits for this result; dropped');
        return;
      }
      this.log.warn({ operation: opId, status: a.status, body: a.body }, 'the control plane did not take a result; retrying');
      await this.pause(wait);
      if (this.stopped) throw new ClientClosedError();
      wait = Math.min(MAX_RETRY_MS, wait * 2);
    }
  }

  /** loopError logs an error of a loop; returns true when the loop must end (stopped, or fatal). */
  private loopError(err: unknown, what: string): boolean {
    if (err instanceof ClientClosedError || this.stopped) return true;
    if (err instanceof NodeRejectedError || err instanceof UntrustedCertificateError) {
      this.failed(err);
      return true;
    }
    this.log.error({ err }, what);
    return false;
  }

  private failed(err: unknown): void {
    if (err instanceof ClientClosedError && this.stopped) return;
    if (this.stopped) return;
    this.log.fatal({ err }, 'the node stops');
    this.halt();
    this.finish(err);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  private halt(): void {
    this.stopped = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.sync.stop();
    this.opts.outbox?.stop();
    this.client.close();
  }

  /** stop ends every loop; operations being applied finish their local effect. */
  stop(): void {
    if (this.stopped) return;
    this.halt();
    this.finish();
  }
}

/** The heartbeat interval of a hello reply, bounded: a missing or absurd value must not turn into a busy loop. */
export function heartbeatInterval(reply: HelloReply): number {
  const ms = reply.heartbeatIntervalMs;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return DEFAULT_HEARTBEAT_MS;
  return Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, ms));
}

function errorText(body: unknown): string {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (!e) return '';
  return `: ${typeof e.code === 'string' ? e.code : ''}${typeof e.message === 'string' ? ` ${e.message}` : ''}`;
}
