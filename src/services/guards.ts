/**
 * guards: the checks every deployment-scoped request starts with. Another
 * user's deployment is indistinguishable from a missing one.
 */
import { ConflictError, NotFoundError } from '../core/errors.js';
import type { Deployment } from '../db/deployments.js';
import type { Store } from '../db/store.js';
import type { Job } from '../db/jobs.js';
import { JobKind, OPERATION_KINDS } from './context.js';

export function ownedDeployment(store: Store, userId: string, id: string): Deployment {
  const d = store.deployments.forUser(id, userId);
  if (!d) throw new NotFoundError('DEPLOYMENT_NOT_FOUND', `deployment ${id} not found`);
  return d;
}

export function activeDeployment(store: Store, userId: string, id: string): Deployment {
  const d = ownedDeployment(store, userId, id);
  if (d.status !== 'active') throw new ConflictError('DEPLOYMENT_NOT_ACTIVE', `deployment ${id} is ${d.status}`);
  return d;
}

/** assertIdle throws 409 while another operation on the deployment is queued or running. */
export function assertIdle(store: Store, deploymentId: string): void {
  const busy = store.jobs.activeFor(deploymentId, OPERATION_KINDS);
  if (busy.length > 0) {
    throw new ConflictError(
      'OPERATION_IN_PROGRESS',
      `another operation (${busy[0]!.kind}) is in progress on deployment ${deploymentId}; try again when it has finished`,
      {
        operation: busy[0]!.kind,
      },
    );
  }
}

/** pendingClones returns the queued or running clones made from a deployment's snapshots. */
export function pendingClones(store: Store, deploymentId: string, snapshotId?: string): Job[] {
  return store.jobs
    .activeOfKind(JobKind.Clone)
    .filter((j) => j.payload.sourceDeploymentId === deploymentId && (snapshotId === undefined || j.payload.snapshotId === snapshotId));
}

/** currentOperation names the operation in progress on a deployment, if any. */
export function currentOperation(store: Store, deploymentId: string): string | null {
  return store.jobs.activeFor(deploymentId, OPERATION_KINDS)[0]?.kind ?? null;
}

/** sanitize removes host paths from a message shown to a deployment's owner. */
export function sanitize(message: string, dataDir: string): string {
  return message.split(dataDir).join('');
}
