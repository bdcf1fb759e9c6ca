/** routes/keys: the caller's API keys, and who the caller is. */
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { iso } from '../../core/clock.js';
import { formatDuration } from '../../core/units.js';
import type { ApiKey } from '../../services/models.js';
import type { AppDeps } from '../deps.js';
import { CreateKeyBody, KeyParams } from '../schemas.js';

const keyView = (k: ApiKey) => ({
  prefix: k.prefix,
  label: k.label,
  createdAt: iso(k.createdAt),
  lastUsedAt: k.lastUsedAt === null ? null : iso(k.lastUsedAt),
  revokedAt: k.revokedAt === null ? null : iso(k.revokedAt),
});

export function keyRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Body: Static<typeof CreateKeyBody> }>(
    '/api/v1/api-keys',
    { schema: { tags: ['api-keys'], summary: 'Create an API key for yourself; the token is shown only in this response', body: CreateKeyBody } },
    async (req, reply) => {
      const { token, key } = await deps.keys.create(req.user.id, req.body?.label ?? null);
      return reply.status(201).send({ success: true, token, apiKey: keyView(key) });
    },
  );

  app.get('/api/v1/api-keys', { schema: { tags: ['api-keys'], summary: 'List your API keys' } }, async (req) => ({
    success: true,
    apiKeys: deps.keys.list(req.user.id).map(keyView),
  }));

  app.delete<{ Params: Static<typeof KeyParams> }>(
    '/api/v1/api-keys/:prefix',
    { schema: { tags: ['api-keys'], summary: 'Revoke one of your API keys (effective immediately)', params: KeyParams } },
    async (req) => {
      deps.keys.revoke(req.params.prefix, req.user.id);
      return { success: true };
    },
  );

  app.get('/api/v1/me', { schema: { tags: ['api-keys'], summary: 'Who you are, and server settings the dashboard needs' } }, async (req) => ({
    success: true,
    user: { id: req.user.id, name: req.user.name },
    server: { version: deps.config.version, runtime: deps.config.runtime, minSnapshotInterval: formatDuration(deps.config.minSnapshotIntervalMs) },
  }));
}
