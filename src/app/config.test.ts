/** config: the limits, the gc interval and the metrics token file, from flags, environment or defaults. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('defaults the user limit to three times the key limit, 20 keys a user, and the token file in the data dir', () => {
    const c = loadConfig({ dataDir: '/srv/kova' }, {});
    expect(c).toMatchObject({
      rateLimitPerMinute: 100,
      userRateLimitPerMinute: 300,
      maxKeysPerUser: 20,
      metricsTokenFile: path.join('/srv/kova', 'metrics.token'),
    });
    expect(loadConfig({ rateLimitPerMinute: '1000' }, {}).userRateLimitPerMinute).toBe(3000);
  });

  it('takes each from a flag, else the environment', () => {
    const env = { KOVA_USER_RATE_LIMIT: '50', KOVA_MAX_KEYS_PER_USER: '5', KOVA_METRICS_TOKEN_FILE: '/etc/kova/metrics' };
    expect(loadConfig({}, env)).toMatchObject({ userRateLimitPerMinute: 50, maxKeysPerUser: 5, metricsTokenFile: '/etc/kova/metrics' });
    expect(loadConfig({ userRateLimitPerMinute: '60', maxKeysPerUser: 7 }, env)).toMatchObject({
      userRateLimitPerMinute: 60,
      maxKeysPerUser: 7,
    });
  });

  it('takes the gc interval from --gc-interval, else KOVA_GC_INTERVAL, else 1h', () => {
    expect(loadConfig({}, {}).gcIntervalMs).toBe(3_600_000);
    expect(loadConfig({}, { KOVA_GC_INTERVAL: '10m' }).gcIntervalMs).toBe(600_000);
    expect(loadConfig({ gcIntervalMs: '30s' }, { KOVA_GC_INTERVAL: '10m' }).gcIntervalMs).toBe(30_000);
  });

  it.each([
    ['gcIntervalMs', '0s'],
    ['gcIntervalMs', 'hourly'],
    ['gcIntervalMs', '400d'],
    ['userRateLimitPerMinute', '0'],
    ['maxKeysPerUser', '0'],
    ['maxKeysPerUser', 'many'],
  ] as const)('refuses %s %j with INVALID_CONFIG', (key, v) => {
    expect(() => loadConfig({ [key]: v }, {})).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});
