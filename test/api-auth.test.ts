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
import { buildApp } from '../src/api/app.js';
import { errorBody } from '../src/api/errors.js';
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
    const req = http.request({ host, port: Number(port), method, path, headers: token ? { authorization: `Bearer ${token}` } : {}, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
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
  it.each(VARIANTS)('GET %s without a key: %d over a socket, %d through inject(); the handler never runs', async (url, overSocketStatus, injectStatus) => {
    const list = vi.spyOn(h.services.deployments, 'list');
    const r = await raw(h, 'GET', url, { token: null });
    expectError(r, injectStatus, code(injectStatus));
    const s = await overSocket('GET', url);
    expect(s.status).toBe(overSocketStatus);
    expect(JSON.parse(s.body)).toMatchObject({ success: false, error: { code: code(overSocketStatus) } });
    expect(list).not.toHaveBeenCalled();
  });

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
function buildSecondApp(webDir: string | null = null): ReturnType<typeof buildApp> {
  return buildApp({
    keys: h.services.keys,
    deployments: h.services.deployments,
    snapshots: h.services.snapshots,
    restores: h.services.restores,
    settings: h.services.settings,
    metrics: h.services.ctx.metrics,
    clock: h.clock,
    config: { minSnapshotIntervalMs: 1000, rateLimitPerMinute: 100_000, runtime: 'process', version: 'test', webDir },
  });
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
      for (const url of ['/api/v1/deployments', '/%61pi/v1/deployments']) expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/api/v1/Deployments' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});
