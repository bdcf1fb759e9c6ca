/**
 * S3 storage against a real S3 endpoint (s3rver on loopback): the shared
 * Storage contract for S3Storage and for the encrypting wrapper over it,
 * multipart uploads, retries through a faulty proxy, and what the bucket's
 * operator can see of an encrypted repository.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isErrno } from '../src/core/errors.js';
import { EncryptedStorage } from '../src/engine/crypto/encrypted-storage.js';
import { WrongKeyError } from '../src/engine/crypto/keys.js';
import { bytes, storageContract } from '../src/engine/storage/testing.js';
import { type Proxy, type S3Server, objectFiles, startProxy, startS3 } from './helpers/s3.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let s3: S3Server;
let seq = 0;
const prefix = (): string => `t${process.pid}/${++seq}`;

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.close();
});

storageContract('S3Storage', () => {
  const storage = s3.storage(prefix());
  return { storage, cleanup: () => storage.close() };
});

storageContract('EncryptedStorage over S3Storage', async () => {
  const storage = await EncryptedStorage.create(s3.storage(prefix()), randomBytes(32));
  return { storage, cleanup: () => storage.close() };
});

describe('S3Storage', () => {
  it('uploads large objects in parts and reads them back whole and by range', async () => {
    const s = s3.storage(prefix(), { multipartThreshold: 64 * 1024, partSize: 20 * 1024 });
    const data = bytes(150_000, 3);
    await s.write('packs/ab/big', data);
    expect((await s.read('packs/ab/big')).equals(data)).toBe(true);
    expect((await s.readAt('packs/ab/big', 19_000, 30_000)).equals(data.subarray(19_000, 49_000))).toBe(true);
    expect(await s.size('packs/ab/big')).toBe(150_000);
    await s.close();
  });

  it('takes 501 Not Implemented as final: a service without upload listing costs one request, not a retry series', async () => {
    // s3rver does not implement listing multipart uploads: it answers 501, as some S3-compatible services do.
    const retries: string[] = [];
    const s = s3.storage(prefix(), { onRetry: (w) => retries.push(w) });
    await s.write('packs/ab/x', bytes(100, 1));
    expect(await s.cleanTemp()).toBe(0);
    expect(retries).toEqual([]);
    expect((await s.read('packs/ab/x')).equals(bytes(100, 1))).toBe(true);
    await s.close();
  });

  it('loads the SDK at the first request, so commands that never use S3 do not pay for it', async () => {
    // A fresh process: this one has the SDK loaded already. It imports the
    // engine, makes a storage (no request yet), then makes one request (to
    // the server in this process, so the child runs asynchronously).
    const script = `
      const Module = require('node:module');
      const sdk = () => Object.keys(Module._cache).filter((k) => k.includes('@aws-sdk')).length;
      import(${JSON.stringify(path.join(ROOT, 'dist/engine/index.js'))}).then(async (engine) => {
        const { S3Storage } = await import(${JSON.stringify(path.join(ROOT, 'dist/engine/storage/s3-storage.js'))});
        const s = new S3Storage({ bucket: 'b', endpoint: ${JSON.stringify(s3.endpoint)}, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
        const before = sdk();
        await s.size('missing').catch(() => undefined);
        console.log(JSON.stringify({ engine: typeof engine.Repository, before, after: sdk() }));
        await s.close();
      });`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    const out = JSON.parse(stdout.trim()) as Record<string, unknown>;
    expect(out.engine).toBe('function');
    expect(out.before).toBe(0);
    expect(out.after).toBeGreaterThan(0);
  });

  it('parses s3:// locations and refuses bad ones', async () => {
    const { parseS3Url } = await import('../src/engine/storage/s3-storage.js');
    expect(parseS3Url('s3://bucket-1/a/b/')).toEqual({ bucket: 'bucket-1', prefix: 'a/b' });
    expect(parseS3Url('s3://bucket-1')).toEqual({ bucket: 'bucket-1', prefix: '' });
    for (const bad of ['s3://', 'http://x/y', 's3://Bad_Bucket/x', 's3://bucket/a/../b']) expect(() => parseS3Url(bad)).toThrow(/S3/);
  });

  describe('through a faulty proxy', () => {
    let proxy: Proxy;
    beforeAll(async () => {
      proxy = await startProxy(s3.endpoint, {}, 7);
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it('retries 5xx answers, dropped uploads and truncated bodies until every operation succeeds', async () => {
      proxy.plan = { error: 0.2, dropUpload: 0.2, truncate: 0.2 };
      proxy.faults = 0;
      const retries: string[] = [];
      const s = s3.storage(prefix(), {
        endpoint: proxy.endpoint,
        multipartThreshold: 64 * 1024,
        partSize: 16 * 1024,
        onRetry: (w) => retries.push(w),
      });
      const objects = Array.from({ length: 12 }, (_, i) => bytes(i % 3 === 0 ? 100_000 : 3000 + i, i + 1));
      await Promise.all(objects.map((d, i) => s.write(`o/${i}`, d)));
      for (let i = 0; i < objects.length; i++) {
        expect((await s.read(`o/${i}`)).equals(objects[i]!)).toBe(true);
        expect((await s.readAt(`o/${i}`, 100, 1000)).equals(objects[i]!.subarray(100, 1100))).toBe(true);
      }
      expect(await s.list('o')).toHaveLength(12);
      expect(proxy.faults).toBeGreaterThan(5);
      expect(retries.length).toBeGreaterThanOrEqual(proxy.faults);
      proxy.plan = {};
      // What the server holds is exactly what was written.
      const direct = s3.storage(s.location.slice(`s3://${s3.bucket}/`.length));
      for (let i = 0; i < objects.length; i++) expect((await direct.read(`o/${i}`)).equals(objects[i]!)).toBe(true);
      await s.close();
      await direct.close();
    });

    it('gives up after maxAttempts with the last error, and a missing object is not retried', async () => {
      proxy.plan = { error: 1 };
      const retries: string[] = [];
      const s = s3.storage(prefix(), { endpoint: proxy.endpoint, maxAttempts: 3, onRetry: (w) => retries.push(w) });
      await expect(s.write('x/y', Buffer.from('z'))).rejects.toMatchObject({ $metadata: { httpStatusCode: expect.any(Number) } });
      expect(retries).toHaveLength(2);
      proxy.plan = {};
      retries.length = 0;
      const err = await s.read('x/missing').catch((e: unknown) => e);
      expect(isErrno(err, 'ENOENT')).toBe(true);
      expect(retries).toHaveLength(0);
      await s.close();
    });
  });
});

describe('EncryptedStorage over S3', () => {
  it('stores neither plaintext nor plaintext names, and refuses another key', async () => {
    const p = prefix();
    const key = randomBytes(32);
    const s = await EncryptedStorage.create(s3.storage(p), key);
    const secret = Buffer.from('THE-PLAINTEXT-MARKER-'.repeat(200));
    const name = `packs/ab/ab${'c'.repeat(62)}`;
    await s.write(name, secret);
    const files = objectFiles(s3).filter((f) => f.includes(`/${p}/`));
    expect(files.length).toBe(2); // config and the object
    for (const f of files) {
      expect(f.includes('c'.repeat(62))).toBe(false);
      const body = fs.readFileSync(f);
      expect(body.includes('THE-PLAINTEXT-MARKER')).toBe(false);
      expect(body.includes('c'.repeat(62))).toBe(false);
    }
    expect((await s.read(name)).equals(secret)).toBe(true);
    await expect(EncryptedStorage.open(s3.storage(p), randomBytes(32))).rejects.toBeInstanceOf(WrongKeyError);
    await expect(EncryptedStorage.open(s3.storage(p), randomBytes(32))).rejects.toMatchObject({ code: 'WRONG_KEY' });
    const again = await EncryptedStorage.open(s3.storage(p), key);
    expect(await again.list('packs')).toEqual([name]);
    await s.close();
    await again.close();
  });
});
