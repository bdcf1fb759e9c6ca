/**
 * reads: browse requests relayed to nodes (src/control/relay.ts), as rows.
 * A read is not an operation: it changes nothing, so it has no journal and
 * no result kept; it is handed out once, and deleted as soon as the replica
 * waiting for it is done (or by anyone once it expired):
 *
 *   queued ──poll──▶ delivered ──answerRead──▶ answered ──(chunks)──▶ deleted
 *     └──withdrawRead──▶ deleted      any state ──dropRead / expiry──▶ deleted
 *
 * An answer that lands on another replica than the waiting one crosses in
 * `read_chunks`: the receiving replica inserts piece after piece while fewer
 * than a window of them wait unread, the waiting one reads and deletes them
 * in order. Each write wakes the other side (channel `reads`, key the read's
 * id). Deleting the read deletes its chunks (foreign key, cascade); inserting
 * a chunk updates the read's row first, so a delete and an insert that race
 * are ordered by that row's lock and no chunk outlives its read.
 */
import { sql } from 'kysely';
import type { Operation, ReadRequest } from '../../network/protocol.js';
import type { Catalogue, CatalogueRead, ReadChunk } from '../catalogue.js';
import { type Conn, DEFAULTS } from './connection.js';
import { takeOperations } from './operations.js';
import type { ReadsTable } from './schema.js';
import { waitUntil } from './wake.js';

type ReadPart = Pick<
  Catalogue,
  'addRead' | 'poll' | 'readRow' | 'waitRead' | 'withdrawRead' | 'answerRead' | 'pushChunk' | 'pullChunk' | 'dropRead' | 'countReads'
>;

const toRead = (r: ReadsTable): CatalogueRead => ({
  id: r.id,
  nodeId: r.node_id,
  status: r.status,
  response:
    r.status === 'answered' && r.response_status !== null
      ? { status: r.response_status, meta: r.response_meta === null ? null : (JSON.parse(r.response_meta) as Record<string, unknown>) }
      : null,
  expiresAt: r.expires_at,
});

