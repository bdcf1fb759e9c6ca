/**
 * node-routes: the node side of the protocol (src/network/protocol.ts) on
 * the control plane's Fastify app, next to /api/v1.
 *
 * These routes take a node token and nothing else: they are public to the
 * API's key check, and their own hook looks the token's SHA-256 up in the
 * catalogue (the token itself is never stored). A user's API key is no node
 * token (401 here), and a node token is no API key (401 on /api/v1).
 *
 * What each endpoint does is node-side.ts (shared with the in-process
 * transport of `kova serve`); here only the token and the bodies' shape are
 * checked.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '../api/errors.js';
import type { Clock } from '../core/clock.js';
import {
  type DeploymentState,
  type EventsReply,
  type HelloReply,
  NODE_PATHS,
  NODE_TOKEN_PREFIX,
  type NodeEvent,
  type OperationResult,
  type OperationsReply,
  type StateReply,
} from '../network/protocol.js';
import type { Catalogue, CatalogueNode } from './catalogue.js';
import type { Dispatcher } from './dispatch.js';
import { NodeSide, type NodeSideOptions } from './node-side.js';
import type { ReadRelay } from './relay.js';
import { relayRoutes } from './relay-routes.js';
import { hashNodeToken, isNodeToken } from './store/index.js';
import { MAX_EVENTS_PER_REQUEST } from './webhooks.js';

declare module 'fastify' {
  interface FastifyRequest {
    node: CatalogueNode;
  }
}

export interface NodeRouteOptions extends NodeSideOptions {
  /** Relays snapshot reads to nodes (relay.ts); absent: no reads are handed out and no answers taken. */
  readonly relay?: ReadRelay;
}

const Int = Type.Integer({ minimum: 0 });
const HelloBody = Type.Object({
  protocol: Type.Integer(),
  version: Type.String({ maxLength: 64 }),
  runtime: Type.Union([Type.Literal('docker'), Type.Literal('process')]),
  bootId: Type.String({ minLength: 1, maxLength: 128 }),
  offsiteTarget: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 1024 }), Type.Null()])),
});
const HeartbeatBody = Type.Object({
  capacity: Type.Object({
    diskFreeBytes: Int,
    diskTotalBytes: Int,
    volumeUsedBytes: Int,
    volumeReservedBytes: Int,
    deployments: Int,
    runningServices: Int,
    health: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  }),
});
const PollQuery = Type.Object(
  { waitMs: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })), reads: Type.Optional(Type.Literal('1')) },
  { additionalProperties: false },
);
const OpParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
// A document is checked for what the catalogue keys on; its content is the node's word.
const StateDoc = Type.Object({
  deployment: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
  version: Int,
});
const ResultBody = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    state: Type.Union([StateDoc, Type.Null()]),
    extraStates: Type.Optional(Type.Array(StateDoc)),
    value: Type.Optional(Type.Unknown()),
  }),
  Type.Object({
    ok: Type.Literal(false),
    error: Type.Object({ code: Type.String(), message: Type.String(), status: Type.Integer(), details: Type.Optional(Type.Object({})) }),
  }),
]);
const StateBody = Type.Object({ deployments: Type.Array(StateDoc, { maxItems: 1000 }) });
// An event's name is not checked here: one this control plane does not know is acknowledged and dropped (webhooks.ts).
const EventsBody = Type.Object({
  events: Type.Array(
    Type.Object({
      id: Type.String({ minLength: 1, maxLength: 64 }),
      event: Type.String({ minLength: 1, maxLength: 64 }),
      deploymentId: Type.String({ minLength: 1, maxLength: 64 }),
      deploymentName: Type.String({ maxLength: 256 }),
      createdAt: Int,
      data: Type.Object({}),
    }),
    { maxItems: MAX_EVENTS_PER_REQUEST },
  ),
});

/** Node bodies may be larger than the API's (whole deployment documents). */
const NODE_BODY_LIMIT = 16 * 1024 * 1024;

export function nodeRoutes(catalogue: Catalogue, dispatcher: Dispatcher, clock: Clock, opts: NodeRouteOptions) {
  const side = new NodeSide(catalogue, dispatcher, clock, opts);
  return async (app: FastifyInstance): Promise<void> => {
    // Every long poll answers (with what it has) as soon as the app starts closing, so shutdown does not wait for them.
    const closing = new AbortController();
    app.addHook('preClose', async () => closing.abort());

    await app.register(async (node) => {
      node.decorateRequest('node', null as unknown as CatalogueNode);
      node.addHook('onRoute', (route) => {
        route.config = { ...route.config, public: true };
        route.schema = { ...route.schema, hide: true };
        route.bodyLimit = NODE_BODY_LIMIT;
      });
      node.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        if (req.is404) return;
        const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        const token = m?.[1];
        const found = token !== undefined && isNodeToken(token) ? await catalogue.nodeByTokenHash(hashNodeToken(token)) : undefined;
        if (!found) {
          return reply
            .status(401)
            .header('www-authenticate', 'Bearer')
            .send(errorBody('UNAUTHORIZED', `send the node's token: Authorization: Bearer ${NODE_TOKEN_PREFIX}…`));
        }
        req.node = found;
      });

      node.post<{ Body: Static<typeof HelloBody> }>(NODE_PATHS.hello, { schema: { body: HelloBody } }, (req): Promise<HelloReply> =>
        side.hello(req.node, req.body),
      );

      node.post<{ Body: Static<typeof HeartbeatBody> }>(NODE_PATHS.heartbeat, { schema: { body: HeartbeatBody } }, (req) =>
        side.heartbeat(req.node, req.body.capacity),
      );

      node.get<{ Querystring: Static<typeof PollQuery> }>(
        NODE_PATHS.operations,
        { schema: { querystring: PollQuery } },
        async (req, reply): Promise<OperationsReply> => {
          // Ends with the client's connection or the app, whichever goes first.
          const gone = new AbortController();
          const onClose = (): void => {
            if (!reply.raw.writableFinished) gone.abort();
          };
          reply.raw.once('close', onClose);
          const onClosing = (): void => gone.abort();
          closing.signal.addEventListener('abort', onClosing, { once: true });
          try {
            // A node that answers reads says so (`reads=1`); an older one gets operations only.
            const reads = req.query.reads === '1' && opts.relay !== undefined;
            return await side.operations(req.node, Number(req.query.waitMs ?? 0), { reads, signal: gone.signal });
          } finally {
            reply.raw.off('close', onClose);
            closing.signal.removeEventListener('abort', onClosing);
          }
        },
      );

      node.post<{ Params: Static<typeof OpParams>; Body: OperationResult }>(
        '/node/v1/operations/:id/result',
        { schema: { params: OpParams, body: ResultBody } },
        (req) => side.result(req.node, req.params.id, req.body),
      );

      node.post<{ Body: { deployments: DeploymentState[] } }>(
        NODE_PATHS.state,
        { schema: { body: StateBody } },
        (req): Promise<StateReply> => side.state(req.node, req.body.deployments),
      );

      if (opts.events) {
        node.post<{ Body: { events: NodeEvent[] } }>(NODE_PATHS.events, { schema: { body: EventsBody } }, (req): Promise<EventsReply> =>
          side.events(req.node, req.body.events),
        );
      }

      if (opts.relay) relayRoutes(node, opts.relay);
    });
  };
}
