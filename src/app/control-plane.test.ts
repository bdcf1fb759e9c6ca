/** control-plane config: `kova control-plane`'s settings from flags, environment or defaults. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadControlPlaneConfig, readTls } from './control-plane.js';

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
      tlsCertFile: null,
      tlsKeyFile: null,
      webhooksAllowPrivate: false,
    });
  });

  it('lets webhooks call private addresses only when asked, by flag or environment', () => {
    const base = { databaseUrl: 'postgres://db/kova' };
    expect(loadControlPlaneConfig({ ...base, webhooksAllowPrivate: 'true' }, {}).webhooksAllowPrivate).toBe(true);
    expect(loadControlPlaneConfig(base, { KOVA_WEBHOOKS_ALLOW_PRIVATE: '1' }).webhooksAllowPrivate).toBe(true);
    expect(loadControlPlaneConfig(base, { KOVA_WEBHOOKS_ALLOW_PRIVATE: 'no' }).webhooksAllowPrivate).toBe(false);
    expect(() => loadControlPlaneConfig(base, { KOVA_WEBHOOKS_ALLOW_PRIVATE: 'maybe' })).toThrow(
      /webhooks allow private must be true or false/,
    );
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
    ['a TLS certificate without its key', { tlsCertFile: 'cert.pem' }, /give both --tls-cert and --tls-key/],
    ['a TLS key without its certificate', { tlsKeyFile: 'key.pem' }, /give both --tls-cert and --tls-key/],
  ])('refuses %s with INVALID_CONFIG', (_what, flags, message) => {
    expect(() => loadControlPlaneConfig({ databaseUrl: 'postgres://db/kova', ...flags }, {})).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(message) }),
    );
  });
});

describe('readTls', () => {
  let dir: string;
  const pair = (name: string): { cert: string; key: string } => {
    const cert = path.join(dir, `${name}.crt`);
    const key = path.join(dir, `${name}.key`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    return { cert, key };
  };
  let a: { cert: string; key: string };
  let b: { cert: string; key: string };
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-tls-'));
    a = pair('a');
    b = pair('b');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the certificate and key from the flags or KOVA_TLS_CERT / KOVA_TLS_KEY, and nothing without them', () => {
    const cfg = loadControlPlaneConfig({ databaseUrl: 'db' }, { KOVA_TLS_CERT: a.cert, KOVA_TLS_KEY: a.key });
    expect(cfg).toMatchObject({ tlsCertFile: a.cert, tlsKeyFile: a.key });
    expect(readTls(cfg)).toEqual({ cert: fs.readFileSync(a.cert), key: fs.readFileSync(a.key) });
    expect(readTls(loadControlPlaneConfig({ databaseUrl: 'db' }, {}))).toBeNull();
  });

  it.each([
    [
      'a missing file',
      () => ({ tlsCertFile: path.join(dir, 'none.crt'), tlsKeyFile: a.key }),
      /cannot read --tls-cert .*none\.crt: ENOENT/,
    ],
    ['a key as certificate', () => ({ tlsCertFile: a.key, tlsKeyFile: a.key }), /--tls-cert .* is not a PEM certificate/],
    ['a certificate as key', () => ({ tlsCertFile: a.cert, tlsKeyFile: a.cert }), /--tls-key .* is not an unencrypted PEM private key/],
    [
      'the key of another certificate',
      () => ({ tlsCertFile: a.cert, tlsKeyFile: b.key }),
      /--tls-key .*b\.key is not the private key of --tls-cert/,
    ],
  ])('refuses %s with INVALID_CONFIG', (_what, files, message) => {
    expect(() => readTls(files())).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(message) }));
  });
});
