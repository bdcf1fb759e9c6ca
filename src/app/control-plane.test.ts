/** control-plane config: `kova control-plane`'s settings from flags, environment or defaults. */
import { describe, expect, it } from 'vitest';
import { loadControlPlaneConfig } from './control-plane.js';

describe('loadControlPlaneConfig', () => {
  it('needs a database, and says how to give it', () => {
    expect(() => loadControlPlaneConfig({}, {})).toThrow(/--database postgres:.*KOVA_DATABASE_URL/);
  });

  it('has the documented defaults', () => {
    expect(loadControlPlaneConfig({ databaseUrl: 'postgres://db/kova' }, {})).toEqual({
      databaseUrl: 'postgres://db/kova',
      host: '127.0.0.1',
      port: 8080,
      nodeTimeoutMs: 30_000,
      waitMs: 10_000,
      minSnapshotIntervalMs: 3_600_000,
      rateLimitPerMinute: 100,
      userRateLimitPerMinute: 300,
      logLevel: 'info',
    });
  });

  it('takes each from a flag, else the environment', () => {
    const env = { KOVA_DATABASE_URL: 'postgres://env/kova', KOVA_HOST: '0.0.0.0', KOVA_PORT: '9000', KOVA_NODE_TIMEOUT: '1m' };
    expect(loadControlPlaneConfig({}, env)).toMatchObject({
      databaseUrl: 'postgres://env/kova',
      host: '0.0.0.0',
      port: 9000,
      nodeTimeoutMs: 60_000,
    });
    expect(loadControlPlaneConfig({ databaseUrl: 'postgres://flag/kova', port: '9001', nodeTimeoutMs: '45s' }, env)).toMatchObject({
      databaseUrl: 'postgres://flag/kova',
      port: 9001,
      nodeTimeoutMs: 45_000,
    });
  });

  it.each([
    ['a node timeout that is not a duration', { nodeTimeoutMs: 'soon' }, /node timeout must be a duration/],
    ['a node timeout under 3 s', { nodeTimeoutMs: '1s' }, /node timeout must be a duration from 3s/],
    ['a port out of range', { port: '70000' }, /port must be an integer from 0 to 65535/],
    ['a node wait of 0', { waitMs: '0s' }, /node wait must be a duration/],
  ])('refuses %s with INVALID_CONFIG', (_what, flags, message) => {
    expect(() => loadControlPlaneConfig({ databaseUrl: 'postgres://db/kova', ...flags }, {})).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(message) }),
    );
  });
});
