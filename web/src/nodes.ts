/**
 * nodes: what the dashboard says about the node a deployment runs on
 * (network mode; `node` is null from `kova serve`, where none of this shows).
 */
import type { Deployment } from './api';

/**
 * nodeUnavailable is why the actions that need the deployment's node (restart,
 * update, close, snapshot, restore, clone, delete, settings) cannot run now,
 * or null when they can. Only an offline node stops them: a draining node
 * takes no new deployments but still serves its own.
 */
export function nodeUnavailable(d: Deployment): string | null {
  if (d.status !== 'active' || d.node?.status !== 'offline') return null;
  return `Unavailable while the node ${d.node.name} is offline`;
}

/** The id of the banner that explains it, for the disabled buttons' aria-describedby. */
export const NODE_BANNER_ID = 'node-offline-banner';
