/**
 * operations: what the control plane asks of nodes. Each transition is one
 * conditional UPDATE, so replicas need no lock between them:
 *
 *   queued ──pending──▶ delivered ──finish──▶ done | failed
 *     └──cancel──▶ cancelled
 *
 * `pending` hands a node its delivered operations again until they are
 * finished (at-least-once delivery); `finish` records the first result only,
 * and only from the node the operation is addressed to; `cancel` wins only
 * while no node has been handed the operation. Order is `seq`, the order the
 * database recorded them in. Writers wake waiters on every replica
 * (wake.ts); finished operations older than `retainFinishedMs` are pruned.
 */
import type { Operation, OperationPayload, OperationResult } from '../../network/protocol.js';
import type { Catalogue, CatalogueOperation } from '../catalogue.js';
import { DEFAULTS, type Conn } from './connection.js';
import { applyStates } from './deployments.js';
import type { OperationsTable } from './schema.js';
import { queuedOperationRow } from './operation-row.js';
import { waitUntil } from './wake.js';

type OperationPart = Pick<Catalogue, 'enqueue' | 'pending' | 'finish' | 'cancel' | 'operation' | 'waitResult'>;

type Row = Omit<OperationsTable, 'seq'> & { seq: number };

const toWire = (r: Row): Operation => ({
  id: r.id,
  userId: r.user_id,
  payload: JSON.parse(r.payload) as OperationPayload,
  createdAt: r.created_at,
});

const toOperation = (r: Row): CatalogueOperation => ({
  ...toWire(r),
  nodeId: r.node_id,
  status: r.status,
  result: r.result === null ? null : (JSON.parse(r.result) as OperationResult),
  deliveredAt: r.delivered_at,
  finishedAt: r.finished_at,
});

export function operations(conn: Conn): OperationPart {
  const { db, wake, clock, pollMs } = conn;
  let lastPrune = -Infinity;

  /** prune drops finished operations older than the retention, at most once a minute per catalogue. */
  const prune = async (now: number): Promise<void> => {
    if (now - lastPrune < DEFAULTS.pruneEveryMs) return;
    lastPrune = now;
    await db
      .deleteFrom('operations')
      .where('finished_at', '<', now - conn.retainFinishedMs)
      .execute();
  };

  const operation = async (opId: string): Promise<CatalogueOperation | undefined> => {
    const r = await db.selectFrom('operations').selectAll().where('id', '=', opId).executeTakeFirst();
    return r && toOperation(r);
  };

  /** take marks the node's queued operations delivered and returns every delivered one, oldest first. */
  const take = async (nodeId: string): Promise<Operation[]> => {
    await db
      .updateTable('operations')
      .set({ status: 'delivered', delivered_at: clock.now() })
      .where('node_id', '=', nodeId)
      .where('status', '=', 'queued')
      .execute();
    // Only `delivered`: one queued after the UPDATE waits for the next call, so cancel cannot win on something handed out.
    const rows = await db
      .selectFrom('operations')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('status', '=', 'delivered')
      .orderBy('seq')
      .execute();
    return rows.map(toWire);
  };

  return {
    async enqueue(op, nodeId) {
      await db.insertInto('operations').values(queuedOperationRow(op, nodeId)).execute();
      await wake.notify('ops', nodeId);
      await prune(op.createdAt);
    },
    async pending(nodeId, waitMs, signal) {
      const ops = await waitUntil(wake, 'ops', nodeId, { timeoutMs: waitMs, pollMs, signal }, async () => {
        const got = await take(nodeId);
        return got.length > 0 ? got : undefined;
      });
      return ops ?? [];
    },
    /** The result's documents are stored in the same transaction, so the effect is visible before anyone reads the result. */
    async finish(opId, nodeId, result, at) {
      const recorded = await db.transaction().execute(async (trx) => {
        const r = await trx
          .updateTable('operations')
          .set({ status: result.ok ? 'done' : 'failed', result: JSON.stringify(result), finished_at: at })
          .where('id', '=', opId)
          .where('node_id', '=', nodeId)
          .where('status', 'in', ['queued', 'delivered'])
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) return false;
        if (result.ok) {
          const states = [...(result.state ? [result.state] : []), ...(result.extraStates ?? [])];
          await applyStates(trx, nodeId, states, at);
        }
        return true;
      });
      if (recorded) await wake.notify('results', opId);
      return recorded;
    },
    async cancel(opId, at) {
      const r = await db
        .updateTable('operations')
        .set({ status: 'cancelled', finished_at: at })
        .where('id', '=', opId)
        .where('status', '=', 'queued')
        .executeTakeFirst();
      const cancelled = Number(r.numUpdatedRows) > 0;
      if (cancelled) await wake.notify('results', opId);
      return cancelled;
    },
    operation,
    /** A cancelled operation has no result to wait for: null at once. */
    async waitResult(opId, timeoutMs) {
      const got = await waitUntil(wake, 'results', opId, { timeoutMs, pollMs }, async () => {
        const op = await operation(opId);
        if (op?.status === 'cancelled') return null;
        return op?.result ?? undefined;
      });
      return got ?? null;
    },
  };
}
