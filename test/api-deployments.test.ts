/**
 * The deployment API end to end (docs/api.md, "Deployments"): create
 * from SDL, list, get, update, restart, close, with the SDL errors a user
 * can make; and the service endpoints around it (/healthz, /metrics, the
 * OpenAPI document).
 */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ISO_UTC,
  createDeployment,
  expectError,
  expectOk,
  listSnapshots,
  raw,
  readVolume,
  setSlow,
  slowSdl,
  takeSnapshot,
  volumeDir,
  writeVolume,
} from './helpers/api.js';
import { type Harness, METRICS_TOKEN, sdlFor, startHarness } from './helpers/harness.js';

let h: Harness;
let bob: string;

beforeAll(async () => {
  h = await startHarness();
  bob = await h.newUser('bob');
});
afterEach(async () => {
  await h.idle();
});
afterAll(async () => {
  await h?.close();
});

const IDLE = 'exec sleep 100000';
const base = (depId: string) => `/api/v1/deployments/${depId}`;

describe('POST /api/v1/deployments', () => {
  it('answers 201 with an active deployment whose services then run', async () => {
    const sdl = sdlFor(IDLE);
    const r = await h.api('POST', '/api/v1/deployments', { sdl });
    const body = expectOk(r, 201);
    expect(Object.keys(body).sort()).toEqual(['deployment', 'success']);
    const d = body.deployment;
    expect(d).toMatchObject({
      id: expect.stringMatching(/^dep-[a-z2-7]+$/),
      status: 'active',
      name: 'app',
      sdl,
      clonedFrom: null,
      closedAt: null,
    });
    expect(d.createdAt).toMatch(ISO_UTC);
    expect(d.services).toHaveLength(1);
    expect(d.services[0]).toMatchObject({
      name: 'app',
      image: 'busybox',
      volumes: [{ name: 'data', mount: '/data', sizeBytes: 1024 ** 3 }],
    });

    await h.idle();
    const got = expectOk(await h.api('GET', base(d.id))).deployment;
    expect(got.services[0].state).toBe('running');
    // The all-in-one is its own node: no node is named.
    expect(d.node).toBeNull();
    expect(got.node).toBeNull();
    expect(fs.statSync(volumeDir(h, d.id)).isDirectory()).toBe(true);
  });

  it('runs the service with its volume: what it writes lands in the volume', async () => {
    const dep = await createDeployment(h, sdlFor('echo started > "$KOVA_VOLUME_DATA/boot.txt"; exec sleep 100000'));
    await expect.poll(() => readVolume(h, dep, 'boot.txt'), { timeout: 10_000 }).toBe('started\n');
  });

  it('takes an optional name', async () => {
    const r = await h.api('POST', '/api/v1/deployments', { sdl: sdlFor(IDLE), name: 'my database' });
    expect(expectOk(r, 201).deployment.name).toBe('my database');
  });

  it('rejects a bad name with 400', async () => {
    expectError(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor(IDLE), name: 'x'.repeat(65) }), 400, 'INVALID_NAME');
    expectError(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor(IDLE), name: 'a\nb' }), 400, 'INVALID_NAME');
  });

  describe('bad SDLs: 400 INVALID_SDL naming the bad field', () => {
    const expectSdlError = async (sdl: string, path: string | RegExp) => {
      const before = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.length;
      const err = expectError(await h.api('POST', '/api/v1/deployments', { sdl }), 400, 'INVALID_SDL');
      if (typeof path === 'string') expect(err.message).toContain(path);
      else expect(err.message).toMatch(path);
      // Nothing was created.
      expect(expectOk(await h.api('GET', '/api/v1/deployments')).deployments).toHaveLength(before);
      return err;
    };

    it('invalid YAML', async () => {
      const err = await expectSdlError('version: "2.0"\nservices:\n  app: [unclosed\n', /YAML/);
      expect(err.message).toMatch(/line \d+/);
    });

    it('a missing image', async () => {
      const err = await expectSdlError(sdlFor(IDLE).replace('    image: busybox\n', ''), 'services.app.image');
      expect(err.message).toMatch(/required/);
    });

    it('a relative mount path', async () => {
      const err = await expectSdlError(sdlFor(IDLE).replace('mount: /data', 'mount: data'), 'services.app.params.storage.data.mount');
      expect(err.message).toMatch(/absolute/);
    });

    it('a mount on a system path', async () => {
      for (const mount of ['/proc', '/sys/fs/cgroup', '/dev/shm']) {
        const err = await expectSdlError(sdlFor(IDLE).replace('mount: /data', `mount: ${mount}`), 'services.app.params.storage.data.mount');
        expect(err.message).toContain(`must not be ${mount}:`);
      }
    });

    it('a volume on non-persistent storage', async () => {
      const err = await expectSdlError(sdlFor(IDLE).replace('persistent: true', 'persistent: false'), 'services.app.params.storage.data');
      expect(err.message).toMatch(/persistent/);
    });

    it('a mount of storage the profile does not have', async () => {
      await expectSdlError(sdlFor(IDLE).replace('- name: data', '- name: other'), 'services.app.params.storage.data');
    });

    it('a misspelt field', async () => {
      const err = await expectSdlError(sdlFor(IDLE).replace('    image: busybox', '    imgae: busybox'), 'services.app.imgae');
      expect(err.message).toMatch(/image/);
    });

    it('a YAML document that is not a mapping, and an empty one', async () => {
      await expectSdlError('- just\n- a list\n', /invalid SDL/);
      await expectSdlError('# nothing\n', /empty/);
    });
  });

  it('rejects a body without sdl, a non-string sdl, an empty sdl and unknown fields with 400', async () => {
    expect(expectError(await h.api('POST', '/api/v1/deployments', {}), 400, 'INVALID_REQUEST').message).toMatch(/sdl/);
    expectError(await h.api('POST', '/api/v1/deployments', { sdl: 42 }), 400, 'INVALID_REQUEST');
    expectError(await h.api('POST', '/api/v1/deployments', { sdl: '' }), 400, 'INVALID_REQUEST');
    expect(
      expectError(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor(IDLE), image: 'x' }), 400, 'INVALID_REQUEST').message,
    ).toMatch(/image/);
    expectError(await raw(h, 'POST', '/api/v1/deployments'), 400, 'INVALID_REQUEST');
  });
});

