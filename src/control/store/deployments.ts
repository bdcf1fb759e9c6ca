/**
 * deployments: where each deployment lives and the newest document its node
 * reported. A node acts only on deployments placed on it: applyState
 * matches on (deployment id, node id), so a document about another node's
 * deployment changes nothing and is not acknowledged. Newer versions only:
 * the version condition sits in the UPDATE itself, so two replicas
 * applying documents of one deployment at once keep the newest.
 *
 * Reads: a document of 1,000 snapshots is ~400 KB of JSON; fetching and
 * parsing it on every GET costs tens of milliseconds. A version only grows
 * and names one content, so each catalogue keeps the documents it parsed
 * by (id, version): a read fetches the row without its state first and the
 * state only when this catalogue has not parsed that version yet. The
 * database stays the only truth (every read asks it for the version).
 */
import type { Kysely } from 'kysely';
import { DEFAULTS } from './connection.js';
import type { DeploymentState } from '../../network/protocol.js';
import type { Catalogue, CatalogueDeployment } from '../catalogue.js';
import type { Conn } from './connection.js';
import { DeploymentExistsError, NodeNotFoundError, isForeignKeyViolation } from './errors.js';
import type { DeploymentsTable, Schema } from './schema.js';
import { queuedOperationRow } from './operation-row.js';

type DeploymentPart = Pick<Catalogue, 'place' | 'unplace' | 'deployment' | 'deploymentsOf' | 'applyState' | 'move' | 'moveBack'>;

type Head = Pick<DeploymentsTable, 'id' | 'user_id' | 'node_id' | 'moved_from' | 'version'>;

/** Cached documents are shared by every reader: frozen, so a caller that changes one fails loudly instead of changing it for all. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Parsed documents by deployment id, least recently read first. */
class DocumentCache {
  private readonly docs = new Map<string, DeploymentState>();
  constructor(private readonly max: number) {}

  get(id: string, version: number): DeploymentState | undefined {
    const d = this.docs.get(id);
    if (!d || d.version !== version) return undefined;
    this.docs.delete(id);
    this.docs.set(id, d);
    return d;
  }

  /** peek returns the document held for `id`, whatever its version. */
  peek(id: string): DeploymentState | undefined {
    return this.docs.get(id);
  }

  set(id: string, d: DeploymentState): void {
    this.docs.delete(id);
    this.docs.set(id, d);
    if (this.docs.size > this.max) this.docs.delete(this.docs.keys().next().value!);
  }
}

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

export function deployments({ db, clock, wake }: Conn): DeploymentPart {
  const cache = new DocumentCache(DEFAULTS.cachedDocuments);
  const head = () => db.selectFrom('deployments').select(['id', 'user_id', 'node_id', 'moved_from', 'version']);

  /** withStates completes rows with their documents: from the cache, the rest in one query. */
  const withStates = async (rows: Head[]): Promise<CatalogueDeployment[]> => {
    const missing = rows.filter((r) => r.version !== null && !cache.get(r.id, r.version)).map((r) => r.id);
    if (missing.length > 0) {
      const fetched = await db.selectFrom('deployments').select(['id', 'state']).where('id', 'in', missing).execute();
      for (const f of fetched) if (f.state !== null) cache.set(f.id, deepFreeze(JSON.parse(f.state) as DeploymentState));
    }
    return rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      nodeId: r.node_id,
      movedFrom: r.moved_from ?? null,
      // A document newer than the head (applied in between) is as good: versions only grow.
      state: r.version === null ? null : (cache.get(r.id, r.version) ?? cache.peek(r.id) ?? null),
    }));
  };

  return {
    async place(id, userId, nodeId, at, reservedBytes = 0) {
      try {
        await db
          .insertInto('deployments')
          .values({
            id,
            user_id: userId,
            node_id: nodeId,
            status: 'placed',
            version: null,
            state: null,
            reserved_bytes: reservedBytes,
            created_at: at,
            updated_at: at,
          })
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
      const r = await head().where('id', '=', id).executeTakeFirst();
      return r && (await withStates([r]))[0];
    },
    async deploymentsOf(userId) {
      const rows = await head()
        .where('user_id', '=', userId)
        .where('state', 'is not', null)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      return withStates(rows);
    },
    async applyState(nodeId, states) {
      if (states.length === 0) return [];
      return db.transaction().execute((trx) => applyStates(trx, nodeId, states, clock.now()));
    },
    async move(id, from, to, reservedBytes, ops, at) {
      const moved = await db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom('deployments')
          .select(['state'])
          .where('id', '=', id)
          .where('node_id', '=', from)
          .executeTakeFirst();
        if (!row) return false;
        const state = row.state === null ? null : JSON.stringify({ ...(JSON.parse(row.state) as DeploymentState), version: 0 });
        const r = await trx
          .updateTable('deployments')
          .set({ node_id: to, moved_from: from, version: 0, state, reserved_bytes: reservedBytes, updated_at: at })
          .where('id', '=', id)
          .where('node_id', '=', from)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) return false;
        for (const { op, nodeId } of ops) {
          await trx.insertInto('operations').values(queuedOperationRow(op, nodeId)).execute();
        }
        return true;
      });
      if (moved) for (const nodeId of new Set(ops.map((o) => o.nodeId))) await wake.notify('ops', nodeId);
      return moved;
    },
    async moveBack(id, from, to, withdraw, at) {
      await db.transaction().execute(async (trx) => {
        if (withdraw.length > 0) {
          await trx
            .updateTable('operations')
            .set({ status: 'cancelled', finished_at: at })
            .where('id', 'in', [...withdraw])
            .where('status', '=', 'queued')
            .execute();
        }
        await trx
          .updateTable('deployments')
          .set({ node_id: from, moved_from: null, updated_at: at })
          .where('id', '=', id)
          .where('node_id', '=', to)
          .execute();
      });
    },
  };
}
