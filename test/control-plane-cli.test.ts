/**
 * `kova control-plane` as a child process (from the sources, under tsx): it
 * says where it serves, answers /healthz with its database, serves the API
 * with the catalogue's keys, and stops on SIGTERM. The catalogue here is a
 * SQLite file (one replica); the PostgreSQL suites are control-plane.test.ts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { CatalogueKeys } from '../src/control/keys.js';
import { openCatalogue } from '../src/control/store/index.js';
import { freePort } from './helpers/server-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = ['--import', 'tsx', path.join(ROOT, 'test', 'fixtures', 'kova-cli.ts')];

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-cp-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [...CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

describe('kova control-plane', () => {
  it('refuses to start without a database, saying how to give one', async () => {
    const p = run(['control-plane'], { KOVA_DATABASE_URL: '' });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/kova: give the database: --database postgres:.*KOVA_DATABASE_URL/);
  });

  it('prints its URL, reports the database in /healthz, serves the API and stops on SIGTERM', async () => {
    const db = path.join(dir, 'catalogue.db');
    const catalogue = await openCatalogue(db);
    let token: string;
    try {
      const user = await catalogue.ensureUser('alice', 'user', Date.now());
      token = (await new CatalogueKeys(catalogue, systemClock).create(user.id, 'test')).token;
    } finally {
      await catalogue.close();
    }
    const port = await freePort();
    const p = run(['control-plane', '--port', String(port), '--log-level', 'error'], { KOVA_DATABASE_URL: db });
    try {
      const deadline = Date.now() + 60_000;
      while (!/serving on/.test(p.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(p.output()).toContain(`kova control plane is serving on http://127.0.0.1:${port}`);
      const base = `http://127.0.0.1:${port}`;
      const health = await fetch(`${base}/healthz`);
      expect({ status: health.status, body: await health.json() }).toMatchObject({
        status: 200,
        body: { status: 'ok', role: 'control-plane', database: 'ok' },
      });
      const list = await fetch(`${base}/api/v1/deployments`, { headers: { authorization: `Bearer ${token}` } });
      expect(await list.json()).toEqual({ success: true, deployments: [] });
      const me = await fetch(`${base}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } });
      expect(me.status).toBe(403);
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
  });
});
