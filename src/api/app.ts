/**
 * app: the HTTP API (and the dashboard's static files), built from its
 * dependencies and not listening: the server listens, tests inject().
 *
 * Authentication is decided by the route the router matched, never by the
 * raw URL: every route needs a bearer API key unless it is registered with
 * `config: { public: true }` (health, OpenAPI document, dashboard files), so
 * a new route is closed unless someone opens it on purpose, and however a
 * path is spelled (percent-encoded, another case, `..`) it either reaches
 * its route, with that route's check, or no route (404, nothing run).
 * Each key and each user is rate limited, and so are sign-in attempts
 * (rate-limit.ts); bodies over 1 MiB get 413; every request has an
 * id (x-request-id) that the structured logs carry.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import swagger from '@fastify/swagger';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { isDatabaseUnavailable } from '../core/errors.js';
import type { User } from '../services/models.js';
import type { UserRole } from './contract.js';
import { healthView } from '../services/views.js';
import { type AppDeps, DEFAULT_LIMITS, USER_LIMIT_FACTOR } from './deps.js';
import { errorBody, handleError } from './errors.js';
import { type Principal, RateLimitedError } from '../services/keys.js';
import { apiLimiter, clockStore, tooMany } from './rate-limit.js';
import { deploymentRoutes } from './routes/deployments.js';
import { keyRoutes } from './routes/keys.js';
import { settingsRoutes } from './routes/settings.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { fileRoutes } from './routes/files.js';
import { webhookRoutes } from './routes/webhooks.js';
import { nodeRoutes } from './routes/nodes.js';
import { verificationRoutes } from './routes/verifications.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: User;
    /** The caller's role, from the key that authenticated them. */
    role: UserRole;
  }
  interface FastifyContextConfig {
    /** Served without an API key. Routes without it are authenticated. */
    public?: boolean;
  }
}

/** Route options of the routes anyone may call. */
const PUBLIC = { public: true } as const;

const BODY_LIMIT = 1024 * 1024;
const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface BuildOptions {
  /** A pino logger for request logs; none when absent (tests). */
  readonly logger?: FastifyBaseLogger;
  /** More routes on the same app, registered after the API's (the control plane's node endpoints). */
  readonly routes?: (app: FastifyInstance) => void | Promise<void>;
  /** Serve HTTPS with this PEM certificate (chain) and key instead of HTTP. */
  readonly https?: { readonly cert: Buffer; readonly key: Buffer } | null;
}

