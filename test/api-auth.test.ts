/**
 * Authentication is decided by the route the router matched, not by the raw
 * URL: every route needs an API key unless it is marked public, so spelling
 * a path differently (percent-encoded, doubled slashes, `..`, another case)
 * either reaches the same route, with the same check, or no route at all.
 * Checked through inject() and through a real socket, which passes the
 * request line through untouched.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_LIMITS } from '../src/api/deps.js';
import { errorBody } from '../src/api/errors.js';
import { ManualClock } from '../src/core/clock.js';
import { expectError, raw } from './helpers/api.js';
import { type Harness, startHarness } from './helpers/harness.js';

let h: Harness;
let base: string;

beforeAll(async () => {
  h = await startHarness();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  await h?.close();
});

/** overSocket sends `path` verbatim on the request line (Node's client does not normalise it). */
function overSocket(method: string, path: string, token?: string): Promise<{ status: number; body: string }> {
  const [host, port] = base.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port: Number(port), method, path, headers: token ? { authorization: `Bearer ${token}` } : {}, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Spellings of GET /api/v1/deployments, and what each gets without a key
 * over a socket and through inject() (which resolves `.` and `..` segments
 * the way a URL parser does, so those reach the route there).
 */
const VARIANTS: Array<[string, 401 | 404, 401 | 404]> = [
  ['/%61pi/v1/deployments', 401, 401],
  ['/api/v1/%64eployments', 401, 401],
  ['/%61%70%69/%76%31/%64%65%70%6c%6f%79%6d%65%6e%74%73', 401, 401],
  ['/api/v1/deployments?x=/healthz', 401, 401],
  // Matches /api/v1/deployments/:id with an empty id.
  ['/api/v1/deployments/', 401, 401],
  ['/api/v1/../api/v1/deployments', 404, 404],
  ['/api/v1/../v1/deployments', 404, 401],
  ['/api/v1/./deployments', 404, 401],
  ['/healthz/../api/v1/deployments', 404, 401],
  ['/api/v1/openapi.json/../deployments', 404, 401],
  ['//api/v1/deployments', 404, 404],
  ['/api/v1//deployments', 404, 404],
  ['/API/v1/deployments', 404, 404],
  ['/api/v1/Deployments', 404, 404],
  ['/api/v1/deployments%2F', 404, 404],
  ['/api/v1/deployments%2f', 404, 404],
  ['/%2Fapi/v1/deployments', 404, 404],
  ['/%41PI/v1/%44eployments/', 404, 404],
];

const code = (status: number) => (status === 401 ? 'UNAUTHORIZED' : 'NOT_FOUND');

describe('every spelling of a protected path is authenticated or not found', () => {
  it.each(VARIANTS)(
    'GET %s without a key: %d over a socket, %d through inject(); the handler never runs',
    async (url, overSocketStatus, injectStatus) => {
      const list = vi.spyOn(h.local.deps.deployments, 'list');
      const r = await raw(h, 'GET', url, { token: null });
      expectError(r, injectStatus, code(injectStatus));
      const s = await overSocket('GET', url);
      expect(s.status).toBe(overSocketStatus);
      expect(JSON.parse(s.body)).toMatchObject({ success: false, error: { code: code(overSocketStatus) } });
      expect(list).not.toHaveBeenCalled();
    },
  );

  it('answers an encoded spelling of the route like the plain one when the key is good', async () => {
    const plain = await overSocket('GET', '/api/v1/deployments', h.token);
    const encoded = await overSocket('GET', '/%61pi/v1/deployments', h.token);
    expect(plain.status).toBe(200);
    expect(encoded).toEqual(plain);
  });

  it.each([
    ['GET', '/api/v1/deployments/dep-aaaaaaaaaaaa'],
    ['GET', '/api/v1/deployments/%64ep-aaaaaaaaaaaa/snapshots'],
    ['DELETE', '/api/v1/api-keys/%61aaa'],
    ['HEAD', '/api/v1/deployments'],
    ['HEAD', '/%61pi/v1/me'],
  ])('%s %s without a key: 401', async (method, url) => {
    const r = await raw(h, method, url, { token: null });
    // A HEAD answer has no body to check.
    if (method === 'HEAD') expect(r.status).toBe(401);
    else expectError(r, 401, 'UNAUTHORIZED');
    expect((await overSocket(method, url)).status).toBe(401);
  });

  it('keeps the public routes public, in any spelling the router accepts', async () => {
    for (const url of ['/healthz', '/%68ealthz', '/api/v1/openapi.json', '/%61pi/v1/openapi.json']) {
      expect((await raw(h, 'GET', url, { token: null })).status, url).toBe(200);
      expect((await overSocket('GET', url)).status, url).toBe(200);
    }
  });

  it('answers an unmatched /api path with 404 whether or not a key is sent, naming only the path', async () => {
    for (const token of [null, h.token]) {
      const err = expectError(await raw(h, 'GET', '/api/v1/nope?token=secret', { token }), 404, 'NOT_FOUND');
      expect(err.message).toBe('no route GET /api/v1/nope');
    }
  });
});

/** A second app around the harness's services (routes can still be added to it). */
function buildSecondApp(webDir: string | null = null): ReturnType<Harness['buildApp']> {
  return h.buildApp({ webDir });
}

describe('deny by default', () => {
  it('authenticates a route registered without `public`, wherever it lives', async () => {
    const app = await buildSecondApp();
    try {
      const seen: string[] = [];
      app.get('/internal/debug', async (req) => {
        seen.push(req.user.name);
        return { success: true };
      });
      app.get('/internal/open', { config: { public: true } }, async () => ({ success: true }));
      const anon = await app.inject({ method: 'GET', url: '/internal/debug' });
      expect(anon.statusCode).toBe(401);
      expect(JSON.parse(anon.body)).toEqual(errorBody('UNAUTHORIZED', expect.any(String) as unknown as string));
      expect(seen).toEqual([]);
      const authed = await app.inject({ method: 'GET', url: '/internal/debug', headers: { authorization: `Bearer ${h.token}` } });
      expect(authed.statusCode).toBe(200);
      expect(seen).toEqual(['alice']);
      expect((await app.inject({ method: 'GET', url: '/internal/open' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('serves the dashboard files without a key and still authenticates the API next to them', async () => {
    const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web', 'dist');
    expect(fs.existsSync(path.join(webDir, 'index.html'))).toBe(true);
    const app = await buildSecondApp(webDir);
    try {
      for (const url of ['/', '/index.html', '/deployments/dep-aaaaaaaaaaaa']) {
        const r = await app.inject({ method: 'GET', url });
        expect(r.statusCode, url).toBe(200);
        expect(r.headers['content-type'], url).toMatch(/^text\/html/);
      }
      for (const url of ['/api/v1/deployments', '/%61pi/v1/deployments'])
        expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/api/v1/Deployments' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('sign-in attempts are limited before scrypt runs', () => {
  let s: Harness;
  let clock: ManualClock;
  beforeAll(async () => {
    clock = new ManualClock(Date.UTC(2026, 4, 1, 9, 0, 0));
    s = await startHarness({
      clock,
      rateLimitPerMinute: 5,
      limits: {
        userRateLimitPerMinute: 8,
        signInsPerPrefix: DEFAULT_LIMITS.signInsPerPrefix,
        signInsPerAddress: DEFAULT_LIMITS.signInsPerAddress,
      },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  const from = (address: string, token: string | null, url = '/api/v1/me') =>
    s.app.inject({ method: 'GET', url, remoteAddress: address, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const wrongSecret = (token: string, i: number) => `${token.split('.')[0]}.${String(i).padStart(43, 'x')}`;
  /** A token of the right form whose prefix (i in base 32) no key has. */
  const unknownPrefix = (i: number) =>
    `kova_${[...i.toString(32).padStart(12, '0')].map((d) => 'abcdefghijklmnopqrstuvwxyz234567'[parseInt(d, 32)]).join('')}.${'c'.repeat(43)}`;

  it('answers 80 parallel wrong secrets for one key with 429 beyond 10, computing at most 10 scrypts', async () => {
    const victim = await s.newUser('victim');
    const scrypts = vi.spyOn(s.keys, 'checkHash');
    const rs = await Promise.all(Array.from({ length: 80 }, (_, i) => from('10.0.0.1', wrongSecret(victim, i))));
    const statuses = rs.map((r) => r.statusCode);
    expect(statuses.filter((c) => c === 401)).toHaveLength(DEFAULT_LIMITS.signInsPerPrefix);
    expect(statuses.filter((c) => c === 429)).toHaveLength(80 - DEFAULT_LIMITS.signInsPerPrefix);
    expect(scrypts).toHaveBeenCalledTimes(DEFAULT_LIMITS.signInsPerPrefix);
    const limited = rs.find((r) => r.statusCode === 429)!;
    expect(JSON.parse(limited.body)).toEqual({
      success: false,
      error: { code: 'RATE_LIMITED', message: expect.stringMatching(/retry in 60 s/) },
    });
    expect(limited.headers['retry-after']).toBe('60');
    // The right secret for that prefix waits too (its check would be a scrypt); after the window it works.
    expect((await from('10.0.0.9', victim)).statusCode).toBe(429);
    clock.advance(60_000);
    expect((await from('10.0.0.9', victim)).statusCode).toBe(200);
  });

  it('makes a prefix that no key has cost one scrypt, like a wrong secret or a revoked key', async () => {
    const u = await s.ensureUser('revoked');
    const { token, key } = await s.keys.create(u, null);
    await s.keys.revoke(key.prefix, u);
    const good = await s.newUser('scrypted');
    for (const t of [unknownPrefix(1), wrongSecret(good, 1), token]) {
      const scrypts = vi.spyOn(s.keys, 'checkHash');
      expect((await from('10.0.1.1', t)).statusCode).toBe(401);
      expect(scrypts).toHaveBeenCalledTimes(1);
      vi.restoreAllMocks();
    }
    clock.advance(60_000);
  });

  it('limits one address to 30 scrypt checks a minute across prefixes, without slowing other clients', async () => {
    const bystander = await s.newUser('bystander');
    const cached = await s.newUser('cached');
    expect((await from('10.0.2.2', cached)).statusCode).toBe(200);
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => from('10.0.2.1', unknownPrefix(1000 + i))));
    expect(rs.filter((r) => r.statusCode === 401)).toHaveLength(DEFAULT_LIMITS.signInsPerAddress);
    expect(rs.filter((r) => r.statusCode === 429)).toHaveLength(40 - DEFAULT_LIMITS.signInsPerAddress);
    // The attacker also hammers the cached key's prefix: its owner, verified a moment ago, is not held up.
    await Promise.all(Array.from({ length: 20 }, (_, i) => from('10.0.2.3', wrongSecret(cached, i))));
    expect((await from('10.0.2.2', cached)).statusCode).toBe(200);
    // A first sign-in from another address, on another prefix, goes through.
    expect((await from('10.0.2.4', bystander)).statusCode).toBe(200);
    clock.advance(60_000);
    expect((await from('10.0.2.1', unknownPrefix(5000))).statusCode).toBe(401);
  });

  it('limits each user across all their keys, besides each key', async () => {
    const user = await s.ensureUser('manykeys');
    const keys = await Promise.all([1, 2, 3].map(async (i) => (await s.keys.create(user, `k${i}`)).token));
    for (let i = 0; i < 5; i++) expect((await from('10.0.3.1', keys[0]!)).statusCode).toBe(200);
    expect((await from('10.0.3.1', keys[0]!)).statusCode).toBe(429);
    for (let i = 0; i < 3; i++) expect((await from('10.0.3.1', keys[1]!)).statusCode).toBe(200);
    // 8 requests: the user's budget is spent, whichever key comes next.
    const r = await from('10.0.3.1', keys[2]!);
    expect(r.statusCode).toBe(429);
    expect(JSON.parse(r.body).error.code).toBe('RATE_LIMITED');
    expect(r.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    // Another user is not affected.
    expect((await from('10.0.3.1', s.token)).statusCode).toBe(200);
    clock.advance(60_000);
    expect((await from('10.0.3.1', keys[2]!)).statusCode).toBe(200);
  });
});
