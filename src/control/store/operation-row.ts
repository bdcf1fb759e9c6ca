/**
 * operation-row: the row of an operation as it is first queued for a node
 * (enqueue, and the recovery move that queues operations for two nodes in
 * one transaction).
 */
import type { Insertable } from 'kysely';
import type { Operation } from '../../network/protocol.js';
import type { OperationsTable } from './schema.js';

export function queuedOperationRow(op: Operation, nodeId: string): Insertable<OperationsTable> {
  return {
    id: op.id,
    node_id: nodeId,
    user_id: op.userId,
    deployment_id: op.payload.deploymentId,
    kind: op.payload.kind,
    payload: JSON.stringify(op.payload),
    status: 'queued',
    result: null,
    created_at: op.createdAt,
    delivered_at: null,
    finished_at: null,
  };
}