describe('GET /api/v1/deployments and /api/v1/deployments/:id', () => {
  it("lists the caller's deployments only", async () => {
    const carol = await h.newUser('carol');
    const mine = await createDeployment(h, sdlFor(IDLE), carol);
    const theirs = await createDeployment(h);
    const body = expectOk(await h.api('GET', '/api/v1/deployments', undefined, carol));
    expect(Object.keys(body).sort()).toEqual(['deployments', 'success']);
    expect(body.deployments.map((d: { id: string }) => d.id)).toEqual([mine]);
    const alices = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.map((d: { id: string }) => d.id);
    expect(alices).toContain(theirs);
    expect(alices).not.toContain(mine);
  });

  it("lists a new user's deployments as an empty list", async () => {
    const dave = await h.newUser('dave');
    expect(expectOk(await h.api('GET', '/api/v1/deployments', undefined, dave))).toEqual({ success: true, deployments: [] });
  });

  it('gets one deployment', async () => {
    const dep = await createDeployment(h);
    const body = expectOk(await h.api('GET', base(dep)));
    expect(Object.keys(body).sort()).toEqual(['deployment', 'success']);
    expect(body.deployment).toMatchObject({ id: dep, status: 'active', operation: null });
  });

  it("answers 404 DEPLOYMENT_NOT_FOUND for a missing deployment and for another user's, alike", async () => {
    const dep = await createDeployment(h);
    const missing = expectError(await h.api('GET', base('dep-aaaaaaaaaaaa')), 404, 'DEPLOYMENT_NOT_FOUND');
    const foreign = expectError(await h.api('GET', base(dep), undefined, bob), 404, 'DEPLOYMENT_NOT_FOUND');
    expect(foreign.message.replace(dep, '<id>')).toBe(missing.message.replace('dep-aaaaaaaaaaaa', '<id>'));
  });
});