export async function buildApp(deps: AppDeps, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}),
    bodyLimit: BODY_LIMIT,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : `req-${randomBytes(6).toString('hex')}`;
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });

  // Bodies are JSON only: anything else (Fastify also reads text/plain by
  // default) is refused with 415 before validation sees it.
  app.removeContentTypeParser('text/plain');
  // An empty JSON body means "no options": POST …/snapshots with no body is fine.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error('invalid JSON') as Error & { code: string; statusCode: number };
      err.code = 'FST_ERR_CTP_INVALID_JSON_BODY';
      err.statusCode = 400;
      done(err, undefined);
    }
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Kova volume snapshots API',
        version: deps.config.version,
        description: 'Deployments with persistent volumes, and their snapshots. See docs/api.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key: kova_<prefix>.<secret>' } } },
      security: [{ bearer: [] }],
    },
  });

  app.setErrorHandler((err, req, reply) => {
    if (isDatabaseUnavailable(err)) deps.disk?.full('database', err, { request: req.id });
    return handleError(err as Error, req, reply);
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));

  const c = deps.config;
  const limiter = await apiLimiter(app, deps.rateLimitStore ?? clockStore(deps.clock), {
    perKey: c.rateLimitPerMinute,
    perUser: c.userRateLimitPerMinute ?? USER_LIMIT_FACTOR * c.rateLimitPerMinute,
    signInsPerPrefix: c.signInsPerPrefix ?? DEFAULT_LIMITS.signInsPerPrefix,
    signInsPerAddress: c.signInsPerAddress ?? DEFAULT_LIMITS.signInsPerAddress,
  });
  app.decorateRequest('user', null as unknown as User);
  app.decorateRequest('role', 'user');
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    // No route matched: the not-found handler answers 404 and runs nothing else.
    if (req.is404 || req.routeOptions.config.public === true) return;
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    let principal: Principal | null;
    try {
      principal = m
        ? await deps.keys.authenticate(m[1]!, async (prefix) => {
            const wait = await limiter.signIn(req, prefix);
            if (wait > 0) throw new RateLimitedError('sign-in attempts', wait);
          })
        : null;
    } catch (err) {
      if (err instanceof RateLimitedError) return tooMany(reply, err.retryAfterSec, 'sign-in attempts');
      throw err;
    }
    if (!principal) {
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer')
        .send(
          errorBody(
            'UNAUTHORIZED',
            m ? 'the API key is unknown, malformed or revoked' : 'send an API key: Authorization: Bearer kova_<prefix>.<secret>',
          ),
        );
    }
    const wait = await limiter.request(req, principal.keyPrefix, principal.user.id);
    if (wait > 0) return tooMany(reply, wait, 'requests');
    req.user = principal.user;
    req.role = principal.role;
  });
  // No body at all is the same as an empty one: every optional-body route accepts it.
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && (req.method === 'POST' || req.method === 'PUT')) req.body = {};
  });
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpRequests.inc({ method: req.method, code: String(reply.statusCode) });
  });

  app.get('/healthz', { schema: { hide: true }, config: PUBLIC }, async (_req, reply) => {
    if (deps.health) {
      const h = await deps.health();
      return reply.status(h.status).send(h.body);
    }
    // Degraded (still 200: the process serves) while the data disk is short of space.
    const disk = deps.disk ? await deps.disk.check() : null;
    return healthView(deps.config.runtime, deps.config.version, disk);
  });
  // Metrics span every user's deployments: they take the operator's metrics
  // token, not an API key (which belongs to one user).
  const metricsToken = deps.config.metricsToken ? createHash('sha256').update(deps.config.metricsToken).digest() : null;
  app.get('/metrics', { schema: { hide: true }, config: PUBLIC }, async (req, reply) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const given = m ? createHash('sha256').update(m[1]!).digest() : null;
    if (!metricsToken || !given || !timingSafeEqual(given, metricsToken)) {
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer')
        .send(errorBody('UNAUTHORIZED', 'send the metrics token: Authorization: Bearer <token>'));
    }
    return reply.type(deps.metrics.contentType).send(await deps.metrics.render());
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true }, config: PUBLIC }, async () => app.swagger());

  keyRoutes(app, deps);
  deploymentRoutes(app, deps);
  snapshotRoutes(app, deps);
  fileRoutes(app, deps);
  settingsRoutes(app, deps);
  if (deps.webhooks) webhookRoutes(app, deps.webhooks);
  if (deps.nodes) nodeRoutes(app, deps.nodes);
  if (deps.verifications) verificationRoutes(app, deps.verifications);
  await opts.routes?.(app);

  const webDir = deps.config.webDir;
  if (webDir && fs.existsSync(webDir)) {
    // The dashboard's files are public: every route of this context is marked so.
    await app.register(async (files) => {
      files.addHook('onRoute', (route) => {
        route.config = { ...route.config, ...PUBLIC };
      });
      await files.register(fastifyStatic, { root: webDir, prefix: '/', index: ['index.html'], wildcard: false });
      // Client-side routes (/deployments/…) get the app's index.html.
      files.get('/*', { schema: { hide: true } }, async (req, reply) => {
        if (req.url.startsWith('/api/'))
          return reply.status(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
        return reply.sendFile('index.html');
      });
    });
  }
  return app;
}
