/**
 * GET /metrics: Prometheus text from prom-client (Kova's metrics and the
 * default process metrics), behind the operator's metrics token: the
 * metrics name every user's deployments, so neither an anonymous caller nor
 * a user's API key may read them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsToken } from '../src/app/server.js';
import { Metrics } from '../src/services/metrics.js';
import { expectError, raw } from './helpers/api.js';
import { type Harness, METRICS_TOKEN, startHarness } from './helpers/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('GET /metrics', () => {
  it.each([
    ['no credentials', null],
    ["a user's valid API key", 'alice'],
    ['a wrong token', `${METRICS_TOKEN}x`],
    ['a prefix of the token', METRICS_TOKEN.slice(0, 8)],
  ])('refuses %s with 401 and lists nothing', async (_what, token) => {
    const dep = 'dep-someoneelse1';
    h.services.ctx.metrics.repositoryBytes.set({ deployment: dep }, 1234);
    const r = await raw(h, 'GET', '/metrics', { token: token === 'alice' ? h.token : token });
    expectError(r, 401, 'UNAUTHORIZED');
    expect(r.res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(r.res.body).not.toContain(dep);
    expect(r.res.body).not.toContain('kova_');
  });

  it('answers the metrics token with Kova metrics and the default process metrics', async () => {
    const r = await raw(h, 'GET', '/metrics', { token: METRICS_TOKEN });
    expect(r.status).toBe(200);
    expect(r.res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      'kova_snapshot_duration_seconds histogram',
      'kova_snapshot_freeze_seconds histogram',
      'kova_restore_duration_seconds histogram',
      'kova_restore_downtime_seconds histogram',
      'kova_snapshots_total counter',
      'kova_restores_total counter',
      'kova_repository_bytes gauge',
      'kova_http_requests_total counter',
      'process_cpu_user_seconds_total counter',
      'process_resident_memory_bytes gauge',
      'nodejs_eventloop_lag_seconds gauge',
    ]) {
      expect(r.res.body).toContain(`# TYPE ${name}`);
    }
    expect(r.res.body).toMatch(/^kova_http_requests_total\{method="GET",code="401"\} [1-9]\d*$/m);
  });

  it('refuses everyone when the server has no metrics token', async () => {
    const app = await h.buildApp({ metricsToken: null });
    try {
      for (const auth of [undefined, 'Bearer ', `Bearer ${METRICS_TOKEN}`, 'Bearer null']) {
        const r = await app.inject({ method: 'GET', url: '/metrics', headers: auth ? { authorization: auth } : {} });
        expect(r.statusCode, String(auth)).toBe(401);
      }
    } finally {
      await app.close();
    }
  });
});

describe('Metrics', () => {
  it('keeps each instance in its own registry', async () => {
    const a = new Metrics({ processMetrics: false });
    const b = new Metrics({ processMetrics: false });
    a.snapshots.inc({ outcome: 'ready', trigger: 'manual' });
    a.snapshots.inc({ outcome: 'ready', trigger: 'manual' }, 2);
    a.repositoryBytes.set({ deployment: 'dep-a' }, 42);
    expect(await a.render()).toMatch(/^kova_snapshots_total\{outcome="ready",trigger="manual"\} 3$/m);
    expect(await a.render()).toMatch(/^kova_repository_bytes\{deployment="dep-a"\} 42$/m);
    expect(await b.render()).not.toMatch(/^kova_snapshots_total\{/m);
    a.repositoryBytes.remove({ deployment: 'dep-a' });
    expect(await a.render()).not.toContain('dep-a');
    expect(await a.render()).not.toContain('process_cpu');
  });
});

describe('the metrics token file', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-metrics-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is created on first start, mode 600, and read as it is afterwards', () => {
    const file = path.join(dir, 'metrics.token');
    const token = metricsToken(file);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(metricsToken(file)).toBe(token);
    fs.writeFileSync(path.join(dir, 'mine'), '  operator-chosen-token-1234\n');
    expect(metricsToken(path.join(dir, 'mine'))).toBe('operator-chosen-token-1234');
  });

  it.each(['', 'short', 'has a space in it somewhere'])('refuses the token %j with INVALID_CONFIG', (content) => {
    const file = path.join(dir, `bad-${content.length}`);
    fs.writeFileSync(file, content);
    expect(() => metricsToken(file)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});
