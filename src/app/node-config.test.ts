/** node-config: control-plane URLs, the node token and the CA file, from flags or environment; serve's settings reused. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNodeConfig } from './node-config.js';

const TOKEN = 'kova_node_abc123';

describe('loadNodeConfig', () => {
  it('splits several replica URLs, keeps their order and reuses the runtime settings of serve', () => {
    const c = loadNodeConfig(
      { controlPlane: 'https://cp1.example:8443, http://127.0.0.1:9000/', token: TOKEN, runtime: 'process', dataDir: '/srv/node' },
      {},
    );
    expect(c.controlPlanes).toEqual(['https://cp1.example:8443', 'http://127.0.0.1:9000']);
    expect(c.token).toBe(TOKEN);
    expect(c.caFile).toBeNull();
    expect(c.server).toMatchObject({ runtime: 'process', dataDir: '/srv/node', jobConcurrency: 2 });
  });

  it('takes each from the environment when no flag is given', () => {
    const c = loadNodeConfig(
      {},
      { KOVA_CONTROL_PLANE: 'http://cp:1', KOVA_NODE_TOKEN: TOKEN, KOVA_CONTROL_PLANE_CA: 'ca.pem', KOVA_RUNTIME: 'docker' },
    );
    expect(c).toMatchObject({ controlPlanes: ['http://cp:1'], token: TOKEN, caFile: path.resolve('ca.pem') });
    expect(c.server.runtime).toBe('docker');
  });

  it('refuses a missing or malformed URL or token with INVALID_CONFIG', () => {
    const bad = [
      [{ token: TOKEN }, /--control-plane/],
      [{ controlPlane: 'ftp://cp', token: TOKEN }, /http:\/\/ or https:\/\//],
      [{ controlPlane: 'not a url', token: TOKEN }, /not a URL/],
      [{ controlPlane: ' , ', token: TOKEN }, /no control-plane URL/],
      [{ controlPlane: 'http://cp' }, /--token/],
      [{ controlPlane: 'http://cp', token: 'kova_user_key' }, /must start with kova_node_/],
    ] as const;
    for (const [flags, message] of bad) {
      expect(() => loadNodeConfig(flags, {}), JSON.stringify(flags)).toThrow(message);
      try {
        loadNodeConfig(flags, {});
      } catch (err) {
        expect((err as { code: string }).code).toBe('INVALID_CONFIG');
      }
    }
  });
});
