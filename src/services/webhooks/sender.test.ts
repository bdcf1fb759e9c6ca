/**
 * Webhook attempts against a real HTTP receiver on loopback: what it gets,
 * how each kind of failure is reported, and the retry schedule.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ATTEMPTS, deliver, retryDelayMs, sign, verifySignature } from './sender.js';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: http.Server;
let base: string;
const received: Received[] = [];
let answer: (res: http.ServerResponse) => void = (res) => res.end('thanks');

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(parts).toString() });
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const request = (over: Partial<Parameters<typeof deliver>[0]> = {}): Parameters<typeof deliver>[0] => ({
  url: `${base}/hook`,
  secret: 's3cret',
  event: 'snapshot.failed',
  deliveryId: 'dlv-1',
  body: JSON.stringify({ event: 'snapshot.failed', snapshot: { id: 'snap-1' } }),
  ...over,
});

describe('deliver', () => {
  it('posts the body with the event, the delivery id and a signature the receiver can check', async () => {
    received.length = 0;
    answer = (res) => res.end('thanks');
    const a = await deliver(request());
    expect(a).toMatchObject({ ok: true, status: 200, detail: 'thanks' });
    const r = received[0]!;
    expect(r.headers['x-kova-event']).toBe('snapshot.failed');
    expect(r.headers['x-kova-delivery']).toBe('dlv-1');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.body).toBe(request().body);
    expect(verifySignature('s3cret', r.body, r.headers['x-kova-signature'] as string)).toBe(true);
    expect(verifySignature('other', r.body, r.headers['x-kova-signature'] as string)).toBe(false);
    expect(verifySignature('s3cret', `${r.body} `, r.headers['x-kova-signature'] as string)).toBe(false);
    // The documented form: sha256=<hex HMAC of the body>.
    expect(sign('key', 'The quick brown fox jumps over the lazy dog')).toBe(
      'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    );
  });

  it('reports an error status with the start of the answer, and does not follow redirects', async () => {
    answer = (res) => {
      res.statusCode = 503;
      res.end('busy '.repeat(500));
    };
    const a = await deliver(request());
    expect(a.ok).toBe(false);
    expect(a.status).toBe(503);
    expect(a.detail.startsWith('HTTP 503: busy busy')).toBe(true);
    expect(a.detail.length).toBeLessThan(600);
    received.length = 0;
    answer = (res) => {
      res.statusCode = 302;
      res.setHeader('location', `${base}/elsewhere`);
      res.end();
    };
    const b = await deliver(request());
    expect(b).toMatchObject({ ok: false, status: 302 });
    expect(received).toHaveLength(1);
  });

  it('reports a timeout and a refused connection without throwing', async () => {
    answer = () => undefined; // never answers
    const a = await deliver(request({ timeoutMs: 300 }));
    expect(a).toMatchObject({ ok: false, status: null, detail: 'timed out' });
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const b = await deliver(request({ url: `http://127.0.0.1:${port}/` }));
    expect(b).toMatchObject({ ok: false, status: null, detail: 'ECONNREFUSED' });
    answer = (res) => res.end('ok');
  });
});

describe('retryDelayMs', () => {
  it('backs off from 30 s, doubling to at most an hour, with at most 10% jitter, and stops after the last attempt', () => {
    expect(retryDelayMs(1, 0)).toBeNull();
    expect(retryDelayMs(2, 0)).toBe(30_000);
    expect(retryDelayMs(3, 0)).toBe(60_000);
    expect(retryDelayMs(4, 0.999)).toBeLessThanOrEqual(132_000);
    for (let a = 2; a <= MAX_ATTEMPTS; a++) {
      expect(retryDelayMs(a, 0)!).toBeLessThanOrEqual(3_600_000);
      expect(retryDelayMs(a, 0.99)!).toBeGreaterThanOrEqual(retryDelayMs(a, 0)!);
      if (a > 2) expect(retryDelayMs(a, 0)!).toBeGreaterThanOrEqual(retryDelayMs(a - 1, 0)!);
    }
    expect(retryDelayMs(MAX_ATTEMPTS + 1, 0)).toBeNull();
  });
});
