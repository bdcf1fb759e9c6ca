/** routes/keys: the caller's API keys, and who the caller is. */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { apiKeyView, meView } from '../../services/views.js';
import { ApiKey, Me, errorResponses, ok } from '../contract.js';
import type { AppDeps } from '../deps.js';
import { CreateKeyBody, KeyParams } from '../schemas.js';

export function keyRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Body: Static<typeof CreateKeyBody> }>(
    '/api/v1/api-keys',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key for yourself; the token is shown only in this response',
        body: CreateKeyBody,
        response: { 201: ok({ token: Type.String(), apiKey: ApiKey }), ...errorResponses },
      },
    },
    async (req, reply) => {
      const { token, key } = await deps.keys.create(req.user.id, req.body?.label ?? null);
      return reply.status(201).send({ success: true, token, apiKey: apiKeyView(key) });
    },
  );

  app.get(
    '/api/v1/api-keys',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'List your API keys',
        response: { 200: ok({ apiKeys: Type.Array(ApiKey) }), ...errorResponses },
      },
    },
    async (req) => ({ success: true, apiKeys: (await deps.keys.list(req.user.id)).map(apiKeyView) }),
  );

  app.delete<{ Params: Static<typeof KeyParams> }>(
    '/api/v1/api-keys/:prefix',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Revoke one of your API keys (effective immediately)',
        params: KeyParams,
        response: { 200: ok({}), ...errorResponses },
      },
    },
    async (req) => {
      await deps.keys.revoke(req.params.prefix, req.user.id);
      return { success: true };
    },
  );

  app.get(
    '/api/v1/me',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Who you are, and server settings the dashboard needs',
        response: { 200: ok(Me.properties), ...errorResponses },
      },
    },
    // Network mode is the server that has nodes: the one that serves GET /api/v1/nodes.
    async (req) => ({ success: true, ...meView(req.user, req.role, { ...deps.config, mode: deps.nodes ? 'network' : 'all-in-one' }) }),
  );
}
