/**
 * reads-testing: the contract of the catalogue's relayed reads (reads.ts)
 * as one suite, run against SQLite (unit, reads.test.ts) and a real
 * PostgreSQL (test/catalogue-postgres.test.ts). Two catalogues on one
 * database stand for two replicas.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ReadRequest } from '../../network/protocol.js';
import type { Catalogue } from '../catalogue.js';
import { type CatalogueOptions, openCatalogue } from './index.js';
import type { CatalogueTarget } from './testing.js';

const read = (id: string, createdAt = 1_000): ReadRequest => ({
  id,
  userId: 'usr-aaaaaaaaaaaa',
  deploymentId: 'dep-aaaaaaaaaaaa',
  snapshotId: 'snap-aaaaaaaaaaaa',
  payload: { kind: 'list', path: [] },
  createdAt,
});

export function readsSuite(name: string, target: CatalogueTarget): void {
  describe(`relayed reads on ${name}`, () => {
    const open: Catalogue[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });
    /** Two replicas on a new database, and a node. */
    const replicas = async (opts: CatalogueOptions = {}) => {
      const url = await target.fresh();
      const a = await openCatalogue(url, opts);
      open.push(a);
      const b = await openCatalogue(url, opts);
      open.push(b);
      const node = await a.addNode('n1', 'hash-n1', 1);
      const other = await a.addNode('n2', 'hash-n2', 1);
      return { a, b, node: node.id, other: other.id };
    };

    it('hands a read out once, only to its node and only to a poll that asks for reads, next to operations', async () => {
      const { a, b, node, other } = await replicas();
      await a.addRead(read('read-1'), node, 60_000);
      expect(await b.poll(node, 0, { reads: false })).toEqual({ operations: [] });
      expect(await b.poll(other, 0, { reads: true })).toEqual({ operations: [], reads: [] });
      await a.enqueue(
        { id: 'op-1', userId: 'usr-aaaaaaaaaaaa', payload: { kind: 'restart', deploymentId: 'dep-aaaaaaaaaaaa' }, createdAt: 2 },
        node,
      );
      const got = await b.poll(node, 0, { reads: true });
      expect(got.operations.map((o) => o.id)).toEqual(['op-1']);
      expect(got.reads).toEqual([read('read-1')]);
      // Operations are handed out again until finished; a read never is.
      expect((await a.poll(node, 0, { reads: true })).reads).toEqual([]);
      expect((await a.readRow('read-1'))?.status).toBe('delivered');
      // Taken: it can no longer be withdrawn.
      expect(await a.withdrawRead('read-1')).toBe(false);
    });

    it('wakes a long poll on another replica for a new read', async () => {
      const { a, b, node } = await replicas({ pollMs: 60_000 });
      const t0 = Date.now();
      const polled = b.poll(node, 20_000, { reads: true });
      await new Promise((r) => setTimeout(r, 100));
      await a.addRead(read('read-1'), node, 60_000);
      expect((await polled).reads?.map((r) => r.id)).toEqual(['read-1']);
      expect(Date.now() - t0).toBeLessThan(5_000);
    });

    it('withdraws a read no node took, and takes the answer head of a delivered read from its node only, once', async () => {
      const { a, b, node, other } = await replicas();
      await a.addRead(read('read-1'), node, 60_000);
      expect(await a.withdrawRead('read-1')).toBe(true);
      expect(await a.readRow('read-1')).toBeUndefined();
      expect(await b.poll(node, 0, { reads: true })).toEqual({ operations: [], reads: [] });

      await a.addRead(read('read-2'), node, 60_000);
      // Not delivered yet: no answer is taken.
      expect(await b.answerRead('read-2', node, { status: 200, meta: null }, 90_000)).toBe(false);
      await b.poll(node, 0, { reads: true });
      const waited = a.waitRead('read-2', 10_000, (r) => r?.status === 'answered');
      expect(await b.answerRead('read-2', other, { status: 200, meta: null }, 90_000)).toBe(false);
      expect(await b.answerRead('read-2', node, { status: 206, meta: { top: 'data' } }, 90_000)).toBe(true);
      expect(await b.answerRead('read-2', node, { status: 200, meta: null }, 90_000)).toBe(false);
      expect(await waited).toMatchObject({
        id: 'read-2',
        nodeId: node,
        status: 'answered',
        response: { status: 206, meta: { top: 'data' } },
      });
      // A wait on a read that does not change ends at its deadline with null.
      expect(await a.waitRead('read-2', 50, (r) => r === undefined)).toBeNull();
    });

    it('passes a body across replicas in order with at most a window of pieces unread, and deletes what was read', async () => {
      const { a, b, node } = await replicas();
      await a.addRead(read('read-1'), node, 60_000);
      await b.poll(node, 0, { reads: true });
      expect(await b.answerRead('read-1', node, { status: 200, meta: null }, 90_000)).toBe(true);
      const piece = (i: number): Buffer => Buffer.alloc(1000 + i, i);
      const opts = { window: 2, timeoutMs: 10_000, expiresAt: 90_000 };
      expect(await b.pushChunk('read-1', 0, { data: piece(0), last: false }, opts)).toBe('stored');
      expect(await b.pushChunk('read-1', 1, { data: piece(1), last: false }, opts)).toBe('stored');
      // The window is full: nothing more until a piece is read (a short wait ends with `full`).
      expect(await b.pushChunk('read-1', 2, { data: piece(2), last: false }, { ...opts, timeoutMs: 100 })).toBe('full');
      expect(await a.countReads()).toEqual({ reads: 1, chunks: 2 });
      const third = b.pushChunk('read-1', 2, { data: piece(2), last: true }, opts);
      expect(await a.pullChunk('read-1', 0, 10_000)).toEqual({ data: piece(0), last: false });
      expect(await third).toBe('stored');
      expect(await a.pullChunk('read-1', 1, 10_000)).toEqual({ data: piece(1), last: false });
      expect(await a.pullChunk('read-1', 2, 10_000)).toEqual({ data: piece(2), last: true });
      expect(await a.countReads()).toEqual({ reads: 1, chunks: 0 });
      // A piece that does not come: null at the deadline.
      expect(await a.pullChunk('read-1', 3, 50)).toBeNull();
      await a.dropRead('read-1');
      expect(await a.countReads()).toEqual({ reads: 0, chunks: 0 });
    });

    it('a dropped read takes its pieces with it, and both sides see it gone', async () => {
      const { a, b, node } = await replicas();
      await a.addRead(read('read-1'), node, 60_000);
      await b.poll(node, 0, { reads: true });
      await b.answerRead('read-1', node, { status: 200, meta: null }, 90_000);
      const opts = { window: 1, timeoutMs: 10_000, expiresAt: 90_000 };
      expect(await b.pushChunk('read-1', 0, { data: Buffer.from('one'), last: false }, opts)).toBe('stored');
      // The writer waits for room; the reader goes away instead.
      const blocked = b.pushChunk('read-1', 1, { data: Buffer.from('two'), last: false }, opts);
      await new Promise((r) => setTimeout(r, 50));
      await a.dropRead('read-1');
      expect(await blocked).toBe('gone');
      expect(await b.pullChunk('read-1', 0, 10_000)).toBe('gone');
      expect(await a.countReads()).toEqual({ reads: 0, chunks: 0 });
      // Dropping again changes nothing.
      await a.dropRead('read-1');
    });

    it('prunes expired reads and their pieces when a read is added', async () => {
      const { a, b, node } = await replicas();
      await a.addRead(read('read-old'), node, Date.now() - 1);
      await b.poll(node, 0, { reads: true });
      await b.answerRead('read-old', node, { status: 200, meta: null }, Date.now() - 1);
      await b.pushChunk('read-old', 0, { data: Buffer.from('x'), last: false }, { window: 4, timeoutMs: 1_000, expiresAt: Date.now() - 1 });
      // b has not pruned yet: its first new read does.
      await b.addRead(read('read-new'), node, Date.now() + 60_000);
      expect(await a.readRow('read-old')).toBeUndefined();
      expect(await a.countReads()).toEqual({ reads: 1, chunks: 0 });
    });
  });
}
