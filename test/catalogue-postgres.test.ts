/**
 * The catalogue's contract on a real PostgreSQL (the suite the SQLite unit
 * test runs too), and what only PostgreSQL has: replicas on one database
 * over LISTEN/NOTIFY, and outages (DATABASE_UNAVAILABLE while PostgreSQL is
 * down, recovery with no restart of the control plane once it is back).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Catalogue } from '../src/control/catalogue.js';
import { openCatalogue } from '../src/control/store/index.js';
import { readsSuite } from '../src/control/store/reads-testing.js';
import { catalogueSuite } from '../src/control/store/testing.js';
import { webhooksSuite } from '../src/control/store/webhooks-testing.js';
import { type PostgresCluster, postgresAvailable, startPostgres } from './helpers/postgres.js';

const available = postgresAvailable();
let cluster: PostgresCluster;
let n = 0;
const fresh = (): Promise<string> => cluster.createDatabase(`catalogue_${++n}`);

describe.skipIf(!available)('PostgreSQL', () => {
  beforeAll(async () => {
    cluster = await startPostgres();
  });
  afterAll(async () => {
    await cluster?.close();
  });

  catalogueSuite('PostgreSQL', { fresh });
  readsSuite('PostgreSQL', { fresh });
  webhooksSuite('PostgreSQL', { fresh });

  describe('outages', () => {
    const open: Catalogue[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });

    it('answers DATABASE_UNAVAILABLE while PostgreSQL is down and recovers, LISTEN included, once it is back', async () => {
      const url = await fresh();
      // Polls too slow to matter: after the restart only a re-established LISTEN can end the long poll in time.
      const a = await openCatalogue(url, { pollMs: 60_000, connectTimeoutMs: 1_000 });
      const b = await openCatalogue(url, { pollMs: 60_000, connectTimeoutMs: 1_000 });
      open.push(a, b);
      const user = await a.ensureUser('alice', 'user', 1);
      const node = await a.addNode('n1', 'hash-n1', 2);
      await a.place('dep-aaaaaaaaaaaa', user.id, node.id, 3);

      await cluster.stop();
      try {
        await expect(a.nodes()).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE', status: 503 });
        await expect(b.hit('k', 60_000, 1_000)).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE', status: 503 });
        await expect(openCatalogue(url, { connectTimeoutMs: 1_000 })).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
      } finally {
        await cluster.start();
      }

      expect((await a.nodes()).map((x) => x.name)).toEqual(['n1']);
      const t0 = Date.now();
      const polled = b.pending(node.id, 20_000);
      await a.enqueue(
        { id: 'op-1', userId: user.id, payload: { kind: 'restart', deploymentId: 'dep-aaaaaaaaaaaa' }, createdAt: 4 },
        node.id,
      );
      expect((await polled).map((o) => o.id)).toEqual(['op-1']);
      const waited = a.waitResult('op-1', 20_000);
      await new Promise((r) => setTimeout(r, 3_000));
      await b.finish('op-1', node.id, { ok: true, state: null }, 5);
      expect(await waited).toEqual({ ok: true, state: null });
      expect(Date.now() - t0).toBeLessThan(10_000);
    });
  });
});
