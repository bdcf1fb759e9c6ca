/** routes/settings: automatic snapshot settings of a deployment. */
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { retentionPreviewView, settingsView } from '../../services/views.js';
import type { AppDeps } from '../deps.js';
import { RetentionPreview, SnapshotSettings, errorResponses as errors, ok } from '../contract.js';
import { DeploymentParams, SettingsBody } from '../schemas.js';

export function settingsRoutes(app: FastifyInstance, deps: AppDeps): void {
  const min = deps.config.minSnapshotIntervalMs;
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
    async (req) => ({ success: true, settings: settingsView(await deps.settings.get(req.user.id, req.params.id), min) }),
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
    async (req) => ({ success: true, settings: settingsView(await deps.settings.put(req.user.id, req.params.id, req.body ?? {}), min) }),
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
