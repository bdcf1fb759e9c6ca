/**
 * routes/nodes: the nodes a control plane runs deployments on (network mode
 * only: the all-in-one registers no such route). Admins only.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ErrorResponse, NodeSummary, errorResponses as errors, ok } from '../contract.js';
import type { NodesApi } from '../deps.js';

export function nodeRoutes(app: FastifyInstance, nodes: NodesApi): void {
  app.get(
    '/api/v1/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary: 'List the nodes, with their status and capacity (admins only)',
        response: { 200: ok({ nodes: Type.Array(NodeSummary) }), 403: ErrorResponse, ...errors },
      },
    },
    async (req) => ({ success: true, nodes: await nodes.list(req.user.id) }),
  );
}