describe('PUT /api/v1/deployments/:id', () => {
  it('updates the SDL and restarts the services, after a before-update snapshot', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'before the update');
    const sdl = sdlFor('echo v2 > "$KOVA_VOLUME_DATA/version.txt"; exec sleep 100000');
    const r = await h.api('PUT', base(dep), { sdl });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ success: true, deployment: { id: dep } });
    await h.idle();

    const got = expectOk(await h.api('GET', base(dep))).deployment;
    expect(got.sdl).toBe(sdl);
    expect(got.services[0].state).toBe('running');
    await expect.poll(() => readVolume(h, dep, 'version.txt'), { timeout: 10_000 }).toBe('v2\n');
    // The volume kept its data.
    expect(readVolume(h, dep, 'db.txt')).toBe('before the update');
    const snaps = await listSnapshots(h, dep);
    expect(snaps).toHaveLength(1);
    expect(snaps[0]).toMatchObject({ status: 'ready', automatic: false, trigger: 'before-update' });
  });

  it('skips the snapshot with snapshot: false', async () => {
    const dep = await createDeployment(h);
    const r = await h.api('PUT', base(dep), { sdl: sdlFor('exec sleep 99999'), snapshot: false });
    expect(r.status).toBe(202);
    await h.idle();
    expect(await listSnapshots(h, dep)).toEqual([]);
    expect(expectOk(await h.api('GET', base(dep))).deployment.sdl).toBe(sdlFor('exec sleep 99999'));
  });

  it('adds a volume', async () => {
    const dep = await createDeployment(h);
    const r = await h.api('PUT', base(dep), { sdl: sdlFor(IDLE, { volumes: ['data', 'cache'] }), snapshot: false });
    expect(r.status).toBe(202);
    await h.idle();
    const got = expectOk(await h.api('GET', base(dep))).deployment;
    expect(got.services[0].volumes.map((v: { name: string }) => v.name)).toEqual(['data', 'cache']);
    expect(fs.statSync(volumeDir(h, dep, 'cache')).isDirectory()).toBe(true);
  });

  it('rejects a bad SDL and leaves the deployment as it was', async () => {
    const dep = await createDeployment(h);
    const before = expectOk(await h.api('GET', base(dep))).deployment.sdl;
    const err = expectError(
      await h.api('PUT', base(dep), { sdl: sdlFor(IDLE).replace('mount: /data', 'mount: ../data') }),
      400,
      'INVALID_SDL',
    );
    expect(err.message).toContain('services.app.params.storage.data.mount');
    expectError(await h.api('PUT', base(dep), { sdl: sdlFor(IDLE), restart: true }), 400, 'INVALID_REQUEST');
    expectError(await h.api('PUT', base(dep), {}), 400, 'INVALID_REQUEST');
    expect(expectOk(await h.api('GET', base(dep))).deployment.sdl).toBe(before);
    expect(await listSnapshots(h, dep)).toEqual([]);
  });

  it("answers 404 for a missing or another user's deployment", async () => {
    const dep = await createDeployment(h);
    expectError(await h.api('PUT', base('dep-aaaaaaaaaaaa'), { sdl: sdlFor(IDLE) }), 404, 'DEPLOYMENT_NOT_FOUND');
    expectError(await h.api('PUT', base(dep), { sdl: sdlFor(IDLE) }, bob), 404, 'DEPLOYMENT_NOT_FOUND');
  });

  it('answers 409 OPERATION_IN_PROGRESS while another operation runs', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    setSlow(h, dep, true);
    expectOk(await h.api('POST', `${base(dep)}/snapshots`, {}), 202);
    expectError(await h.api('PUT', base(dep), { sdl: sdlFor(IDLE) }), 409, 'OPERATION_IN_PROGRESS');
    await h.idle();
    expect(expectOk(await h.api('GET', base(dep))).deployment.sdl).toBe(slowSdl(1));
  });
});

