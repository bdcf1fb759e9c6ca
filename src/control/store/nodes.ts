/**
 * nodes: the nodes the operator added, their heartbeat and capacity. A
 * node's count of deployments is read with it (placed and active ones);
 * whether it is online is derived on read from the heartbeat time
 * (nodeStatus in catalogue.ts), so no replica has to notice a timeout.
 */
import { ValidationError } from '../../core/errors.js';
import { isId, newId } from '../../core/ids.js';
import type { Capacity } from '../../network/protocol.js';
import type { Catalogue, CatalogueNode } from '../catalogue.js';
import type { Conn } from './connection.js';
import { NodeExistsError, NodeInUseError, NodeNotFoundError, isForeignKeyViolation, isUniqueViolation } from './errors.js';
import type { NodesTable } from './schema.js';

type NodePart = Pick<Catalogue, 'addNode' | 'nodes' | 'node' | 'nodeByTokenHash' | 'setDraining' | 'removeNode' | 'hello' | 'heartbeat'>;

type Row = NodesTable & { deployments: unknown; reserved: unknown };

const toNode = (r: Row): CatalogueNode => ({
  id: r.id,
  name: r.name,
  draining: r.draining === 1,
  createdAt: r.created_at,
  lastHeartbeatAt: r.last_heartbeat_at,
  capacity: r.capacity === null ? null : (JSON.parse(r.capacity) as Capacity),
  version: r.version,
  runtime: r.runtime,
  bootId: r.boot_id,
  offsiteTarget: r.offsite_target ?? null,
  deployments: Number(r.deployments),
  reservedBytes: Number(r.reserved ?? 0),
});

/**
 * checkNodeName: 1-63 lower-case letters, digits, '.', '-' and '_', starting
 * with a letter or digit, and not of the form of a node id (commands take
 * either).
 */
export function checkNodeName(name: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name) || isId('node', name)) {
    throw new ValidationError(
      'INVALID_NODE_NAME',
      "node names are 1-63 characters: lower-case letters, digits, '.', '-' and '_', starting with a letter or digit (not node-…)",
      { name },
    );
  }
  return name;
}

export function nodes({ db }: Conn): NodePart {
  const select = () =>
    db
      .selectFrom('nodes')
      .selectAll('nodes')
      .select((eb) =>
        eb
          .selectFrom('deployments')
          .whereRef('deployments.node_id', '=', 'nodes.id')
          .where('deployments.status', 'in', ['placed', 'active'])
          .select(eb.fn.countAll().as('n'))
          .as('deployments'),
      )
      .select((eb) =>
        eb
          .selectFrom('deployments')
          .whereRef('deployments.node_id', '=', 'nodes.id')
          .where('deployments.status', 'in', ['placed', 'active'])
          .select((q) => q.fn.sum<number>('deployments.reserved_bytes').as('r'))
          .as('reserved'),
      );
  const node = async (idOrName: string): Promise<CatalogueNode | undefined> => {
    const r = await select()
      .where((eb) => eb.or([eb('nodes.id', '=', idOrName), eb('nodes.name', '=', idOrName)]))
      .executeTakeFirst();
    return r && toNode(r);
  };
  const mustExist = (updated: { numUpdatedRows: bigint }, id: string): void => {
    if (Number(updated.numUpdatedRows) === 0) throw new NodeNotFoundError(id);
  };
  return {
    async addNode(name, tokenHash, at) {
      checkNodeName(name);
      const id = newId('node');
      try {
        await db.insertInto('nodes').values({ id, name, token_hash: tokenHash, draining: 0, created_at: at }).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw new NodeExistsError(name);
        throw err;
      }
      return (await node(id))!;
    },
    async nodes() {
      return (await select().orderBy('nodes.name').execute()).map(toNode);
    },
    node,
    async nodeByTokenHash(tokenHash) {
      const r = await select().where('nodes.token_hash', '=', tokenHash).executeTakeFirst();
      return r && toNode(r);
    },
    async setDraining(id, draining) {
      mustExist(
        await db
          .updateTable('nodes')
          .set({ draining: draining ? 1 : 0 })
          .where('id', '=', id)
          .executeTakeFirst(),
        id,
      );
    },
    /**
     * Closed deployments and finished operations of the node go with it. A
     * placement that another replica commits meanwhile makes the delete fail
     * on the deployments → nodes foreign key: NODE_IN_USE, nothing removed.
     */
    async removeNode(id) {
      const n = await node(id);
      if (!n) throw new NodeNotFoundError(id);
      if (n.deployments > 0) throw new NodeInUseError(n.name, n.deployments);
      try {
        await db.transaction().execute(async (trx) => {
          await trx.deleteFrom('deployments').where('node_id', '=', n.id).where('status', '=', 'closed').execute();
          await trx.deleteFrom('operations').where('node_id', '=', n.id).execute();
          await trx.deleteFrom('nodes').where('id', '=', n.id).execute();
        });
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new NodeInUseError(n.name, (await node(id))?.deployments ?? 1);
        throw err;
      }
    },
    async hello(id, info, at) {
      mustExist(
        await db
          .updateTable('nodes')
          .set({
            version: info.version,
            runtime: info.runtime,
            boot_id: info.bootId,
            offsite_target: info.offsiteTarget ?? null,
            last_heartbeat_at: at,
          })
          .where('id', '=', id)
          .executeTakeFirst(),
        id,
      );
    },
    async heartbeat(id, capacity, at) {
      mustExist(
        await db
          .updateTable('nodes')
          .set({ capacity: JSON.stringify(capacity), last_heartbeat_at: at })
          .where('id', '=', id)
          .executeTakeFirst(),
        id,
      );
    },
  };
}
