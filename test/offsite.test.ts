/**
 * Off-node copies in the service, against a real S3 endpoint (s3rver on
 * loopback, behind the fault proxy of test/helpers/s3.ts): every ready
 * snapshot is copied in the background and reads `copied`; a failing
 * endpoint makes copies `failed` (metric, webhook event) while local
 * snapshots go on, and they are retried; a delete removes the copy; and the
 * disaster drill: the data directory destroyed, `--recover-from` on a new one
 * brings back the same users, keys, deployments, volumes (byte for byte,
 * metadata included) and snapshot history. Servers run in process on the
 * process runtime.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/app/config.js';
import { type RunningServer, startServer } from '../src/app/server.js';
import { EncryptedStorage } from '../src/engine/crypto/encrypted-storage.js';
import { readMasterKey, repositoryKey } from '../src/engine/crypto/keys.js';
import { openRepository } from '../src/engine/repo/location.js';
import { compareTrees, describeTree, prng, tempDir } from '../src/engine/testing.js';
import { type Api, createDeployment, snapshotReady, startSnapshot, volumeDir, waitRunning, waitSnapshot } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { type Proxy, type S3Server, S3_CREDENTIALS, objectFiles, startProxy, startS3 } from './helpers/s3.js';

let s3: S3Server;
let proxy: Proxy;
let work: string;
let keyFile: string;
let seq = 0;
const savedEnv = { ...process.env };

interface Node {
  server: RunningServer;
  dataDir: string;
  token: string;
  api: Api;
}
const nodes: Node[] = [];

async function serve(opts: { dataDir?: string; offsite?: string; recoverFrom?: string; token?: string } = {}): Promise<Node> {
  const dataDir = opts.dataDir ?? path.join(work, `data-${++seq}`);
  const cfg = loadConfig(
    {
      dataDir,
      port: 0,
      runtime: 'process',
      offsite: opts.offsite,
      recoverFrom: opts.recoverFrom,
      s3Endpoint: proxy.endpoint,
      offsiteKeyFile: keyFile,
      webhooksAllowPrivate: true,
    },
    {},
  );
  const server = await startServer(cfg, {
    logger: pino({ level: process.env.KOVA_TEST_LOG ?? 'silent' }),
    offsiteOptions: { pollMs: 50, retryBaseMs: 100, retryMaxMs: 400, catalogueDebounceMs: 0 },
    offsiteS3: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
  });
  const token = opts.token ?? fs.readFileSync(server.adminKeyFile!, 'utf8').trim();
  const api: Api = async (method, url, body) => {
    const res = await server.app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      payload: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as unknown) : null };
  };
  const node = { server, dataDir, token, api };
  nodes.push(node);
  return node;
}

async function stop(node: Node): Promise<void> {
  const rt = node.server.services.ctx.runtime;
  for (const id of await rt.deployments()) await rt.remove(id).catch(() => undefined);
  await node.server.close();
  nodes.splice(nodes.indexOf(node), 1);
}

/** offsiteOf reads a snapshot's offsite field through the API. */
async function offsiteOf(
  api: Api,
  depId: string,
  snapId: string,
): Promise<{ status: string; copiedAt: string | null; error: string | null }> {
  const r = await api('GET', `/api/v1/deployments/${depId}/snapshots/${snapId}`);
  expect(r.status).toBe(200);
  return r.body.snapshot.offsite;
}

async function waitOffsite(api: Api, depId: string, snapId: string, status: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await offsiteOf(api, depId, snapId))?.status === status, timeoutMs, `snapshot ${snapId} offsite ${status}`);
}

/** fillVolume writes files with varied metadata into a volume. */
function fillVolume(dir: string, seed: number): void {
  fs.mkdirSync(path.join(dir, 'db'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'db/secret.txt'), 'PLAINTEXT-CANARY-do-not-leak\n'.repeat(40));
  fs.chmodSync(path.join(dir, 'db/secret.txt'), 0o640);
  fs.writeFileSync(path.join(dir, 'db/table.bin'), prng(seed, 700 * 1024));
  fs.symlinkSync('secret.txt', path.join(dir, 'db/link'));
  fs.utimesSync(path.join(dir, 'db/table.bin'), new Date('2021-03-04T05:06:07Z'), new Date('2021-03-04T05:06:07Z'));
  fs.chmodSync(path.join(dir, 'db'), 0o750);
}

const SDL = sdlFor('sleep 3600');

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startProxy(s3.endpoint);
  work = tempDir('kova-offsite-');
  keyFile = path.join(work, 'offsite.key');
  fs.writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = 'us-east-1';
});

