/** routes/deployments: deployments from SDL, and their lifecycle. */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Deployment as DeploymentRow } from '../../services/models.js';
import { deploymentView } from '../../services/views.js';
import { Deployment, Recovery, errorResponses as errors, ok } from '../contract.js';
import type { AppDeps } from '../deps.js';
import { CreateDeploymentBody, DeploymentParams, RecoverDeploymentBody, UpdateDeploymentBody } from '../schemas.js';

const one = ok({ deployment: Deployment });

export function deploymentRoutes(app: FastifyInstance, deps: AppDeps): void {
  const view = async (d: DeploymentRow) => deploymentView(d, await deps.deployments.extras(d));

  app.post<{ Body: Static<typeof CreateDeploymentBody> }>(
    '/api/v1/deployments',
    {
      schema: {
        tags: ['deployments'],
        summary: 'Create a deployment from an SDL',
        body: CreateDeploymentBody,
        response: { 201: one, ...errors },
      },
    },
    async (req, reply) =>
      reply
        .status(201)
        .send({ success: true, deployment: await view(await deps.deployments.create(req.user.id, req.body.sdl, req.body.name)) }),
  );

  app.get(
    '/api/v1/deployments',
    {
      schema: {
        tags: ['deployments'],
        summary: 'List your deployments, newest first',
        response: { 200: ok({ deployments: Type.Array(Deployment) }), ...errors },
      },
    },
    async (req) => ({ success: true, deployments: await Promise.all((await deps.deployments.list(req.user.id)).map(view)) }),
  );

  app.get<{ Params: Static<typeof DeploymentParams> }>(
    '/api/v1/deployments/:id',
    { schema: { tags: ['deployments'], summary: 'Get a deployment', params: DeploymentParams, response: { 200: one, ...errors } } },
    async (req) => ({ success: true, deployment: await view(await deps.deployments.get(req.user.id, req.params.id)) }),
  );

  app.put<{ Params: Static<typeof DeploymentParams>; Body: Static<typeof UpdateDeploymentBody> }>(
    '/api/v1/deployments/:id',
    {
      schema: {
        tags: ['deployments'],
        summary: 'Update the SDL and restart the services (after a before-update snapshot)',
        params: DeploymentParams,
        body: UpdateDeploymentBody,
        response: { 202: one, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send({
        success: true,
        deployment: await view(await deps.deployments.update(req.user.id, req.params.id, req.body.sdl, req.body.snapshot ?? true)),
      }),
  );

  app.post<{ Params: Static<typeof DeploymentParams> }>(
    '/api/v1/deployments/:id/restart',
    { schema: { tags: ['deployments'], summary: 'Restart the services', params: DeploymentParams, response: { 202: one, ...errors } } },
    async (req, reply) =>
      reply.status(202).send({ success: true, deployment: await view(await deps.deployments.restart(req.user.id, req.params.id)) }),
  );

  app.post<{ Params: Static<typeof DeploymentParams> }>(
    '/api/v1/deployments/:id/close',
    {
      schema: {
        tags: ['deployments'],
        summary: 'Close: stop the services, delete the volumes and all snapshots',
        params: DeploymentParams,
        response: { 200: one, ...errors },
      },
    },
    async (req) => ({ success: true, deployment: await view(await deps.deployments.close(req.user.id, req.params.id)) }),
  );

  const recover = deps.deployments.recover?.bind(deps.deployments);
  if (recover) {
    app.post<{ Params: Static<typeof DeploymentParams>; Body: Static<typeof RecoverDeploymentBody> }>(
      '/api/v1/deployments/:id/recover',
      {
        schema: {
          tags: ['deployments'],
          summary: 'Run a deployment whose node is offline or removed on another node, from its off-node copy (network mode)',
          params: DeploymentParams,
          body: RecoverDeploymentBody,
          response: { 202: ok({ deployment: Deployment, recovery: Recovery }), ...errors },
        },
      },
      async (req, reply) => {
        const r = await recover(req.user.id, req.params.id, req.body?.snapshotId);
        return reply.status(202).send({ success: true, deployment: await view(r.deployment), recovery: r.recovery });
      },
    );
  }
}
