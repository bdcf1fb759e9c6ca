/** routes/snapshots: a deployment's snapshots, restores of them, and clones. */
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { deploymentView, restorePlanView, restoreView, snapshotView } from '../../services/views.js';
import type { AppDeps } from '../deps.js';
import { Deployment, Restore, RestorePlan, Snapshot, errorResponses as errors, ok } from '../contract.js';
import {
  CloneBody,
  CreateSnapshotBody,
  DeploymentParams,
  RestoreBody,
  RestoreParams,
  RestorePlanQuery,
  SnapshotParams,
} from '../schemas.js';

/**
 * Views of a frozen list of snapshots (the control plane's catalogue hands
 * out frozen documents, shared while their version holds): made once per
 * list, since a view is a function of its snapshot alone. A list that is
 * not frozen is viewed afresh.
 */
type SnapshotRow = Parameters<typeof snapshotView>[0];
const listViews = new WeakMap<readonly SnapshotRow[], ReturnType<typeof snapshotView>[]>();
function snapshotViews(xs: readonly SnapshotRow[]): ReturnType<typeof snapshotView>[] {
  if (!Object.isFrozen(xs)) return xs.map(snapshotView);
  let views = listViews.get(xs);
  if (!views) {
    views = xs.map(snapshotView);
    listViews.set(xs, views);
  }
  return views;
}

/**
 * The list's whole 200 body, serialized by the route's own response schema
 * once per frozen list: for a long list, serializing is most of a request's
 * work, and the body is a function of the list alone. Bodies of lists that
 * are not frozen are not kept.
 */
const listBodies = new WeakMap<readonly SnapshotRow[], Buffer>();
function listBody(reply: FastifyReply, xs: readonly SnapshotRow[]): Buffer {
  let body = Object.isFrozen(xs) ? listBodies.get(xs) : undefined;
  if (!body) {
    const out = reply.serialize({ success: true, snapshots: snapshotViews(xs) });
    body = typeof out === 'string' ? Buffer.from(out) : Buffer.isBuffer(out) ? out : Buffer.from(out);
    if (Object.isFrozen(xs)) listBodies.set(xs, body);
  }
  return body;
}

export function snapshotRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get<{ Params: Static<typeof DeploymentParams> }>(
    '/api/v1/deployments/:id/snapshots',
    {
      schema: {
        tags: ['snapshots'],
        summary: "List a deployment's snapshots, newest first",
        params: DeploymentParams,
        response: { 200: ok({ snapshots: Type.Array(Snapshot) }), ...errors },
      },
    },
    async (req, reply) => {
      const body = listBody(reply, await deps.snapshots.list(req.user.id, req.params.id));
      return reply.type('application/json; charset=utf-8').send(body);
    },
  );

  app.post<{ Params: Static<typeof DeploymentParams>; Body: Static<typeof CreateSnapshotBody> }>(
    '/api/v1/deployments/:id/snapshots',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Create a snapshot (runs in the background)',
        params: DeploymentParams,
        body: CreateSnapshotBody,
        response: { 202: ok({ snapshot: Snapshot }), ...errors },
      },
    },
    async (req, reply) =>
      reply
        .status(202)
        .send({ success: true, snapshot: snapshotView(await deps.snapshots.create(req.user.id, req.params.id, req.body?.label)) }),
  );

  app.get<{ Params: Static<typeof SnapshotParams> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Get one snapshot',
        params: SnapshotParams,
        response: { 200: ok({ snapshot: Snapshot }), ...errors },
      },
    },
    async (req) => ({ success: true, snapshot: snapshotView(await deps.snapshots.get(req.user.id, req.params.id, req.params.snapshotId)) }),
  );

  app.delete<{ Params: Static<typeof SnapshotParams> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Delete a snapshot (its space is reclaimed in the background)',
        params: SnapshotParams,
        response: { 200: ok({}), ...errors },
      },
    },
    async (req) => {
      await deps.snapshots.delete(req.user.id, req.params.id, req.params.snapshotId);
      return { success: true };
    },
  );

  app.get<{ Params: Static<typeof SnapshotParams>; Querystring: Static<typeof RestorePlanQuery> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId/restore-plan',
    {
      schema: {
        tags: ['restores'],
        summary:
          'Where a restore of the snapshot (or of the chosen paths) would put each of its volumes, what it replaces, and why it would be refused; changes nothing',
        params: SnapshotParams,
        querystring: RestorePlanQuery,
        response: { 200: ok({ plan: RestorePlan }), ...errors },
      },
    },
    async (req) => {
      const q = req.query;
      const wanted =
        q.paths === undefined && q.mode === undefined && q.into === undefined
          ? undefined
          : { paths: q.paths === undefined ? undefined : Array.isArray(q.paths) ? q.paths : [q.paths], mode: q.mode, into: q.into };
      return { success: true, plan: restorePlanView(await deps.restores.plan(req.user.id, req.params.id, req.params.snapshotId, wanted)) };
    },
  );

  app.post<{ Params: Static<typeof SnapshotParams>; Body: Static<typeof RestoreBody> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId/restore',
    {
      schema: {
        tags: ['restores'],
        summary:
          "Restore a snapshot: replaces the data of the volumes it holds (or only the chosen paths, in place or alongside under a new folder) and restarts the services (409 VOLUMES_CHANGED when some of its volumes can't be matched)",
        params: SnapshotParams,
        body: RestoreBody,
        response: { 202: ok({ restore: Restore }), ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body ?? {};
      const wanted =
        b.paths === undefined && b.mode === undefined && b.into === undefined ? undefined : { paths: b.paths, mode: b.mode, into: b.into };
      const r = await deps.restores.request(req.user.id, req.params.id, req.params.snapshotId, b.safetySnapshot ?? true, wanted);
      return reply.status(202).send({ success: true, restore: restoreView(r) });
    },
  );

  app.get<{ Params: Static<typeof DeploymentParams> }>(
    '/api/v1/deployments/:id/restores',
    {
      schema: {
        tags: ['restores'],
        summary: "List a deployment's restores, newest first",
        params: DeploymentParams,
        response: { 200: ok({ restores: Type.Array(Restore) }), ...errors },
      },
    },
    async (req) => ({ success: true, restores: (await deps.restores.list(req.user.id, req.params.id)).map(restoreView) }),
  );

  app.get<{ Params: Static<typeof RestoreParams> }>(
    '/api/v1/deployments/:id/restores/:restoreId',
    {
      schema: {
        tags: ['restores'],
        summary: 'Get one restore',
        params: RestoreParams,
        response: { 200: ok({ restore: Restore }), ...errors },
      },
    },
    async (req) => ({ success: true, restore: restoreView(await deps.restores.get(req.user.id, req.params.id, req.params.restoreId)) }),
  );

  app.post<{ Params: Static<typeof SnapshotParams>; Body: Static<typeof CloneBody> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId/clone',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Create a new deployment whose volumes start from this snapshot',
        params: SnapshotParams,
        body: CloneBody,
        response: { 201: ok({ deployment: Deployment }), ...errors },
      },
    },
    async (req, reply) => {
      const d = await deps.deployments.clone(req.user.id, req.params.id, req.params.snapshotId, req.body?.name);
      return reply.status(201).send({ success: true, deployment: deploymentView(d, await deps.deployments.extras(d)) });
    },
  );
}
