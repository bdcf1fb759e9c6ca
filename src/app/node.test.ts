/** node: the composition root of `kova node` chooses its runtime as `kova serve` does. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNodeConfig } from './node-config.js';
import { startNode } from './node.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('startNode', () => {
  it('refuses to start on auto when Docker does not answer, leaving no database behind', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-node-start-'));
    dirs.push(dataDir);
    const cfg = loadNodeConfig(
      { controlPlane: 'http://127.0.0.1:9', token: 'kova_node_x', dataDir, dockerHost: path.join(dataDir, 'no-docker.sock') },
      {},
    );
    expect(cfg.server.runtime).toBe('auto');
    await expect(startNode(cfg, { logger: pino({ level: 'silent' }) })).rejects.toMatchObject({ code: 'RUNTIME_UNAVAILABLE' });
    expect(fs.existsSync(path.join(dataDir, 'kova.db'))).toBe(false);
  });
});
