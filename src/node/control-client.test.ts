/** control-client: failover between replicas, backoff while none answers, a refused token or an untrusted certificate is fatal. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ClientClosedError, ControlClient, NodeRejectedError, UntrustedCertificateError, readCa } from './control-client.js';

interface Replica {
  readonly url: string;
  readonly hits: string[];
  /** The status the replica answers with (default 200). */
  status: number;
  close(): Promise<void>;
}

const open: Array<{ close(): Promise<void> }> = [];
const clients: ControlClient[] = [];

async function replica(name: string, status = 200): Promise<Replica> {
  const hits: string[] = [];
  const r = { status } as { status: number };
  const srv = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url} ${req.headers.authorization}`);
    res.writeHead(r.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r.status === 401 ? { error: { code: 'UNAUTHORIZED', message: 'bad token' } } : { replica: name }));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      srv.closeAllConnections();
      srv.close(() => resolve());
    });
  open.push({ close });
  return Object.assign(r, { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, hits, close });
}

/** A URL on which nothing listens: connections are refused. */
async function refusingUrl(): Promise<string> {
  const r = await replica('gone');
  await r.close();
  return r.url;
}

function client(urls: string[], extra: Partial<ConstructorParameters<typeof ControlClient>[0]> = {}): ControlClient {
  const c = new ControlClient({ urls, token: 'kova_node_test', minBackoffMs: 20, maxBackoffMs: 100, ...extra });
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of open.splice(0)) await s.close();
});

describe('ControlClient', () => {
  it('sends the token and fails over to the next replica when the first refuses connections', async () => {
    const dead = await refusingUrl();
    const b = await replica('b');
    const failures: string[] = [];
    const c = client([dead, b.url], { onFailure: (url) => failures.push(url) });
    const a = await c.request('POST', '/node/v1/hello', { protocol: 1 });
    expect(a).toMatchObject({ status: 200, body: { replica: 'b' }, url: b.url });
    expect(b.hits).toEqual(['POST /node/v1/hello Bearer kova_node_test']);
    expect(failures).toEqual([dead]);
    // It stays on the replica that answered.
    await c.request('GET', '/x');
    expect(b.hits).toHaveLength(2);
    expect(failures).toHaveLength(1);
  });

  it('moves on after a 5xx answer and comes back around to the first URL', async () => {
    const a = await replica('a');
    const b = await replica('b', 503);
    const c = client([a.url, b.url]);
    expect((await c.request('GET', '/one')).url).toBe(a.url);
    a.status = 502;
    b.status = 200;
    expect((await c.request('GET', '/two')).url).toBe(b.url);
    b.status = 500;
    a.status = 200;
    expect((await c.request('GET', '/three')).url).toBe(a.url);
  });

  it('backs off while no replica answers and carries on when one comes back', async () => {
    const a = await replica('a', 503);
    const started = Date.now();
    const c = client([a.url], { random: () => 1 });
    const pending = c.request('GET', '/wait');
    await new Promise((r) => setTimeout(r, 300));
    const triesWhileDown = a.hits.length;
    a.status = 200;
    const answer = await pending;
    expect(answer.status).toBe(200);
    // Backoff 20, 40, 80, 100, 100… ms: a handful of tries in 300 ms, not hundreds.
    expect(triesWhileDown).toBeGreaterThanOrEqual(3);
    expect(triesWhileDown).toBeLessThanOrEqual(8);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('treats a refused token as fatal, for this request and every later one', async () => {
    const a = await replica('a', 401);
    const b = await replica('b');
    const c = client([a.url, b.url]);
    const err = await c.request('POST', '/node/v1/hello').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeRejectedError);
    expect((err as NodeRejectedError).code).toBe('NODE_REJECTED');
    expect((err as NodeRejectedError).message).toContain('bad token');
    await expect(c.request('GET', '/later')).rejects.toBeInstanceOf(NodeRejectedError);
    expect(b.hits).toEqual([]);
  });

  it('returns 4xx answers to the caller without failing over', async () => {
    const a = await replica('a', 409);
    const b = await replica('b');
    const c = client([a.url, b.url]);
    expect(await c.request('POST', '/r')).toMatchObject({ status: 409, url: a.url });
    expect(b.hits).toEqual([]);
  });

  it('ends a waiting request when closed', async () => {
    const c = client([await refusingUrl()]);
    const pending = c.request('GET', '/never');
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    await expect(pending).rejects.toBeInstanceOf(ClientClosedError);
  });

  it('trusts a self-signed control plane given its certificate (--ca), and refuses it without, for good', async () => {
    const tls = selfSigned('127.0.0.1');
    const url = await httpsReplica(tls);

    expect(await client([url], { ca: readCa(tls.cert) }).request('GET', '/x')).toMatchObject({ status: 200, body: { secure: true } });

    const untrusting = client([url]);
    const err = await untrusting.request('GET', '/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UntrustedCertificateError);
    expect((err as UntrustedCertificateError).code).toBe('UNTRUSTED_CERTIFICATE');
    expect((err as Error).message).toMatch(/self-signed|self signed/);
    expect((err as Error).message).toContain('--ca FILE');
    await expect(untrusting.request('GET', '/later')).rejects.toBeInstanceOf(UntrustedCertificateError);

    // A --ca that did not sign it: the message says so.
    const other = selfSigned('127.0.0.1');
    const wrong = await client([url], { ca: readCa(other.cert) })
      .request('GET', '/x')
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(UntrustedCertificateError);
    expect((wrong as Error).message).toContain('is not the certificate or CA that signed it');
  });

  it("refuses a certificate that does not name the URL's host, and says so", async () => {
    const tls = selfSigned('10.9.8.7');
    const url = await httpsReplica(tls);
    const err = await client([url], { ca: readCa(tls.cert) })
      .request('GET', '/x')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UntrustedCertificateError);
    expect((err as Error).message).toContain('a host name or IP address the certificate names');
  });

  it('retries a certificate it stops trusting once a replica has answered', async () => {
    const good = selfSigned('127.0.0.1');
    const bad = selfSigned('127.0.0.1');
    let srv!: https.Server;
    const url = await httpsReplica(good, (s) => (srv = s));
    const reasons: string[] = [];
    const c = client([url], { ca: readCa(good.cert), onFailure: (_u, reason) => reasons.push(reason) });
    expect((await c.request('GET', '/first')).status).toBe(200);
    srv.setSecureContext({ key: fs.readFileSync(bad.key), cert: fs.readFileSync(bad.cert) });
    // New connections only: the keep-alive one would still use the old certificate.
    srv.closeAllConnections();
    const pending = c.request('GET', '/retried');
    const untrusted = (): boolean => reasons.some((r) => /self-signed|self signed/.test(r));
    for (let i = 0; i < 100 && !untrusted(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(untrusted(), reasons.join('; ')).toBe(true);
    srv.setSecureContext({ key: fs.readFileSync(good.key), cert: fs.readFileSync(good.cert) });
    expect(await pending).toMatchObject({ status: 200, body: { secure: true } });
  });
});

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** selfSigned makes a self-signed certificate for one IP address (openssl). */
function selfSigned(ip: string): { key: string; cert: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-ca-'));
  tmpDirs.push(dir);
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
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
      `/CN=${ip}`,
      '-addext',
      `subjectAltName=IP:${ip}`,
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}

/** httpsReplica serves {"secure":true} over TLS on 127.0.0.1 with the given certificate. */
async function httpsReplica(tls: { key: string; cert: string }, got?: (srv: https.Server) => void): Promise<string> {
  const srv = https.createServer({ key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"secure":true}');
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  got?.(srv);
  open.push({
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  });
  return `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}