describe('POST /api/v1/deployments/:id/restart', () => {
  it('answers 202 and the services run again', async () => {
    const dep = await createDeployment(h, sdlFor('date +%s%N >> "$KOVA_VOLUME_DATA/starts.txt"; exec sleep 100000'));
    await expect.poll(() => readVolume(h, dep, 'starts.txt')?.split('\n').filter(Boolean).length ?? 0, { timeout: 10_000 }).toBe(1);
    const r = await h.api('POST', `${base(dep)}/restart`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ success: true, deployment: { id: dep, status: 'active' } });
    await h.idle();
    await expect.poll(() => readVolume(h, dep, 'starts.txt')?.split('\n').filter(Boolean).length ?? 0, { timeout: 10_000 }).toBe(2);
    expect(expectOk(await h.api('GET', base(dep))).deployment.services[0].state).toBe('running');
  });

  it("answers 404 for a missing or another user's deployment", async () => {
    const dep = await createDeployment(h);
    expectError(await h.api('POST', `${base('dep-aaaaaaaaaaaa')}/restart`), 404, 'DEPLOYMENT_NOT_FOUND');
    expectError(await h.api('POST', `${base(dep)}/restart`, undefined, bob), 404, 'DEPLOYMENT_NOT_FOUND');
  });

  it('answers 409 OPERATION_IN_PROGRESS while another operation runs, for restart and close alike', async () => {
    const dep = await createDeployment(h, slowSdl(1));
    setSlow(h, dep, true);
    expectOk(await h.api('POST', `${base(dep)}/snapshots`, {}), 202);
    expectError(await h.api('POST', `${base(dep)}/restart`), 409, 'OPERATION_IN_PROGRESS');
    expectError(await h.api('POST', `${base(dep)}/close`), 409, 'OPERATION_IN_PROGRESS');
    await h.idle();
    expect(expectOk(await h.api('GET', base(dep))).deployment.status).toBe('active');
  });
});

describe('POST /api/v1/deployments/:id/close', () => {
  it('closes: the record stays readable as "closed", its volumes and snapshots are gone', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'db.txt', 'data');
    await takeSnapshot(h, dep);
    const r = await h.api('POST', `${base(dep)}/close`);
    expect(r.status).toBe(200);
    const closed = expectOk(r).deployment;
    expect(closed).toMatchObject({ id: dep, status: 'closed' });
    expect(closed.closedAt).toMatch(ISO_UTC);
    await h.idle();

    const got = expectOk(await h.api('GET', base(dep))).deployment;
    expect(got).toMatchObject({ id: dep, status: 'closed' });
    expect(got.services[0].state).toBe('removed');
    expect(expectOk(await h.api('GET', '/api/v1/deployments')).deployments.find((d: { id: string }) => d.id === dep)?.status).toBe(
      'closed',
    );
    expect(fs.existsSync(volumeDir(h, dep))).toBe(false);
    expect(fs.existsSync(h.paths.repo(dep))).toBe(false);
    expect(await h.runtime.deployments()).not.toContain(dep);
  });

  it('answers 409 DEPLOYMENT_NOT_ACTIVE for every change to a closed deployment', async () => {
    const dep = await createDeployment(h);
    expectOk(await h.api('POST', `${base(dep)}/close`));
    await h.idle();
    expectError(await h.api('POST', `${base(dep)}/close`), 409, 'DEPLOYMENT_NOT_ACTIVE');
    expectError(await h.api('POST', `${base(dep)}/restart`), 409, 'DEPLOYMENT_NOT_ACTIVE');
    expectError(await h.api('PUT', base(dep), { sdl: sdlFor(IDLE) }), 409, 'DEPLOYMENT_NOT_ACTIVE');
    expectError(await h.api('GET', `${base(dep)}/snapshots`), 409, 'DEPLOYMENT_NOT_ACTIVE');
    expectError(await h.api('POST', `${base(dep)}/snapshots`, {}), 409, 'DEPLOYMENT_NOT_ACTIVE');
  });

  it("answers 404 for a missing or another user's deployment, and leaves it running", async () => {
    const dep = await createDeployment(h);
    expectError(await h.api('POST', `${base('dep-aaaaaaaaaaaa')}/close`), 404, 'DEPLOYMENT_NOT_FOUND');
    expectError(await h.api('POST', `${base(dep)}/close`, undefined, bob), 404, 'DEPLOYMENT_NOT_FOUND');
    await h.idle();
    expect(expectOk(await h.api('GET', base(dep))).deployment).toMatchObject({ status: 'active', services: [{ state: 'running' }] });
  });
});

