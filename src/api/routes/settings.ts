/** routes/settings: automatic snapshot and verification settings of a deployment. */
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { retentionPreviewView, settingsView } from '../../services/views.js';
import type { AppDeps } from '../deps.js';
import { RetentionPreview, SnapshotSettings, errorResponses as errors, ok } from '../contract.js';
import { DeploymentParams, SettingsBody } from '../schemas.js';

export function settingsRoutes(app: FastifyInstance, deps: AppDeps): void {
  const min = deps.config.minSnapshotIntervalMs;
  /** Where the checks of the stored data stand, on a server that runs them. */
  const verificationOf = async (userId: string, depId: string) =>
    deps.verifications ? await deps.verifications.status(userId, depId) : null;
  app.get<{ Params: Static<typeof DeploymentParams> }>(
    '/api/v1/deployments/:id/snapshot-settings',
    {
      schema: {
        tags: ['settings'],
        summary: 'Get automatic snapshot settings',
        params: DeploymentParams,
        response: { 200: ok({ settings: SnapshotSettings }), ...errors },
      },
    },
    async (req) => {
      const s = await deps.settings.get(req.user.id, req.params.id);
      return { success: true, settings: settingsView(s, min, await verificationOf(req.user.id, req.params.id)) };
    },
  );

  app.put<{ Params: Static<typeof DeploymentParams>; Body: Static<typeof SettingsBody> }>(
    '/api/v1/deployments/:id/snapshot-settings',
    {
      schema: {
        tags: ['settings'],
        summary: 'Change automatic snapshot settings',
        params: DeploymentParams,
        body: SettingsBody,
        response: { 200: ok({ settings: SnapshotSettings }), ...errors },
      },
    },
    async (req) => {
      const s = await deps.settings.put(req.user.id, req.params.id, req.body ?? {});
      return { success: true, settings: settingsView(s, min, await verificationOf(req.user.id, req.params.id)) };
    },
  );

  app.post<{ Params: Static<typeof DeploymentParams>; Body: Static<typeof SettingsBody> }>(
    '/api/v1/deployments/:id/snapshot-settings/preview',
    {
      schema: {
        tags: ['settings'],
        summary: 'Preview what settings would keep and delete among the existing automatic snapshots, changing nothing',
        params: DeploymentParams,
        body: SettingsBody,
        response: { 200: ok(RetentionPreview.properties), ...errors },
      },
    },
    async (req) => ({ success: true, ...retentionPreviewView(await deps.settings.preview(req.user.id, req.params.id, req.body ?? {})) }),
  );
}
