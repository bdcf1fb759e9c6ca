/**
 * The API's error contract (docs/api.md, "Responses and errors"): 401 for missing, malformed,
 * unknown or revoked tokens; 404 for what does not exist or belongs to
 * someone else, indistinguishable; 400 for unknown fields and malformed
 * JSON; 413 over 1 MiB; 429 with Retry-After per key; 404 for unknown
 * routes; 500 without stack traces or host paths. Every error has the body
 * {success: false, error: {code, message}}.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { KovaError } from '../src/core/errors.js';
import { createDeployment, expectError, expectOk, listSnapshots, raw, takeSnapshot } from './helpers/api.js';
import { type Harness, METRICS_TOKEN, sdlFor, startHarness } from './helpers/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await h.idle();
});
afterAll(async () => {
  await h?.close();
});

const base = (depId: string) => `/api/v1/deployments/${depId}`;

/** A token of the right form whose prefix no key has. */
const UNKNOWN_TOKEN = `kova_${'a'.repeat(12)}.${'b'.repeat(43)}`;

describe('401 UNAUTHORIZED', () => {
  const endpoints: Array<[string, string]> = [
    ['GET', '/api/v1/deployments'],
    ['POST', '/api/v1/deployments'],
    ['GET', '/api/v1/me'],
    ['GET', '/api/v1/api-keys'],
    ['POST', '/api/v1/api-keys'],
    ['GET', `${base('dep-aaaaaaaaaaaa')}/snapshots`],
    ['POST', `${base('dep-aaaaaaaaaaaa')}/snapshots`],
    ['DELETE', `${base('dep-aaaaaaaaaaaa')}/snapshots/snap-aaaaaaaaaaaa`],
    ['PUT', `${base('dep-aaaaaaaaaaaa')}/snapshot-settings`],
  ];

  it.each(endpoints)('%s %s without a token', async (method, url) => {
    const r = await raw(h, method, url, { token: null });
    const err = expectError(r, 401, 'UNAUTHORIZED');
    expect(err.message).toMatch(/Bearer/);
    expect(r.res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  const bad: Array<[string, string]> = [
    ['a Basic credential', 'Basic YWxpY2U6c2VjcmV0'],
    ['Bearer with no token', 'Bearer'],
    ['Bearer with an empty token', 'Bearer '],
    ['a token that is not a Kova key', 'Bearer not-a-token'],
    ['a key without its secret', `Bearer kova_${'a'.repeat(12)}`],
    ['a key with a short secret', `Bearer kova_${'a'.repeat(12)}.${'b'.repeat(10)}`],
    ['an upper-case prefix', `Bearer kova_${'A'.repeat(12)}.${'b'.repeat(43)}`],
    ['an unknown key', `Bearer ${UNKNOWN_TOKEN}`],
    ['two tokens', `Bearer ${UNKNOWN_TOKEN} ${UNKNOWN_TOKEN}`],
  ];

  it.each(bad)('rejects %s', async (_what, authorization) => {
    const r = await raw(h, 'GET', '/api/v1/deployments', { token: null, headers: { authorization } });
    expectError(r, 401, 'UNAUTHORIZED');
    expect(r.res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('rejects a known key with a wrong secret exactly like an unknown key', async () => {
    const good = h.token;
    const secret = good.split('.')[1]!;
    const wrong = `${good.split('.')[0]}.${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
    const a = await raw(h, 'GET', '/api/v1/deployments', { token: wrong });
    const b = await raw(h, 'GET', '/api/v1/deployments', { token: UNKNOWN_TOKEN });
    expectError(a, 401, 'UNAUTHORIZED');
    expect(a.body).toEqual(b.body);
    // The real key still works.
    expect((await raw(h, 'GET', '/api/v1/deployments')).status).toBe(200);
  });

  it('rejects a revoked key on its very next request', async () => {
    const u = await h.ensureUser('revokee');
    const { token, key } = await h.keys.create(u, 'soon revoked');
    expect((await raw(h, 'GET', '/api/v1/me', { token })).status).toBe(200);
    await h.keys.revoke(key.prefix, u);
    expectError(await raw(h, 'GET', '/api/v1/me', { token }), 401, 'UNAUTHORIZED');
    expectError(await raw(h, 'GET', '/api/v1/deployments', { token }), 401, 'UNAUTHORIZED');
  });

  it('accepts the scheme in any case', async () => {
    const r = await raw(h, 'GET', '/api/v1/me', { token: null, headers: { authorization: `bearer ${h.token}` } });
    expect(r.status).toBe(200);
  });

  it('changes nothing for an unauthenticated request', async () => {
    const before = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.length;
    expectError(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor('exec sleep 100000') }, null), 401, 'UNAUTHORIZED');
    expectError(await h.api('POST', '/api/v1/deployments', { sdl: sdlFor('exec sleep 100000') }, UNKNOWN_TOKEN), 401, 'UNAUTHORIZED');
    expect(expectOk(await h.api('GET', '/api/v1/deployments')).deployments).toHaveLength(before);
  });
});

describe("404: another user's things look exactly like missing ones", () => {
  let bob: string;
  let dep: string;
  let snap: string;
  let rst: string;
  let bobDep: string;

  beforeAll(async () => {
    bob = await h.newUser('bob');
    dep = await createDeployment(h);
    snap = (await takeSnapshot(h, dep, 'alice')).id;
    rst = expectOk(await h.api('POST', `${base(dep)}/snapshots/${snap}/restore`, { safetySnapshot: false }), 202).restore.id;
    bobDep = await createDeployment(h, sdlFor('exec sleep 100000'), bob);
    await h.idle();
  });

  const same = (a: { code: string; message: string }, b: { code: string; message: string }, ids: Array<[string, string]>) => {
    let m = b.message;
    for (const [from, to] of ids) m = m.split(from).join(to);
    expect({ code: a.code, message: a.message }).toEqual({ code: b.code, message: m });
  };

  it("answers DEPLOYMENT_NOT_FOUND on every endpoint of another user's deployment", async () => {
    const missing = 'dep-aaaaaaaaaaaa';
    const calls: Array<[string, (d: string) => string, unknown?]> = [
      ['GET', (d) => base(d)],
      ['PUT', (d) => base(d), { sdl: sdlFor('exec sleep 1') }],
      ['POST', (d) => `${base(d)}/restart`],
      ['POST', (d) => `${base(d)}/close`],
      ['GET', (d) => `${base(d)}/snapshots`],
      ['POST', (d) => `${base(d)}/snapshots`, {}],
      ['GET', (d) => `${base(d)}/snapshots/${snap}`],
      ['DELETE', (d) => `${base(d)}/snapshots/${snap}`],
      ['POST', (d) => `${base(d)}/snapshots/${snap}/restore`, {}],
      ['POST', (d) => `${base(d)}/snapshots/${snap}/clone`, {}],
      ['GET', (d) => `${base(d)}/restores`],
      ['GET', (d) => `${base(d)}/restores/${rst}`],
      ['GET', (d) => `${base(d)}/snapshot-settings`],
      ['PUT', (d) => `${base(d)}/snapshot-settings`, { enabled: true }],
    ];
    for (const [method, url, body] of calls) {
      const foreign = expectError(await h.api(method, url(dep), body, bob), 404, 'DEPLOYMENT_NOT_FOUND');
      const absent = expectError(await h.api(method, url(missing), body, bob), 404, 'DEPLOYMENT_NOT_FOUND');
      same(foreign, absent, [[missing, dep]]);
    }
    // Nothing happened to alice's deployment.
    await h.idle();
    const d = expectOk(await h.api('GET', base(dep))).deployment;
    expect(d.status).toBe('active');
    expect((await listSnapshots(h, dep)).map((s) => s.id)).toEqual([snap]);
    expect(expectOk(await h.api('GET', `${base(dep)}/snapshot-settings`)).settings.enabled).toBe(false);
  });

  it("answers SNAPSHOT_NOT_FOUND for another user's snapshot through one's own deployment", async () => {
    const missing = 'snap-aaaaaaaaaaaa';
    const calls: Array<[string, (s: string) => string, unknown?]> = [
      ['GET', (s) => `${base(bobDep)}/snapshots/${s}`],
      ['DELETE', (s) => `${base(bobDep)}/snapshots/${s}`],
      ['POST', (s) => `${base(bobDep)}/snapshots/${s}/restore`, {}],
      ['POST', (s) => `${base(bobDep)}/snapshots/${s}/clone`, {}],
    ];
    for (const [method, url, body] of calls) {
      const foreign = expectError(await h.api(method, url(snap), body, bob), 404, 'SNAPSHOT_NOT_FOUND');
      const absent = expectError(await h.api(method, url(missing), body, bob), 404, 'SNAPSHOT_NOT_FOUND');
      same(foreign, absent, [[missing, snap]]);
    }
    await h.idle();
    expect((await listSnapshots(h, dep)).map((s) => [s.id, s.status])).toEqual([[snap, 'ready']]);
    expect(expectOk(await h.api('GET', `${base(bobDep)}/restores`, undefined, bob)).restores).toEqual([]);
  });

  it("answers SNAPSHOT_NOT_FOUND for a snapshot of one's own other deployment", async () => {
    const other = await createDeployment(h);
    const err = expectError(await h.api('GET', `${base(other)}/snapshots/${snap}`), 404, 'SNAPSHOT_NOT_FOUND');
    expect(err.message).toContain(snap);
  });

  it("answers RESTORE_NOT_FOUND for another user's restore", async () => {
    const missing = 'rst-aaaaaaaaaaaa';
    const foreign = expectError(await h.api('GET', `${base(bobDep)}/restores/${rst}`, undefined, bob), 404, 'RESTORE_NOT_FOUND');
    const absent = expectError(await h.api('GET', `${base(bobDep)}/restores/${missing}`, undefined, bob), 404, 'RESTORE_NOT_FOUND');
    same(foreign, absent, [[missing, rst]]);
    // Alice sees it.
    expect(expectOk(await h.api('GET', `${base(dep)}/restores/${rst}`)).restore.id).toBe(rst);
  });
});

describe('400: unknown fields and malformed JSON', () => {
  let dep: string;
  let snap: string;
  beforeAll(async () => {
    dep = await createDeployment(h);
    snap = (await takeSnapshot(h, dep)).id;
  });

  it.each([
    ['POST', () => '/api/v1/deployments', () => ({ sdl: sdlFor('exec sleep 1'), replicas: 2 }), 'replicas'],
    ['PUT', () => base(dep), () => ({ sdl: sdlFor('exec sleep 1'), force: true }), 'force'],
    ['POST', () => `${base(dep)}/snapshots`, () => ({ label: 'x', tags: ['a'] }), 'tags'],
    ['POST', () => `${base(dep)}/snapshots/${snap}/restore`, () => ({ safetySnapshot: false, verify: true }), 'verify'],
    ['POST', () => `${base(dep)}/snapshots/${snap}/clone`, () => ({ name: 'x', region: 'eu' }), 'region'],
    ['PUT', () => `${base(dep)}/snapshot-settings`, () => ({ enabled: false, schedule: '0 * * * *' }), 'schedule'],
    ['POST', () => '/api/v1/api-keys', () => ({ label: 'x', admin: true }), 'admin'],
  ])('%s %s rejects an unknown field', async (method, url, body, field) => {
    const err = expectError(await h.api(method, url(), body()), 400, 'INVALID_REQUEST');
    expect(err.message).toContain(field);
    await h.idle();
    expect((await listSnapshots(h, dep)).map((s) => s.id)).toEqual([snap]);
    expect(expectOk(await h.api('GET', base(dep))).deployment.operation).toBeNull();
  });

  it.each([['{"label": '], ['{label: "x"}'], ["{'label': 'x'}"], ['{"label": "x",}'], ['not json'], ['{"label": "x"} trailing']])(
    'rejects the malformed JSON %j with 400 INVALID_JSON',
    async (payload) => {
      for (const [method, url] of [
        ['POST', `${base(dep)}/snapshots`],
        ['POST', '/api/v1/deployments'],
        ['PUT', `${base(dep)}/snapshot-settings`],
      ] as const) {
        const r = await raw(h, method, url, { headers: { 'content-type': 'application/json' }, payload });
        expectError(r, 400, 'INVALID_JSON');
      }
      expect((await listSnapshots(h, dep)).map((s) => s.id)).toEqual([snap]);
    },
  );

  it('rejects a JSON body that is not an object', async () => {
    for (const payload of ['[]', '"label"', '42', 'true']) {
      const r = await raw(h, 'POST', '/api/v1/deployments', { headers: { 'content-type': 'application/json' }, payload });
      expectError(r, 400, 'INVALID_REQUEST');
    }
  });

  it.each([
    'text/plain',
    'text/plain; charset=utf-8',
    'application/x-www-form-urlencoded',
    'application/xml',
    'application/jsonx',
    'multipart/form-data; boundary=x',
  ])('answers a body of type %s with 415 UNSUPPORTED_MEDIA_TYPE and creates nothing', async (type) => {
    const before = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.length;
    const r = await raw(h, 'POST', '/api/v1/deployments', { headers: { 'content-type': type }, payload: 'sdl' });
    const err = expectError(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(err.message).toMatch(/application\/json/);
    expect(expectOk(await h.api('GET', '/api/v1/deployments')).deployments).toHaveLength(before);
  });

  it('takes JSON with a charset', async () => {
    const dep = await createDeployment(h);
    const r = await raw(h, 'POST', `${base(dep)}/snapshots`, {
      headers: { 'content-type': 'application/json; charset=utf-8' },
      payload: '{"label":"cs"}',
    });
    expect(expectOk(r, 202).snapshot.label).toBe('cs');
    await h.idle();
  });
});

describe('413 PAYLOAD_TOO_LARGE', () => {
  it('rejects a body over 1 MiB', async () => {
    const sdl = `# ${'x'.repeat(1024 * 1024)}\n${sdlFor('exec sleep 1')}`;
    const before = expectOk(await h.api('GET', '/api/v1/deployments')).deployments.length;
    const r = await h.api('POST', '/api/v1/deployments', { sdl });
    const err = expectError(r, 413, 'PAYLOAD_TOO_LARGE');
    expect(err.message).toMatch(/1 MiB/);
    expect(expectOk(await h.api('GET', '/api/v1/deployments')).deployments).toHaveLength(before);
  });

  it('rejects a huge label the same way', async () => {
    const dep = await createDeployment(h);
    expectError(await h.api('POST', `${base(dep)}/snapshots`, { label: 'l'.repeat(2 * 1024 * 1024) }), 413, 'PAYLOAD_TOO_LARGE');
    expect(await listSnapshots(h, dep)).toEqual([]);
  });

  it('reads a body just under 1 MiB (and then judges its content)', async () => {
    const sdl = `# ${'x'.repeat(1024 * 1024 - 200)}\n`;
    const r = await h.api('POST', '/api/v1/deployments', { sdl });
    // An SDL that large is refused for what it is, not for the body size.
    expectError(r, 400, 'INVALID_SDL');
  });
});

describe('404 for unknown routes', () => {
  it.each([
    ['GET', '/api/v1/nope'],
    ['GET', '/api/v1/deployments/dep-aaaaaaaaaaaa/nope'],
    ['PATCH', '/api/v1/deployments'],
    ['DELETE', '/api/v1/deployments/dep-aaaaaaaaaaaa'],
    ['GET', '/api/v2/deployments'],
    ['GET', '/nope'],
  ])('%s %s', async (method, url) => {
    const err = expectError(await raw(h, method, url), 404, 'NOT_FOUND');
    expect(err.message).toContain(url);
  });

  it('does not echo the query string', async () => {
    const err = expectError(await raw(h, 'GET', '/api/v1/nope?token=secret'), 404, 'NOT_FOUND');
    expect(err.message).not.toContain('secret');
  });
});

describe('500 INTERNAL_ERROR', () => {
  it('answers an unexpected error without its message, stack or any host path', async () => {
    const leak = new Error(`EACCES: permission denied, open '${h.dataDir}/kova.db'`);
    vi.spyOn(h.local.deps.deployments, 'list').mockImplementation(() => {
      throw leak;
    });
    const r = await raw(h, 'GET', '/api/v1/deployments', { headers: { 'x-request-id': 'trace-500' } });
    const err = expectError(r, 500, 'INTERNAL_ERROR');
    expect(r.res.body).not.toContain(h.dataDir);
    expect(r.res.body).not.toContain('EACCES');
    expect(r.res.body).not.toMatch(/\bat .*\.[jt]s:\d+/);
    expect(r.res.body).not.toContain('/tmp');
    expect(r.res.body).not.toContain('node_modules');
    // The request id lets an operator find the logged error.
    expect(r.res.headers['x-request-id']).toBe('trace-500');
    expect(err.message).toContain('trace-500');
  });

  it('answers an unexpected error in a route with a path parameter the same way', async () => {
    vi.spyOn(h.local.deps.snapshots, 'list').mockImplementation(() => {
      throw new TypeError(`Cannot read properties of undefined (reading 'id') at ${h.dataDir}/repos`);
    });
    const dep = await createDeployment(h);
    const r = await h.api('GET', `${base(dep)}/snapshots`);
    expectError(r, 500, 'INTERNAL_ERROR');
    expect(r.res.body).not.toContain(h.dataDir);
    expect(r.res.body).not.toContain('Cannot read');
    expect(r.res.headers['x-request-id']).toMatch(/^req-/);
  });

  it('answers a deliberate error with status 500 without a host path', async () => {
    const path = `${h.dataDir}/repos/dep-aaaaaaaaaaaa/index/0001`;
    vi.spyOn(h.local.deps.snapshots, 'list').mockImplementation(() => {
      throw new KovaError('REPO_CORRUPT', `index file ${path} is damaged`, { status: 500 });
    });
    const dep = await createDeployment(h);
    const r = await h.api('GET', `${base(dep)}/snapshots`);
    expect(r.status).toBe(500);
    expect(r.body?.success).toBe(false);
    expect(r.res.body).not.toContain(h.dataDir);
  });

  it('keeps serving after an internal error', async () => {
    vi.spyOn(h.local.deps.deployments, 'list').mockImplementationOnce(() => {
      throw new Error('boom');
    });
    expectError(await h.api('GET', '/api/v1/deployments'), 500, 'INTERNAL_ERROR');
    expectOk(await h.api('GET', '/api/v1/deployments'));
  });
});

describe('429 RATE_LIMITED', () => {
  let rl: Harness;
  let clock: ManualClock;
  beforeAll(async () => {
    clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0));
    rl = await startHarness({ rateLimitPerMinute: 5, clock });
  });
  afterAll(async () => {
    await rl?.close();
  });

  it('limits each key to 5 requests a minute, with Retry-After, and resets after 60 s', async () => {
    const token = await rl.newUser('limited');
    for (let i = 0; i < 5; i++) expect((await rl.api('GET', '/api/v1/me', undefined, token)).status).toBe(200);
    const sixth = await rl.api('GET', '/api/v1/me', undefined, token);
    const err = expectError(sixth, 429, 'RATE_LIMITED');
    const retry = sixth.res.headers['retry-after'];
    expect(retry).toBe('60');
    expect(err.message).toContain('60');
    // Every kind of request counts, and stays limited within the minute.
    expectError(await rl.api('POST', '/api/v1/deployments', { sdl: sdlFor('exec sleep 1') }, token), 429, 'RATE_LIMITED');
    clock.advance(30_000);
    const later = await rl.api('GET', '/api/v1/me', undefined, token);
    expectError(later, 429, 'RATE_LIMITED');
    expect(later.res.headers['retry-after']).toBe('30');
    clock.advance(30_000);
    expect((await rl.api('GET', '/api/v1/me', undefined, token)).status).toBe(200);
    expect(expectOk(await rl.api('GET', '/api/v1/deployments', undefined, token)).deployments).toEqual([]);
  });

  it('counts per key: another key, even of the same user, has its own budget', async () => {
    const user = await rl.ensureUser('twokeys');
    const a = (await rl.keys.create(user, 'a')).token;
    const b = (await rl.keys.create(user, 'b')).token;
    for (let i = 0; i < 5; i++) expect((await rl.api('GET', '/api/v1/me', undefined, a)).status).toBe(200);
    expectError(await rl.api('GET', '/api/v1/me', undefined, a), 429, 'RATE_LIMITED');
    expect((await rl.api('GET', '/api/v1/me', undefined, b)).status).toBe(200);
    expect((await rl.api('GET', '/api/v1/me', undefined, rl.token)).status).toBe(200);
    clock.advance(60_000);
  });

  it('does not limit /healthz, /metrics or the OpenAPI document', async () => {
    for (let i = 0; i < 8; i++) {
      expect((await raw(rl, 'GET', '/healthz', { token: null })).status).toBe(200);
      expect((await raw(rl, 'GET', '/metrics', { token: METRICS_TOKEN })).status).toBe(200);
      expect((await raw(rl, 'GET', '/api/v1/openapi.json', { token: null })).status).toBe(200);
    }
  });
});