afterAll(async () => {
  for (const n of [...nodes]) await stop(n).catch(() => undefined);
  await proxy?.close();
  await s3?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

describe('off-node copies', () => {
  it('copies each ready snapshot in the background; a failing endpoint marks it failed, retries, and never holds up local snapshots', async () => {
    const target = `s3://${s3.bucket}/node-a`;
    const node = await serve({ offsite: target });
    const { api } = node;
    const depId = await createDeployment(api, SDL);
    await waitRunning(api, depId);
    fillVolume(volumeDir(node.dataDir, depId), 1);

    const settings = await api('GET', `/api/v1/deployments/${depId}/snapshot-settings`);
    expect(settings.body.settings.offsite).toEqual({ enabled: true });

    const first = await snapshotReady(api, depId, 'first');
    await waitOffsite(api, depId, first.id, 'copied');
    const copied = await offsiteOf(api, depId, first.id);
    expect(copied.copiedAt).not.toBeNull();
    expect(copied.error).toBeNull();
    // What `copied` claims is in the bucket: the record, readable with the key.
    const remote = await openRepository(`${target}/deployments/${depId}`, { keyFile, s3Endpoint: s3.endpoint });
    try {
      const engineId = node.server.services.ctx.store.snapshots.get(first.id)!.engineId!;
      expect((await remote.listSnapshots()).map((r) => r.id)).toContain(engineId);
      expect((await remote.verify({ readData: true })).findings.filter((f) => f.severity === 'error')).toEqual([]);
    } finally {
      await remote.close();
    }

    // The endpoint fails every request: the copy fails, local snapshots still work.
    proxy.plan = { error: 1 };
    try {
      const second = await snapshotReady(api, depId, 'second');
      expect(second.status).toBe('ready');
      await waitOffsite(api, depId, second.id, 'failed');
      const failed = await offsiteOf(api, depId, second.id);
      expect(failed.error).toBeTruthy();
      const third = await snapshotReady(api, depId, 'third while failing');
      expect(third.status).toBe('ready');
      const metrics = await node.server.services.ctx.metrics.registry.metrics();
      expect(metrics).toMatch(/kova_offsite_copies_total\{outcome="failed"\} [1-9]/);
      const attempts = node.server.services.ctx.store.offsite.get(second.id)!.attempts;
      await waitFor(() => node.server.services.ctx.store.offsite.get(second.id)!.attempts > attempts, 10_000, 'a retry');
    } finally {
      proxy.plan = {};
    }
    // The endpoint is back: the retry copies it.
    const list = await api('GET', `/api/v1/deployments/${depId}/snapshots`);
    for (const s of list.body.snapshots) await waitOffsite(api, depId, s.id, 'copied');
    expect(await node.server.services.ctx.metrics.registry.metrics()).toMatch(/kova_offsite_copies_total\{outcome="copied"\} [3-9]/);
    await stop(node);
  });

  it('reports offsite.failed to webhooks once per failing copy', async () => {
    const node = await serve({ offsite: `s3://${s3.bucket}/node-hook` });
    const { api } = node;
    const depId = await createDeployment(api, SDL);
    await waitRunning(api, depId);
    const userId = node.server.services.ctx.store.deployments.get(depId)!.userId;
    const { webhook: hook } = await node.server.services.webhooks.create(userId, {
      url: 'http://127.0.0.1:9/hook',
      events: ['offsite.failed'],
    });
    proxy.plan = { error: 1 };
    let snapId: string;
    try {
      snapId = (await snapshotReady(api, depId)).id;
      await waitOffsite(api, depId, snapId, 'failed');
      const attempts = node.server.services.ctx.store.offsite.get(snapId)!.attempts;
      await waitFor(() => node.server.services.ctx.store.offsite.get(snapId)!.attempts > attempts, 10_000, 'a retry');
    } finally {
      proxy.plan = {};
    }
    const deliveries = node.server.services.ctx.store.webhooks.deliveries(hook.id, 100, null);
    const events = deliveries.filter((d) => d.event === 'offsite.failed');
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.body).data.snapshot.id).toBe(snapId);
    await waitOffsite(api, depId, snapId, 'copied');
    await stop(node);
  });

  it('deleting a snapshot removes its copy from the bucket; turning copies off stops them', async () => {
    const target = `s3://${s3.bucket}/node-del`;
    const node = await serve({ offsite: target });
    const { api } = node;
    const depId = await createDeployment(api, SDL);
    await waitRunning(api, depId);
    fillVolume(volumeDir(node.dataDir, depId), 2);
    const keep = await snapshotReady(api, depId, 'keep');
    fs.writeFileSync(path.join(volumeDir(node.dataDir, depId), 'more.bin'), prng(9, 300 * 1024));
    const gone = await snapshotReady(api, depId, 'gone');
    await waitOffsite(api, depId, keep.id, 'copied');
    await waitOffsite(api, depId, gone.id, 'copied');
    const store = node.server.services.ctx.store;
    const goneEngine = store.snapshots.get(gone.id)!.engineId!;
    const keepEngine = store.snapshots.get(keep.id)!.engineId!;

    expect((await api('DELETE', `/api/v1/deployments/${depId}/snapshots/${gone.id}`)).status).toBe(200);
    const bucketIds = async (): Promise<string[]> => {
      const r = await openRepository(`${target}/deployments/${depId}`, { keyFile, s3Endpoint: s3.endpoint });
      try {
        return (await r.listSnapshots()).map((x) => x.id);
      } finally {
        await r.close();
      }
    };
    await waitFor(async () => !(await bucketIds()).includes(goneEngine), 20_000, 'the copy to be removed');
    expect(await bucketIds()).toEqual([keepEngine]);
    expect(store.offsite.gcDueAt(depId)).not.toBeNull();

    const off = await api('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { offsite: { enabled: false } });
    expect(off.status).toBe(200);
    expect(off.body.settings.offsite).toEqual({ enabled: false });
    const later = await snapshotReady(api, depId, 'not copied');
    expect(await offsiteOf(api, depId, later.id)).toBeNull();
    await stop(node);
  });

  it('disaster drill: --recover-from on a new data dir brings back keys, deployments, volumes byte for byte and the history', async () => {
    const target = `s3://${s3.bucket}/node-dr`;
    const node = await serve({ offsite: target });
    const { api } = node;
    const depA = await createDeployment(api, SDL, 'alpha');
    const depB = await createDeployment(api, SDL, 'beta');
    await waitRunning(api, depA);
    await waitRunning(api, depB);
    const volA = volumeDir(node.dataDir, depA);
    fillVolume(volA, 3);
    const older = await snapshotReady(api, depA, 'older');
    fs.writeFileSync(path.join(volA, 'db/table.bin'), prng(4, 500 * 1024));
    fs.writeFileSync(path.join(volA, 'added.txt'), 'added after the first snapshot\n');
    const newest = await snapshotReady(api, depA, 'newest');
    const reference = path.join(work, 'reference');
    execFileSync('cp', ['-a', volA, reference]);
    fillVolume(volumeDir(node.dataDir, depB), 5);
    const snapB = await snapshotReady(api, depB, 'b');
    for (const [d, s] of [
      [depA, older.id],
      [depA, newest.id],
      [depB, snapB.id],
    ] as const)
      await waitOffsite(api, d, s, 'copied');
    await node.server.services.offsite.flushCatalogue();
    const token = node.token;

    // Nothing readable in the bucket without the key.
    for (const f of objectFiles(s3)) expect(fs.readFileSync(f).includes('PLAINTEXT-CANARY')).toBe(false);
    // One deployment's key does not open another's repository.
    const master = await readMasterKey(keyFile);
    const openWith = async (depId: string, key: Buffer): Promise<void> => {
      await EncryptedStorage.open(s3.storage(`node-dr/deployments/${depId}`), key);
    };
    const idA = (await EncryptedStorage.open(s3.storage(`node-dr/deployments/${depA}`), master)).envelope.repositoryId;
    await expect(openWith(depB, repositoryKey(master, idA))).rejects.toMatchObject({ code: 'WRONG_KEY' });

    // The node is lost.
    await stop(node);
    fs.rmSync(node.dataDir, { recursive: true, force: true });

    const back = await serve({ recoverFrom: target, token });
    expect(back.server.recovered).toEqual({ users: 1, deployments: 2, snapshots: 3 });
    expect(back.server.adminKeyFile).toBeNull();
    const me = await back.api('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    const deps = await back.api('GET', '/api/v1/deployments');
    expect(deps.body.deployments.map((d: { name: string }) => d.name).sort()).toEqual(['alpha', 'beta']);
    await waitRunning(back.api, depA);
    await waitRunning(back.api, depB);
    const diffs = compareTrees(describeTree(reference), describeTree(volumeDir(back.dataDir, depA)));
    expect(diffs).toEqual([]);
    const hist = await back.api('GET', `/api/v1/deployments/${depA}/snapshots`);
    expect(hist.body.snapshots.map((s: { id: string }) => s.id)).toEqual([newest.id, older.id]);
    expect(hist.body.snapshots.every((s: { offsite: { status: string } }) => s.offsite.status === 'copied')).toBe(true);
    // The older snapshot restores from the repository pulled back.
    const rst = await back.api('POST', `/api/v1/deployments/${depA}/snapshots/${older.id}/restore`, { safetySnapshot: false });
    expect(rst.status).toBe(202);
    await waitFor(
      async () =>
        (await back.api('GET', `/api/v1/deployments/${depA}/restores/${rst.body.restore.id}`)).body.restore.status === 'completed',
      30_000,
      'the restore of the older snapshot',
    );
    expect(fs.existsSync(path.join(volumeDir(back.dataDir, depA), 'added.txt'))).toBe(false);
    // New snapshots go on to the same target.
    const snapId = await startSnapshot(back.api, depB, 'after recovery');
    await waitSnapshot(back.api, depB, snapId);
    await waitOffsite(back.api, depB, snapId, 'copied');

    // --recover-from refuses a data dir in use.
    await stop(back);
    await expect(serve({ dataDir: back.dataDir, recoverFrom: target, token })).rejects.toMatchObject({ code: 'RECOVERY_TARGET_NOT_EMPTY' });
  });
});
