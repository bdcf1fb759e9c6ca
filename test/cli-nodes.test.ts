/**
 * `kova nodes add|list|drain|remove` and `kova keys create --database` on a
 * real PostgreSQL: what they print, what they store (a node token's hash
 * only; a key the API can check) and what they refuse.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/output.js';
import type { Catalogue } from '../src/control/catalogue.js';
import { openCatalogue } from '../src/control/store/index.js';
import { checkSecret } from '../src/services/keys.js';
import { type PostgresCluster, postgresAvailable, startPostgres } from './helpers/postgres.js';

const available = postgresAvailable();
let cluster: PostgresCluster;
let url: string;
let catalogue: Catalogue;
let n = 0;

async function kova(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (b: Buffer) => (chunks.out += b.toString()));
  err.on('data', (b: Buffer) => (chunks.err += b.toString()));
  const code = await main(args, { out, err } as Io);
  return { code, ...chunks };
}

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';

describe.skipIf(!available)('operator commands on PostgreSQL', () => {
  beforeAll(async () => {
    cluster = await startPostgres();
  });
  afterAll(async () => {
    await cluster?.close();
  });
  beforeEach(async () => {
    url = await cluster.createDatabase(`cli_${++n}`);
    catalogue = await openCatalogue(url);
  });
  afterEach(async () => {
    delete process.env.KOVA_DATABASE_URL;
    delete process.env.KOVA_MAX_KEYS_PER_USER;
    await catalogue.close();
  });

  it('adds a node, prints its token last and stores only its SHA-256', async () => {
    const r = await kova('nodes', 'add', 'berlin-1', '--database', url);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const token = lastLine(r.out);
    expect(token).toMatch(/^kova_node_[A-Za-z0-9_-]{43}$/);
    expect(r.out).toMatch(/^added node berlin-1 \(node-[a-z2-7]{12}\); its token:\n/);

    const hash = createHash('sha256').update(token).digest('hex');
    expect((await catalogue.nodeByTokenHash(hash))?.name).toBe('berlin-1');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const dump = JSON.stringify((await db.query('SELECT * FROM nodes')).rows);
      expect(dump).toContain(hash);
      expect(dump).not.toContain(token.slice('kova_node_'.length));
    } finally {
      await db.end();
    }

    const again = await kova('nodes', 'add', 'berlin-1', '--database', url);
    expect(again).toEqual({ code: 1, out: '', err: 'kova: a node named berlin-1 already exists\n' });
    const bad = await kova('nodes', 'add', 'Berlin 1', '--database', url);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^kova: node names are 1-63 characters/);
  });

  it('lists nodes with status, heartbeat, capacity and deployments, as a table and as JSON', async () => {
    expect(await kova('nodes', 'list', '--database', url)).toEqual({ code: 0, out: 'no nodes\n', err: '' });
    process.env.KOVA_DATABASE_URL = url;
    expect((await kova('nodes', 'add', 'athens-1')).code).toBe(0);
    expect((await kova('nodes', 'add', 'berlin-1')).code).toBe(0);
    const athens = (await catalogue.node('athens-1'))!;
    const berlin = (await catalogue.node('berlin-1'))!;
    const user = await catalogue.ensureUser('alice', 'user', 1);
    await catalogue.place('dep-aaaaaaaaaaaa', user.id, berlin.id, 2);
    const beat = Date.now();
    await catalogue.heartbeat(
      berlin.id,
      {
        diskFreeBytes: 12_300_000_000,
        diskTotalBytes: 50_000_000_000,
        volumeUsedBytes: 1,
        volumeReservedBytes: 2,
        deployments: 1,
        runningServices: 3,
        health: 'ok',
      },
      beat,
    );

    const r = await kova('nodes', 'list');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +ID +STATUS +LAST HEARTBEAT +CAPACITY +DEPLOYMENTS$/);
    expect(lines[1]).toMatch(new RegExp(`^athens-1 +${athens.id} +offline +never +- +0$`));
    expect(lines[2]).toMatch(
      new RegExp(`^berlin-1 +${berlin.id} +online +${new Date(beat).toISOString()} +12\\.3 GB free of 50\\.0 GB, 3 running +1$`),
    );
    expect(lines).toHaveLength(3);

    expect(await kova('nodes', 'drain', 'berlin-1')).toEqual({
      code: 0,
      out: 'node berlin-1 is draining: it gets no new deployments\n',
      err: '',
    });
    const json = JSON.parse((await kova('nodes', 'list', '--json')).out) as Array<Record<string, unknown>>;
    expect(json.map((x) => [x.name, x.status, x.draining, x.deployments])).toEqual([
      ['athens-1', 'offline', false, 0],
      ['berlin-1', 'draining', true, 1],
    ]);
    expect(json[1]).toMatchObject({ id: berlin.id, lastHeartbeatAt: new Date(beat).toISOString(), capacity: { runningServices: 3 } });
    expect((await kova('nodes', 'drain', berlin.id, '--undo')).out).toBe('node berlin-1 takes new deployments again\n');
    expect((await catalogue.node(berlin.id))?.draining).toBe(false);
    expect(await kova('nodes', 'drain', 'nowhere')).toEqual({ code: 1, out: '', err: 'kova: no node nowhere\n' });
  });

  it('refuses to remove a node with deployments placed on it, then removes it', async () => {
    expect((await kova('nodes', 'add', 'berlin-1', '--database', url)).code).toBe(0);
    const node = (await catalogue.node('berlin-1'))!;
    const user = await catalogue.ensureUser('alice', 'user', 1);
    await catalogue.place('dep-aaaaaaaaaaaa', user.id, node.id, 2);
    expect(await kova('nodes', 'remove', 'berlin-1', '--database', url)).toEqual({
      code: 1,
      out: '',
      err: 'kova: node berlin-1 still has 1 deployment placed on it; close or move them first\n',
    });
    expect(await catalogue.node(node.id)).toBeDefined();
    await catalogue.unplace('dep-aaaaaaaaaaaa');
    expect(await kova('nodes', 'remove', 'berlin-1', '--database', url)).toEqual({
      code: 0,
      out: `removed node berlin-1 (${node.id})\n`,
      err: '',
    });
    expect(await catalogue.nodes()).toEqual([]);
  });

  it('creates API keys for control-plane users with a role, in the key format the API checks', async () => {
    const r = await kova('keys', 'create', '--user', 'ops', '--role', 'admin', '--label', 'ci', '--database', url);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const token = lastLine(r.out);
    const m = /^kova_([a-z2-7]{12})\.([A-Za-z0-9_-]{43})$/.exec(token);
    expect(m).not.toBeNull();
    const user = (await catalogue.userByName('ops'))!;
    expect(user.role).toBe('admin');
    const key = (await catalogue.key(m![1]!))!;
    expect(key).toMatchObject({ userId: user.id, label: 'ci', revokedAt: null });
    expect(await checkSecret(m![2]!, key.secretHash)).toBe(true);
    expect(await checkSecret('x'.repeat(43), key.secretHash)).toBe(false);

    // From KOVA_DATABASE_URL; an existing user keeps its role (and is told so).
    process.env.KOVA_DATABASE_URL = url;
    const again = await kova('keys', 'create', '--user', 'ops');
    expect(again.code).toBe(0);
    expect(again.err).toBe('user ops exists with role admin; its role is unchanged\n');
    expect(lastLine(again.out)).toMatch(/^kova_[a-z2-7]{12}\.[A-Za-z0-9_-]{43}$/);
    expect(await catalogue.keys(user.id)).toHaveLength(2);

    expect(await kova('keys', 'create', '--user', 'ops', '--role', 'root')).toEqual({
      code: 1,
      out: '',
      err: 'kova: --role root: use admin or user\n',
    });
    expect((await kova('keys', 'create', '--user', 'Bad User')).err).toMatch(/^kova: user names are 1-32 characters/);
    expect((await kova('keys', 'create', '--user', 'x', '--database', url, '--data-dir', '/nonexistent')).err).toBe(
      'kova: give --database or --data-dir, not both\n',
    );
    expect(await catalogue.countUsers()).toBe(1);

    // The cap of KOVA_MAX_KEYS_PER_USER, as for the node's keys.
    process.env.KOVA_MAX_KEYS_PER_USER = '2';
    expect(await kova('keys', 'create', '--user', 'ops')).toEqual({
      code: 1,
      out: '',
      err: 'kova: a user may have at most 2 active API keys; revoke one first\n',
    });
    expect(await catalogue.keys(user.id)).toHaveLength(2);
  });

  it('says where the database should come from when none is given', async () => {
    expect(await kova('nodes', 'list')).toEqual({
      code: 1,
      out: '',
      err: 'kova: no database given: pass --database URL or set KOVA_DATABASE_URL\n',
    });
  });
});
