/** routes/verifications: checks that a deployment's stored data still reads back intact, and asking for one now. */
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../../core/errors.js';
import { verificationView } from '../../services/views.js';
import type { VerificationsApi } from '../deps.js';
import { Verification, errorResponses as errors, ok } from '../contract.js';
import { DeploymentParams, RequestVerificationBody, VerificationsQuery } from '../schemas.js';

const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;

function pageLimit(limit: string | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE;
  const n = /^[0-9]{1,4}$/.test(limit) ? Number(limit) : NaN;
  if (!(n >= 1 && n <= MAX_PAGE)) throw new ValidationError('INVALID_REQUEST', `limit must be an integer from 1 to ${MAX_PAGE}`);
  return n;
}

export function verificationRoutes(app: FastifyInstance, api: VerificationsApi): void {
  app.get<{ Params: Static<typeof DeploymentParams>; Querystring: Static<typeof VerificationsQuery> }>(
    '/api/v1/deployments/:id/verifications',
    {
      schema: {
        tags: ['verifications'],
        summary: "A deployment's checks of its stored data, newest first, one page at a time",
        params: DeploymentParams,
        querystring: VerificationsQuery,
        response: {
          200: ok({
            verifications: Type.Array(Verification),
            cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as cursor for the next (older) page; null: no more.' }),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const limit = pageLimit(req.query.limit);
      const page = await api.list(req.user.id, req.params.id, limit + 1, req.query.cursor);
      const shown = page.slice(0, limit);
      return {
        success: true,
        verifications: shown.map(verificationView),
        cursor: page.length > limit ? shown[shown.length - 1]!.id : null,
      };
    },
  );

  app.post<{ Params: Static<typeof DeploymentParams>; Body: Static<typeof RequestVerificationBody> }>(
    '/api/v1/deployments/:id/verifications',
    {
      schema: {
        tags: ['verifications'],
        summary: 'Check now: the next part of the stored data, or all of it with full (runs in the background)',
        params: DeploymentParams,
        body: RequestVerificationBody,
        response: { 202: ok({ verification: Verification }), ...errors },
      },
    },
    async (req, reply) => {
      const v = await api.request(req.user.id, req.params.id, req.body?.full ?? false);
      return reply.status(202).send({ success: true, verification: verificationView(v) });
    },
  );
}
