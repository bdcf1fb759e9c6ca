/** routes/webhooks: the caller's webhooks and their delivery logs. */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../../core/errors.js';
import { deliveryView, webhookView } from '../../services/views.js';
import type { WebhookService } from '../../services/webhooks/service.js';
import { Webhook, WebhookDelivery, errorResponses as errors, ok } from '../contract.js';
import { CreateWebhookBody, DeliveriesQuery, WebhookParams } from '../schemas.js';

function pageLimit(limit: string | undefined): number | undefined {
  if (limit === undefined) return undefined;
  const n = /^[0-9]{1,4}$/.test(limit) ? Number(limit) : NaN;
  if (Number.isNaN(n)) throw new ValidationError('INVALID_REQUEST', 'limit must be an integer from 1 to 200');
  return n;
}

export function webhookRoutes(app: FastifyInstance, hooks: WebhookService): void {
  app.get(
    '/api/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'List your webhooks, newest first, each with its latest delivery',
        response: { 200: ok({ webhooks: Type.Array(Webhook) }), ...errors },
      },
    },
    async (req) => ({ success: true, webhooks: (await hooks.list(req.user.id)).map((h) => webhookView(h.webhook, h.lastDelivery)) }),
  );

  app.post<{ Body: Static<typeof CreateWebhookBody> }>(
    '/api/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Add a webhook; its signing secret is shown only in this response',
        body: CreateWebhookBody,
        response: { 201: ok({ webhook: Webhook, secret: Type.String() }), ...errors },
      },
    },
    async (req, reply) => {
      const { webhook, secret } = await hooks.create(req.user.id, req.body);
      return reply.status(201).send({ success: true, webhook: webhookView(webhook, null), secret });
    },
  );

  app.delete<{ Params: Static<typeof WebhookParams> }>(
    '/api/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Delete one of your webhooks, with its delivery log (pending deliveries are not sent)',
        params: WebhookParams,
        response: { 200: ok({}), ...errors },
      },
    },
    async (req) => {
      await hooks.delete(req.user.id, req.params.id);
      return { success: true };
    },
  );

  app.get<{ Params: Static<typeof WebhookParams>; Querystring: Static<typeof DeliveriesQuery> }>(
    '/api/v1/webhooks/:id/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: "A webhook's delivery log, newest first, one page at a time",
        params: WebhookParams,
        querystring: DeliveriesQuery,
        response: { 200: ok({ deliveries: Type.Array(WebhookDelivery), cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (req) => {
      const page = await hooks.deliveries(req.user.id, req.params.id, { cursor: req.query.cursor, limit: pageLimit(req.query.limit) });
      return { success: true, deliveries: page.deliveries.map(deliveryView), cursor: page.cursor };
    },
  );
}