describe('service endpoints', () => {
  it('has no node list: GET /api/v1/nodes is network mode only (404 NOT_FOUND)', async () => {
    expectError(await h.api('GET', '/api/v1/nodes'), 404, 'NOT_FOUND');
  });

  it('GET /healthz answers without a token', async () => {
    const r = await raw(h, 'GET', '/healthz', { token: null });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ok', runtime: 'process', version: expect.any(String) });
  });

  it('GET /api/v1/openapi.json is an OpenAPI 3 document with the paths and their answers, and needs no token', async () => {
    const r = await raw(h, 'GET', '/api/v1/openapi.json', { token: null });
    expect(r.status).toBe(200);
    const doc = r.body;
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    const expected: Array<[string, string[]]> = [
      ['/api/v1/deployments', ['get', 'post']],
      ['/api/v1/deployments/{id}', ['get', 'put']],
      ['/api/v1/deployments/{id}/restart', ['post']],
      ['/api/v1/deployments/{id}/close', ['post']],
      ['/api/v1/deployments/{id}/snapshots', ['get', 'post']],
      ['/api/v1/deployments/{id}/snapshots/{snapshotId}', ['get', 'delete']],
      ['/api/v1/deployments/{id}/snapshots/{snapshotId}/restore', ['post']],
      ['/api/v1/deployments/{id}/snapshots/{snapshotId}/clone', ['post']],
      ['/api/v1/deployments/{id}/restores/{restoreId}', ['get']],
      ['/api/v1/deployments/{id}/snapshot-settings', ['get', 'put']],
      ['/api/v1/api-keys', ['get', 'post']],
      ['/api/v1/api-keys/{prefix}', ['delete']],
    ];
    for (const [p, methods] of expected) {
      expect(Object.keys(paths), p).toContain(p);
      for (const m of methods) expect(Object.keys(paths[p]!), `${m} ${p}`).toContain(m);
    }
    // Internal endpoints are not in the document.
    expect(Object.keys(paths)).not.toContain('/healthz');
    expect(Object.keys(paths)).not.toContain('/metrics');
    // The create-snapshot body and the snapshot shape are described.
    const post = paths['/api/v1/deployments/{id}/snapshots']!.post as { requestBody?: unknown; responses?: Record<string, unknown> };
    expect(JSON.stringify(post.requestBody)).toContain('label');
    expect(Object.keys(post.responses ?? {})).toContain('202');
    // Every answer's shape is described, from the same contract the clients use.
    const response = (p: string, m: string, status: string) =>
      JSON.stringify((paths[p]![m] as { responses?: Record<string, unknown> }).responses?.[status] ?? null);
    expect(response('/api/v1/deployments', 'get', '200')).toContain('"usedBytes"');
    expect(response('/api/v1/deployments', 'post', '201')).toContain('"lastSnapshotAt"');
    expect(response('/api/v1/deployments/{id}/snapshots/{snapshotId}/clone', 'post', '201')).toContain('"clonedFrom"');
    expect(response('/api/v1/me', 'get', '200')).toContain('"minSnapshotInterval"');
    expect(response('/api/v1/api-keys', 'get', '200')).toContain('"revokedAt"');
    expect(response('/api/v1/deployments/{id}', 'get', '404')).toContain('"code"');
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('GET /metrics is Prometheus text with the snapshot and restore metrics after a snapshot', async () => {
    const dep = await createDeployment(h);
    writeVolume(h, dep, 'a.txt', 'metrics');
    const s = await takeSnapshot(h, dep);
    expectOk(await h.api('POST', `${base(dep)}/snapshots/${s.id}/restore`, { safetySnapshot: false }), 202);
    await h.idle();
    const r = await raw(h, 'GET', '/metrics', { token: METRICS_TOKEN });
    expect(r.status).toBe(200);
    expect(r.res.headers['content-type']).toMatch(/^text\/plain/);
    const text = r.res.body;
    expect(text).toContain('# TYPE kova_snapshot_duration_seconds histogram');
    expect(text).toMatch(/^kova_snapshot_duration_seconds_count [1-9]\d*$/m);
    expect(text).toMatch(/^kova_snapshot_duration_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
    expect(text).toMatch(/^kova_snapshots_total\{outcome="ready",trigger="manual"\} [1-9]\d*$/m);
    expect(text).toMatch(/^kova_restores_total\{outcome="completed"\} [1-9]\d*$/m);
    expect(text).toMatch(/^kova_restore_downtime_seconds_count [1-9]\d*$/m);
    expect(text).toMatch(new RegExp(`^kova_repository_bytes\\{deployment="${dep}"\\} [1-9]\\d*$`, 'm'));
    expect(text).toMatch(/^kova_http_requests_total\{method="POST",code="202"\} [1-9]\d*$/m);
    // Every sample line is "name{labels} value" or "name value".
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$/);
    }
  });
});
