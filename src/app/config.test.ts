/** config: the limits and the metrics token file, from flags, environment or defaults. */
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

  it.each([
    ['userRateLimitPerMinute', '0'],
    ['maxKeysPerUser', '0'],
    ['maxKeysPerUser', 'many'],
  ] as const)('refuses %s %j with INVALID_CONFIG', (key, v) => {
    expect(() => loadConfig({ [key]: v }, {})).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});
