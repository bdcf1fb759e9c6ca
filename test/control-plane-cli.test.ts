/**
 * `kova control-plane` as a child process (from the sources, under tsx): it
 * says where it serves, answers /healthz with its database, serves the API
 * with the catalogue's keys, and stops on SIGTERM; with --tls-cert and
 * --tls-key it serves HTTPS, which a `kova node` trusts only with --ca. The catalogue here is a
 * SQLite file (one replica); the PostgreSQL suites are control-plane.test.ts.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { CatalogueKeys } from '../src/control/keys.js';
import { hashNodeToken, newNodeToken, openCatalogue } from '../src/control/store/index.js';
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

  it('serves HTTPS with --tls-cert/--tls-key; a node trusts it with --ca and refuses it without', async () => {
    const db = path.join(dir, 'catalogue.db');
    const catalogue = await openCatalogue(db);
    const tokens: string[] = [];
    try {
      for (const name of ['with-ca', 'without-ca']) {
        const t = newNodeToken();
        await catalogue.addNode(name, hashNodeToken(t), Date.now());
        tokens.push(t);
      }
    } finally {
      await catalogue.close();
    }
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
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
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const port = await freePort();
    const base = `https://127.0.0.1:${port}`;
    const cp = run(['control-plane', '--port', String(port), '--log-level', 'error', '--tls-cert', cert], {
      KOVA_DATABASE_URL: db,
      KOVA_TLS_KEY: key,
    });
    const nodes: Array<ReturnType<typeof run>> = [];
    const node = (name: string, token: string, extra: string[]): ReturnType<typeof run> => {
      const n = run(
        [
          'node',
          '--control-plane',
          base,
          '--token',
          token,
          '--data-dir',
          path.join(dir, name),
          '--runtime',
          'process',
          '--log-level',
          'error',
          ...extra,
        ],
        {
          KOVA_CONTROL_PLANE_CA: '',
        },
      );
      nodes.push(n);
      return n;
    };
    try {
      const deadline = Date.now() + 60_000;
      while (!/serving on/.test(cp.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(cp.output()).toContain(`kova control plane is serving on ${base}`);
      const health = await getJson(`${base}/healthz`, fs.readFileSync(cert));
      expect(health).toMatchObject({ status: 200, body: { status: 'ok', role: 'control-plane' } });
      // Plain HTTP on the same port gets no answer from the API.
      await expect(fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status)).rejects.toThrow();

      const refused = node('without-ca', tokens[1]!, []);
      const trusted = node('with-ca', tokens[0]!, ['--ca', cert]);
      const code = await Promise.race([refused.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 60_000))]);
      expect(code, refused.output()).toBe(1);
      expect(refused.output()).toMatch(
        /kova: the control plane at https:\/\/127\.0\.0\.1:\d+ presented a certificate this node does not trust \(self[- ]signed certificate\); give the certificate, or the private CA that signed it, with --ca FILE/,
      );

      // The node with --ca said hello over TLS: the catalogue saw it.
      const seen = await waitForNode(db, 'with-ca', 60_000);
      expect(seen, trusted.output()).toBe(true);
      expect(trusted.child.exitCode).toBeNull();
    } finally {
      for (const n of nodes) n.child.kill('SIGTERM');
      await Promise.all(nodes.map((n) => n.exited));
      cp.child.kill('SIGTERM');
    }
    expect(await cp.exited).toBe(0);
  }, 120_000);
});

/** getJson GETs a URL over HTTPS trusting `ca`. */
function getJson(url: string, ca: Buffer): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** waitForNode polls the catalogue until the named node has said hello (it has a heartbeat time). */
async function waitForNode(db: string, name: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const c = await openCatalogue(db);
    try {
      const n = await c.node(name);
      if (n?.lastHeartbeatAt) return true;
    } finally {
      await c.close();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