export function reads(conn: Conn): ReadPart {
  const { db, wake, clock, pollMs } = conn;
  let lastPrune = -Infinity;

  /** prune deletes expired reads (their chunks go with them), at most once a minute per catalogue. */
  const prune = async (now: number): Promise<void> => {
    if (now - lastPrune < DEFAULTS.pruneEveryMs) return;
    lastPrune = now;
    await db.deleteFrom('reads').where('expires_at', '<', now).execute();
  };

  const readRow = async (id: string): Promise<CatalogueRead | undefined> => {
    const r = await db.selectFrom('reads').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRead(r);
  };

  /** takeReads marks the node's queued reads delivered and returns them (each is handed out once). */
  const takeReads = async (nodeId: string): Promise<ReadRequest[]> => {
    const rows = await db
      .updateTable('reads')
      .set({ status: 'delivered' })
      .where('node_id', '=', nodeId)
      .where('status', '=', 'queued')
      .returning(['request', 'created_at'])
      .execute();
    return rows.sort((a, b) => a.created_at - b.created_at).map((r) => JSON.parse(r.request) as ReadRequest);
  };

  const dropRead = async (id: string): Promise<void> => {
    await db.deleteFrom('reads').where('id', '=', id).execute();
    await wake.notify('reads', id);
  };

  return {
    async addRead(read, nodeId, expiresAt) {
      await prune(clock.now());
      await db
        .insertInto('reads')
        .values({
          id: read.id,
          node_id: nodeId,
          user_id: read.userId,
          deployment_id: read.deploymentId,
          request: JSON.stringify(read),
          status: 'queued',
          response_status: null,
          response_meta: null,
          created_at: read.createdAt,
          expires_at: expiresAt,
        })
        .execute();
      await wake.notify('ops', nodeId);
    },

    async poll(nodeId, waitMs, opts) {
      const got = await waitUntil(wake, 'ops', nodeId, { timeoutMs: waitMs, pollMs, signal: opts.signal }, async () => {
        const operations: Operation[] = await takeOperations(conn, nodeId);
        const handed = opts.reads ? await takeReads(nodeId) : [];
        if (operations.length === 0 && handed.length === 0) return undefined;
        return { operations, ...(opts.reads ? { reads: handed } : {}) };
      });
      return got ?? { operations: [], ...(opts.reads ? { reads: [] } : {}) };
    },

    readRow,

    async waitRead(id, timeoutMs, until, signal) {
      const got = await waitUntil(wake, 'reads', id, { timeoutMs, pollMs, signal }, async () => {
        const r = await readRow(id);
        // Wrapped: undefined (the read is gone) is an answer here, not "keep waiting".
        return until(r) ? { r } : undefined;
      });
      return got === undefined ? null : got.r;
    },

    async withdrawRead(id) {
      const r = await db.deleteFrom('reads').where('id', '=', id).where('status', '=', 'queued').executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },

    async answerRead(id, nodeId, response, expiresAt) {
      const r = await db
        .updateTable('reads')
        .set({
          status: 'answered',
          response_status: response.status,
          response_meta: response.meta === null ? null : JSON.stringify(response.meta),
          expires_at: expiresAt,
        })
        .where('id', '=', id)
        .where('node_id', '=', nodeId)
        .where('status', '=', 'delivered')
        .executeTakeFirst();
      const answered = Number(r.numUpdatedRows) > 0;
      if (answered) await wake.notify('reads', id);
      return answered;
    },

    async pushChunk(id, seq, chunk, opts) {
      const outcome = await waitUntil(
        wake,
        'reads',
        id,
        { timeoutMs: opts.timeoutMs, pollMs, signal: opts.signal },
        async (): Promise<'stored' | 'gone' | undefined> =>
          db.transaction().execute(async (trx) => {
            // The read's row first: a concurrent delete waits for this transaction (or made it find nothing).
            const touched = await trx
              .updateTable('reads')
              .set({ expires_at: opts.expiresAt })
              .where('id', '=', id)
              .where('status', '=', 'answered')
              .executeTakeFirst();
            if (Number(touched.numUpdatedRows) === 0) return 'gone';
            const waiting = await trx
              .selectFrom('read_chunks')
              .select(sql<number>`count(*)`.as('n'))
              .where('read_id', '=', id)
              .executeTakeFirstOrThrow();
            if (Number(waiting.n) >= opts.window) return undefined;
            await trx
              .insertInto('read_chunks')
              .values({ read_id: id, seq, data: chunk.data, last: chunk.last ? 1 : 0 })
              .execute();
            return 'stored';
          }),
      );
      if (outcome === 'stored') await wake.notify('reads', id);
      return outcome ?? 'full';
    },

    async pullChunk(id, seq, timeoutMs, signal) {
      const got = await waitUntil(wake, 'reads', id, { timeoutMs, pollMs, signal }, async (): Promise<ReadChunk | 'gone' | undefined> => {
        const c = await db
          .selectFrom('read_chunks')
          .select(['data', 'last'])
          .where('read_id', '=', id)
          .where('seq', '=', seq)
          .executeTakeFirst();
        if (c) {
          await db.deleteFrom('read_chunks').where('read_id', '=', id).where('seq', '=', seq).execute();
          return { data: Buffer.from(c.data), last: c.last === 1 };
        }
        const r = await db.selectFrom('reads').select('id').where('id', '=', id).executeTakeFirst();
        return r ? undefined : 'gone';
      });
      if (got !== undefined && got !== 'gone') await wake.notify('reads', id);
      return got ?? null;
    },

    dropRead,

    async countReads() {
      const n = async (table: 'reads' | 'read_chunks'): Promise<number> =>
        Number(
          (
            await db
              .selectFrom(table)
              .select(sql<number>`count(*)`.as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      return { reads: await n('reads'), chunks: await n('read_chunks') };
    },
  };
}
