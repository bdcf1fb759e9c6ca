/**
 * receiver: an HTTP server on loopback that records every request it gets,
 * for the webhook suites. `answer` decides the response (default 200 "ok").
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  /** http://127.0.0.1:PORT (no trailing slash). */
  readonly base: string;
  /** Every request, in arrival order. */
  readonly received: Received[];
  /** Answers each request once its body has arrived; replace it to fail or delay. */
  answer: (res: http.ServerResponse) => void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      r.received.push({ headers: req.headers, body: Buffer.concat(parts).toString() });
      r.answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const r: Receiver = {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: [],
    answer: (res) => res.end('ok'),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return r;
}
