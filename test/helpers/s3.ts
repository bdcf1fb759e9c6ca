/**
 * s3: a real S3 endpoint for tests (s3rver, in-process, on a random loopback
 * port, storing objects under a temp directory), and a loopback HTTP proxy in
 * front of it that counts upload bytes and injects faults (5xx answers,
 * connections dropped mid-upload, truncated response bodies).
 */
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { S3Storage, type S3StorageOptions } from '../../src/engine/storage/s3-storage.js';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

/** s3rver's fixed credentials. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3Server {
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps the objects (for tests that look at or damage them). */
  readonly dir: string;
  /** storage returns an S3Storage on this server under `prefix`. */
  storage(prefix: string, opts?: Partial<S3StorageOptions>): S3Storage;
  /** env gives a child `kova` process this server's endpoint and credentials. */
  env(): Record<string, string>;
  close(): Promise<void>;
}

export async function startS3(bucket = 'kova-test'): Promise<S3Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    dir,
    storage: (prefix, opts = {}) =>
      new S3Storage({
        bucket,
        prefix,
        endpoint,
        region: 'us-east-1',
        credentials: S3_CREDENTIALS,
        baseDelayMs: 10,
        maxDelayMs: 200,
        ...opts,
      }),
    env: () => ({
      KOVA_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    }),
    close: async () => {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** objectFiles lists the files s3rver holds for a bucket (content files only). */
export function objectFiles(s3: S3Server): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('._S3rver_object')) out.push(p);
    }
  };
  walk(path.join(s3.dir, s3.bucket));
  return out.sort();
}

export interface FaultPlan {
  /** Fraction of requests answered 500 or 503 without reaching the server. */
  error?: number;
  /** Fraction of uploads (PUT) whose connection is dropped after part of the body. */
  dropUpload?: number;
  /** Fraction of GET responses whose body is cut short (connection closed early). */
  truncate?: number;
  /** Delay before forwarding each upload, to make a copy slow enough to kill midway. */
  uploadDelayMs?: number;
}

export interface Proxy {
  readonly endpoint: string;
  /** Request body bytes of PUT requests that reached the server in full. */
  uploaded: number;
  /** Requests answered with a fault so far. */
  faults: number;
  plan: FaultPlan;
  close(): Promise<void>;
}

/**
 * startProxy forwards requests to `target` (an http://127.0.0.1:PORT URL),
 * injecting faults by `plan` with a seeded generator so runs are repeatable.
 */
export async function startProxy(target: string, plan: FaultPlan = {}, seed = 1): Promise<Proxy> {
  const to = new URL(target);
  let x = seed >>> 0 || 1;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const sockets = new Set<net.Socket>();
  const state: Proxy = {
    endpoint: '',
    uploaded: 0,
    faults: 0,
    plan,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const p = state.plan;
    if (p.error && rnd() < p.error) {
      state.faults++;
      req.resume();
      res.writeHead(rnd() < 0.5 ? 500 : 503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
      return;
    }
    const drop = req.method === 'PUT' && !!p.dropUpload && rnd() < p.dropUpload;
    const truncate = req.method === 'GET' && !!p.truncate && rnd() < p.truncate;
    const chunks: Buffer[] = [];
    let dropped = false;
    const dropNow = (): void => {
      if (dropped) return;
      dropped = true;
      state.faults++;
      req.socket.destroy();
    };
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      // Part of the body arrived: cut the connection mid-upload.
      if (drop) dropNow();
    });
    req.on('end', () => {
      if (drop) {
        // An empty body: nothing to cut, so drop before answering.
        dropNow();
        return;
      }
      const body = Buffer.concat(chunks);
      const delay = req.method === 'PUT' ? (p.uploadDelayMs ?? 0) : 0;
      setTimeout(() => forward(body), delay);
    });
    const forward = (body: Buffer): void => {
      const up = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        if (truncate && ur.statusCode !== undefined && ur.statusCode < 300) {
          const parts: Buffer[] = [];
          ur.on('data', (c: Buffer) => parts.push(c));
          ur.on('end', () => {
            const all = Buffer.concat(parts);
            if (all.length < 2) {
              res.writeHead(ur.statusCode ?? 502, ur.headers);
              res.end(all);
              return;
            }
            state.faults++;
            res.writeHead(ur.statusCode ?? 502, ur.headers);
            res.write(all.subarray(0, Math.floor(all.length / 2)));
            // Close with the promised length unsent.
            res.socket?.destroy();
          });
          return;
        }
        if (req.method === 'PUT' && ur.statusCode !== undefined && ur.statusCode < 300) state.uploaded += body.length;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    };
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  (state as { endpoint: string }).endpoint = `http://127.0.0.1:${addr.port}`;
  return state;
}
