/**
 * app: the HTTP API (and the dashboard's static files), built from its
 * dependencies and not listening: the server listens, tests inject().
 *
 * Every /api/v1 request (but the OpenAPI document) needs a bearer API key;
 * each key is rate limited; bodies over 1 MiB get 413; every request has an
 * id (x-request-id) that the structured logs carry.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import swagger from '@fastify/swagger';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { isDatabaseUnavailable } from '../core/errors.js';
import type { User } from '../db/users.js';
import type { AppDeps } from './deps.js';
import { errorBody, handleError } from './errors.js';
import { RateLimiter } from './rate-limit.js';
import { deploymentRoutes } from './routes/deployments.js';
import { keyRoutes } from './routes/keys.js';
import { settingsRoutes } from './routes/settings.js';
import { snapshotRoutes } from './routes/snapshots.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: User;
  }
}

const BODY_LIMIT = 1024 * 1024;
const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface BuildOptions {
  /** A pino logger for request logs; none when absent (tests). */
  readonly logger?: FastifyBaseLogger;
}

export async function buildApp(deps: AppDeps, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: BODY_LIMIT,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : `req-${randomBytes(6).toString('hex')}`;
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });

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
      info: { title: 'Kova volume snapshots API', version: deps.config.version, description: 'Deployments with persistent volumes, and their snapshots. See docs/api.md.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key: kova_<prefix>.<secret>' } } },
      security: [{ bearer: [] }],
    },
  });

  app.setErrorHandler((err, req, reply) => {
    if (isDatabaseUnavailable(err)) deps.disk?.full('database', err, { request: req.id });
    return handleError(err as Error, req, reply);
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));

  const limiter = new RateLimiter(deps.config.rateLimitPerMinute, deps.clock);
  app.decorateRequest('user', null as unknown as User);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    const url = req.url.split('?')[0] ?? '';
    if (!url.startsWith('/api/v1/') || url === '/api/v1/openapi.json') return;
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    const principal = m ? await deps.keys.authenticate(m[1]!) : null;
    if (!principal) {
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer')
        .send(errorBody('UNAUTHORIZED', m ? 'the API key is unknown, malformed or revoked' : 'send an API key: Authorization: Bearer kova_<prefix>.<secret>'));
    }
    const wait = limiter.hit(principal.keyPrefix);
    if (wait > 0) {
      return reply.status(429).header('retry-after', String(wait)).send(errorBody('RATE_LIMITED', `too many requests; retry in ${wait} s`));
    }
    req.user = principal.user;
  });
  // No body at all is the same as an empty one: every optional-body route accepts it.
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && (req.method === 'POST' || req.method === 'PUT')) req.body = {};
  });
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpRequests.inc({ method: req.method, code: String(reply.statusCode) });
  });

  // Degraded (still 200: the process serves) while the data disk is short of space.
  app.get('/healthz', { schema: { hide: true } }, async () => {
    const disk = deps.disk ? await deps.disk.check() : null;
    return {
      status: disk?.status ?? 'ok',
      runtime: deps.config.runtime,
      version: deps.config.version,
      ...(disk ? { reasons: disk.reasons, freeBytes: disk.freeBytes } : {}),
    };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/plain; version=0.0.4').send(deps.metrics.render()),
  );
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  keyRoutes(app, deps);
  deploymentRoutes(app, deps);
  snapshotRoutes(app, deps);
  settingsRoutes(app, deps);

  const webDir = deps.config.webDir;
  if (webDir && fs.existsSync(webDir)) {
    await app.register(fastifyStatic, { root: webDir, prefix: '/', index: ['index.html'], wildcard: false });
    // Client-side routes (/deployments/…) get the app's index.html.
    app.get('/*', { schema: { hide: true } }, async (req, reply) => {
      if (req.url.startsWith('/api/')) return reply.status(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
      return reply.sendFile('index.html');
    });
  }
  return app;
}
