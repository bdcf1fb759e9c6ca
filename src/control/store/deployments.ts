/**
 * deployments: where each deployment lives and the newest document its node
 * reported. A node acts only on deployments placed on it: applyState
 * matches on (deployment id, node id), so a document about another node's
 * deployment changes nothing and is not acknowledged. Newer versions only:
 * the version condition sits in the UPDATE itself, so two replicas
 * applying documents of one deployment at once keep the newest.
 */
import type { Kysely } from 'kysely';
import type { DeploymentState } from '../../network/protocol.js';
import type { Catalogue, CatalogueDeployment } from '../catalogue.js';
import type { Conn } from './connection.js';
import { DeploymentExistsError, NodeNotFoundError, isForeignKeyViolation } from './errors.js';
import type { DeploymentsTable, Schema } from './schema.js';

type DeploymentPart = Pick<Catalogue, 'place' | 'unplace' | 'deployment' | 'deploymentsOf' | 'applyState'>;

const toDeployment = (r: DeploymentsTable): CatalogueDeployment => ({
  id: r.id,
  userId: r.user_id,
  nodeId: r.node_id,
  state: r.state === null ? null : (JSON.parse(r.state) as DeploymentState),
});

/**
 * applyStates stores the documents of `nodeId` newer than the ones held, on
 * `db` (a transaction when called from finish). Returns the version held
 * afterwards for each deployment placed on that node.
 */
export async function applyStates(
  db: Kysely<Schema>,
  nodeId: string,
  states: readonly DeploymentState[],
  at: number,
): Promise<Array<{ deploymentId: string; version: number }>> {
  const acked: Array<{ deploymentId: string; version: number }> = [];
  for (const s of states) {
    const id = s.deployment.id;
    await db
      .updateTable('deployments')
      .set({ state: JSON.stringify(s), version: s.version, status: s.deployment.status, updated_at: at })
      .where('id', '=', id)
      .where('node_id', '=', nodeId)
      .where((eb) => eb.or([eb('version', 'is', null), eb('version', '<', s.version)]))
      .execute();
    const held = await db.selectFrom('deployments').select('version').where('id', '=', id).where('node_id', '=', nodeId).executeTakeFirst();
    if (held && held.version !== null) acked.push({ deploymentId: id, version: held.version });
  }
  return acked;
}

export function deployments({ db, clock }: Conn): DeploymentPart {
  return {
    async place(id, userId, nodeId, at) {
      try {
        await db
          .insertInto('deployments')
          .values({ id, user_id: userId, node_id: nodeId, status: 'placed', version: null, state: null, created_at: at, updated_at: at })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      } catch (err) {
        if (isForeignKeyViolation(err)) {
          const node = await db.selectFrom('nodes').select('id').where('id', '=', nodeId).executeTakeFirst();
          if (!node) throw new NodeNotFoundError(nodeId);
        }
        throw err;
      }
      // Placing the same deployment twice is harmless; placing an id someone else has is not.
      const r = await db.selectFrom('deployments').select(['user_id', 'node_id']).where('id', '=', id).executeTakeFirstOrThrow();
      if (r.user_id !== userId || r.node_id !== nodeId) throw new DeploymentExistsError(id);
    },
    async unplace(id) {
      await db.deleteFrom('deployments').where('id', '=', id).where('state', 'is', null).execute();
    },
    async deployment(id) {
      const r = await db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
      return r && toDeployment(r);
    },
    async deploymentsOf(userId) {
      const rows = await db
        .selectFrom('deployments')
        .selectAll()
        .where('user_id', '=', userId)
        .where('state', 'is not', null)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      return rows.map(toDeployment);
    },
    async applyState(nodeId, states) {
      if (states.length === 0) return [];
      return db.transaction().execute((trx) => applyStates(trx, nodeId, states, clock.now()));
    },
  };
}
