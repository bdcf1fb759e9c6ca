/**
 * Upgrading a data directory in place: one written by the version before
 * the catalogue (users, keys, deployments and snapshots only in kova.db,
 * made here through the services directly, as that version's API did) is
 * started by startServer. The same keys work, the same deployments and
 * snapshots are listed, `admin` is an admin of the catalogue, and the new
 * catalogue file is private.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/app/config.js';
import { CONTROL_DB, LOCAL_NODE_NAME } from '../src/app/local-control.js';
import { type RunningServer, startServer } from '../src/app/server.js';
import { wireServices } from '../src/services/wire.js';
import { systemClock } from '../src/core/clock.js';
import { Store } from '../src/db/store.js';
import { ProcessRuntime } from '../src/runtime/process/process-runtime.js';
import { Paths } from '../src/services/paths.js';
import { sdlFor, waitFor } from './helpers/harness.js';

const log = pino({ level: process.env.KOVA_TEST_LOG ?? 'silent' });
let root: string | null = null;
let server: RunningServer | null = null;

afterEach(async () => {
  if (server) {
    for (const id of await server.services.ctx.runtime.deployments()) await server.services.ctx.runtime.remove(id).catch(() => undefined);
    await server.close();
  }
  server = null;
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = null;
});

/** oldDataDir writes a data directory through the services alone, as `kova serve` did before the catalogue. */
async function oldDataDir(dataDir: string) {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const paths = new Paths(dataDir);
  const store = Store.open(paths.database);
  const runtime = new ProcessRuntime({ stateDir: paths.runtimeDir, stopTimeoutMs: 2000 });
  const s = wireServices({ store, runtime, paths, clock: systemClock, log, minSnapshotIntervalMs: 1000, jobConcurrency: 2 });
  s.ctx.jobs.start();
  try {
    const admin = s.keys.ensureUser('admin');
    const adminToken = (await s.keys.create(admin.id, 'bootstrap')).token;
    const alice = s.keys.ensureUser('alice');
    const aliceToken = (await s.keys.create(alice.id, 'laptop')).token;
    const revoked = await s.keys.create(alice.id, 'old');
    s.keys.revoke(revoked.key.prefix, alice.id);
    const dep = s.deployments.create(alice.id, sdlFor('echo hi > /data/f; sleep 1000'), 'app');
    await s.ctx.jobs.idle();
    const snap = s.snapshots.create(alice.id, dep.id, 'before upgrade');
    await s.ctx.jobs.idle();
    const closed = s.deployments.create(alice.id, sdlFor('sleep 1000'), 'gone');
    await s.ctx.jobs.idle();
    s.deployments.close(alice.id, closed.id);
    await s.ctx.jobs.idle();
    expect(s.snapshots.get(alice.id, dep.id, snap.id).status).toBe('ready');
    return { adminToken, aliceToken, revokedToken: revoked.token, dep, snap, closed, aliceId: alice.id };
  } finally {
    await s.ctx.jobs.stop();
    for (const id of await runtime.deployments()) await runtime.remove(id).catch(() => undefined);
    await runtime.close();
    store.close();
  }
}

describe('kova serve on a data directory of the version before the catalogue', () => {
  it('keeps its keys, users, deployments and snapshots', async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-upgrade-'));
    const dataDir = path.join(root, 'data');
    const old = await oldDataDir(dataDir);
    expect(fs.existsSync(path.join(dataDir, CONTROL_DB))).toBe(false);

    server = await startServer(loadConfig({ dataDir, port: 0, runtime: 'process', logLevel: 'silent' }, {}), { logger: log });
    // No new admin: the data directory has users.
    expect(server.adminKeyFile).toBeNull();
    expect(fs.statSync(path.join(dataDir, CONTROL_DB)).mode & 0o777).toBe(0o600);
    const cat = server.local.catalogue;
    expect(await cat.node(LOCAL_NODE_NAME)).toBeDefined();
    expect(await cat.userByName('admin')).toMatchObject({ role: 'admin' });
    expect(await cat.user(old.aliceId)).toMatchObject({ name: 'alice', role: 'user' });

    const get = async (url: string, token: string) => {
      const res = await fetch(`${server!.url}${url}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    expect((await get('/api/v1/me', old.adminToken)).status).toBe(200);
    expect((await get('/api/v1/me', old.revokedToken)).status).toBe(401);
    const listed = await get('/api/v1/deployments', old.aliceToken);
    expect(listed.status).toBe(200);
    expect(listed.body.deployments.map((d: { id: string; status: string }) => [d.id, d.status]).sort()).toEqual(
      [
        [old.dep.id, 'active'],
        [old.closed.id, 'closed'],
      ].sort(),
    );
    expect(listed.body.deployments.every((d: { node: unknown }) => d.node === null)).toBe(true);
    const snaps = await get(`/api/v1/deployments/${old.dep.id}/snapshots`, old.aliceToken);
    expect(snaps.body.snapshots).toEqual([expect.objectContaining({ id: old.snap.id, label: 'before upgrade', status: 'ready' })]);

    // The deployment is the local node's: operations reach it.
    const res = await fetch(`${server.url}/api/v1/deployments/${old.dep.id}/snapshots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${old.aliceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'after upgrade' }),
    });
    expect(res.status).toBe(202);
    await waitFor(
      async () => {
        const s = await get(`/api/v1/deployments/${old.dep.id}/snapshots`, old.aliceToken);
        return s.body.snapshots.find((x: { label: string; status: string }) => x.label === 'after upgrade' && x.status === 'ready');
      },
      30_000,
      'the new snapshot to be ready',
    );

    // A second start changes nothing.
    await server.close();
    server = await startServer(loadConfig({ dataDir, port: 0, runtime: 'process', logLevel: 'silent' }, {}), { logger: log });
    expect((await get('/api/v1/deployments', old.aliceToken)).body.deployments).toHaveLength(2);
    expect((await get(`/api/v1/deployments/${old.dep.id}/snapshots`, old.aliceToken)).body.snapshots).toHaveLength(2);
  }, 90_000);

  it("keeps kova.db's copy of the keys in step on a fresh data directory (what an off-node copy takes along)", async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-mirror-'));
    const dataDir = path.join(root, 'data');
    server = await startServer(loadConfig({ dataDir, port: 0, runtime: 'process', logLevel: 'silent' }, {}), { logger: log });
    const adminToken = fs.readFileSync(server.adminKeyFile!, 'utf8').trim();
    const journal = server.services.ctx.store;
    const prefixOf = (token: string) => token.replace(/^kova_/, '').split('.')[0]!;
    expect(journal.apiKeys.get(prefixOf(adminToken))).toMatchObject({ revokedAt: null });

    const call = async (method: string, url: string, body?: unknown) => {
      const res = await fetch(`${server!.url}${url}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    const made = await call('POST', '/api/v1/api-keys', { label: 'ci' });
    expect(made.status).toBe(201);
    const prefix = prefixOf(made.body.token);
    expect(journal.apiKeys.get(prefix)).toMatchObject({ label: 'ci', revokedAt: null });
    expect((await call('DELETE', `/api/v1/api-keys/${prefix}`)).status).toBeLessThan(300);
    expect(journal.apiKeys.get(prefix)?.revokedAt).not.toBeNull();

    // One node that is never offline: there is nowhere to recover to, and the route is not served.
    const recover = await call('POST', '/api/v1/deployments/dep_whatever/recover', {});
    expect(recover).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
  }, 60_000);
});
