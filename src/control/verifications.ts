/**
 * verifications: the verification routes' interface (VerificationsApi,
 * src/api/deps.ts) in network mode. The checks run on the deployment's node,
 * which alone holds the repository and the checks' journal, so:
 *
 * - a page of the history is a read the node answers with its
 *   VerificationService (relay.ts, kind `verifications`): the same rows,
 *   cursor checks and errors as the all-in-one's;
 * - a check now is an operation (dispatch.ts, kind `verify`), applied once
 *   by its id, which is chosen here; its value is the check's row, queued;
 * - where the checks stand (the settings' `verification`) is read from the
 *   deployment's document, which the node sends again whenever a check or
 *   its schedule changes; null when the node did not report it (an older
 *   node).
 *
 * Each call first checks what the catalogue knows, as the all-in-one
 * checks: the caller's deployment (404 otherwise, another user's included),
 * active (409 DEPLOYMENT_NOT_ACTIVE); a history page or a check then needs
 * the node online (503 NODE_UNAVAILABLE at once, nothing asked).
 */
import type { VerificationsApi } from '../api/deps.js';
import { KovaError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Verification } from '../db/verifications.js';
import type { DeploymentState } from '../network/protocol.js';
import type { CatalogueDeployment, CatalogueNode } from './catalogue.js';
import type { Dispatcher } from './dispatch.js';
import type { ReadRelay } from './relay.js';

/** A history read is about the deployment, not a snapshot: its request names none. */
const NO_SNAPSHOT = '';

/** What the backend knows of deployments and nodes (backend.ts). */
export interface VerificationsLookup {
  /** The caller's active deployment, as the catalogue holds it (404 DEPLOYMENT_NOT_FOUND, 409 DEPLOYMENT_NOT_ACTIVE). */
  active(userId: string, depId: string): Promise<CatalogueDeployment & { state: DeploymentState }>;
  /** The node a deployment runs on (503 NODE_UNAVAILABLE when it was removed). */
  node(nodeId: string): Promise<CatalogueNode>;
}

export function controlVerifications(relay: ReadRelay, dispatcher: Dispatcher, lookup: VerificationsLookup): VerificationsApi {
  /** reachable: the node of the caller's active deployment, online. */
  const reachable = async (userId: string, depId: string): Promise<CatalogueNode> => {
    const d = await lookup.active(userId, depId);
    const node = await lookup.node(d.nodeId);
    dispatcher.assertReachable(node);
    return node;
  };
  return {
    async list(userId, depId, limit, before) {
      const node = await reachable(userId, depId);
      const page = await relay.json<{ verifications?: Verification[] }>(node, userId, depId, NO_SNAPSHOT, {
        kind: 'verifications',
        limit,
        ...(before !== undefined ? { before } : {}),
      });
      if (!Array.isArray(page.verifications))
        throw new KovaError('INTERNAL_ERROR', `node ${node.name} answered a page of checks without them`, { status: 500 });
      return page.verifications;
    },
    async request(userId, depId, full) {
      const node = await reachable(userId, depId);
      const r = await dispatcher.run(node, userId, { kind: 'verify', deploymentId: depId, verificationId: newId('ver'), full });
      const v = r.value as Verification | undefined;
      if (!v || typeof v.id !== 'string')
        throw new KovaError('INTERNAL_ERROR', `node ${node.name} answered a check without it`, { status: 500 });
      return v;
    },
    async status(userId, depId) {
      return (await lookup.active(userId, depId)).state.verification ?? null;
    },
  };
}
