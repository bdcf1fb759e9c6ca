/**
 * s3-storage: a Storage in an S3-compatible bucket (AWS S3, Cloudflare R2,
 * MinIO, Ceph RGW, Garage), under a key prefix. Object keys mirror the
 * repository's names: `<prefix>/<name>`.
 *
 * An S3 PUT is atomic: an object appears whole or not at all, so writes need
 * no temp files. Objects above `multipartThreshold` go up as multipart
 * uploads (parts of `partSize`), which are completed only when every part is
 * in; an upload interrupted by a crash stays invisible and cleanTemp aborts
 * it. Every request is retried with exponential backoff and jitter on
 * network errors, 5xx, throttling and short bodies; all requests are
 * idempotent (PUT of the same name with the same bytes, ranged GET, DELETE),
 * so a retry after an ambiguous failure is harmless. Uploads carry
 * Content-MD5, so a body damaged in transit is refused by the server.
 *
 * Concurrency: any number of calls may run at once; the SDK's connection pool
 * bounds sockets (`maxSockets`).
 */
import { createHash } from 'node:crypto';
import type * as Sdk from '@aws-sdk/client-s3';
import { CorruptionError, InvalidInputError } from '../../core/errors.js';
import { notFound, type Storage } from './storage.js';

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3StorageOptions {
  readonly bucket: string;
  /** Key prefix without leading or trailing '/'; '' for the bucket's root. */
  readonly prefix?: string;
  /** Endpoint URL of an S3-compatible service; default: AWS for the region. */
  readonly endpoint?: string;
  /** Default: AWS_REGION, else us-east-1. */
  readonly region?: string;
  /** Path-style addressing (http://host/bucket/key). Default: true when an endpoint is given. */
  readonly forcePathStyle?: boolean;
  /** Default: the SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then the shared credentials file). */
  readonly credentials?: S3Credentials;
  /** Objects larger than this go up as multipart uploads. Default 16 MiB. */
  readonly multipartThreshold?: number;
  /** Part size of multipart uploads (S3's minimum is 5 MiB except for the last part). Default 8 MiB. */
  readonly partSize?: number;
  /** Attempts per request, the first included. Default 8. */
  readonly maxAttempts?: number;
  /** First retry delay; doubles each attempt up to maxDelayMs, with ±50% jitter. Default 200 ms. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Give up on a request with no response for this long. Default 120 s. */
  readonly requestTimeoutMs?: number;
  /** Sockets per host. Default 16. */
  readonly maxSockets?: number;
  /** Called before each retry, for logs and tests. */
  readonly onRetry?: (what: string, attempt: number, err: unknown) => void;
}

export const S3_DEFAULTS = {
  region: 'us-east-1',
  multipartThreshold: 16 * 1024 * 1024,
  partSize: 8 * 1024 * 1024,
  maxAttempts: 8,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  requestTimeoutMs: 120_000,
  maxSockets: 16,
} as const;

/** A location `s3://bucket/prefix`, parsed. */
export interface S3Location {
  readonly bucket: string;
  readonly prefix: string;
}

/** parseS3Url parses `s3://bucket[/prefix]`; the prefix loses surrounding slashes. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new InvalidInputError(`not an S3 location: ${url} (expected s3://bucket/prefix)`);
  const bucket = m[1] as string;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new InvalidInputError(`invalid S3 bucket name ${bucket}`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((p) => p === '.' || p === '..') || prefix.includes('//')) {
    throw new InvalidInputError(`invalid S3 prefix ${prefix}`);
  }
  return { bucket, prefix };
}

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

function status(err: unknown): number | undefined {
  return (err as SdkError | null)?.$metadata?.httpStatusCode;
}

function isMissing(err: unknown): boolean {
  const e = err as SdkError | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || status(err) === 404;
}

/** A short or damaged response body: the request is retried. */
class ShortBodyError extends Error {
  readonly retryable = true;
}

/** isRetryable: transient failures worth another attempt. */
function isRetryable(err: unknown): boolean {
  if (err instanceof ShortBodyError) return true;
  const s = status(err);
  // 501 Not Implemented is the service's final word on a feature it lacks, not a passing fault.
  if (s === 501 || (err as SdkError).name === 'NotImplemented') return false;
  if (s !== undefined)
    return s >= 500 || s === 429 || s === 408 || (err as SdkError).name === 'RequestTimeout' || (err as SdkError).name === 'BadDigest';
  // No HTTP status: the request did not get an answer (reset, refused, timeout, aborted body).
  const e = err as SdkError & { message?: string };
  if (e?.name === 'AbortError') return false;
  return true;
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

export class S3Storage implements Storage {
  readonly location: string;
  /**
   * The SDK and its client, made on the first request: loading the SDK takes
   * longer than most CLI commands take to run, and most never use S3.
   */
  private sdk: Promise<{ sdk: typeof Sdk; client: Sdk.S3Client }> | null = null;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly opts: Required<Omit<S3StorageOptions, 'credentials' | 'endpoint' | 'onRetry' | 'prefix' | 'forcePathStyle'>>;

  constructor(private readonly options: S3StorageOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ? `${options.prefix.replace(/^\/+|\/+$/g, '')}/` : '';
    this.location = `s3://${this.bucket}/${this.prefix}`;
    this.opts = {
      bucket: options.bucket,
      region: options.region ?? process.env.AWS_REGION ?? S3_DEFAULTS.region,
      multipartThreshold: options.multipartThreshold ?? S3_DEFAULTS.multipartThreshold,
      partSize: options.partSize ?? S3_DEFAULTS.partSize,
      maxAttempts: options.maxAttempts ?? S3_DEFAULTS.maxAttempts,
      baseDelayMs: options.baseDelayMs ?? S3_DEFAULTS.baseDelayMs,
      maxDelayMs: options.maxDelayMs ?? S3_DEFAULTS.maxDelayMs,
      requestTimeoutMs: options.requestTimeoutMs ?? S3_DEFAULTS.requestTimeoutMs,
      maxSockets: options.maxSockets ?? S3_DEFAULTS.maxSockets,
    };
    if (this.opts.partSize < 1024 || this.opts.multipartThreshold < this.opts.partSize) {
      throw new InvalidInputError('S3 part size must be at least 1 KiB and at most the multipart threshold');
    }
  }

  /** s3 loads the SDK and makes the client once; every request goes through it. */
  private s3(): Promise<{ sdk: typeof Sdk; client: Sdk.S3Client }> {
    this.sdk ??= import('@aws-sdk/client-s3').then((sdk) => {
      // Kova supports Node 20: the SDK's notice about its future Node versions
      // would be printed to every CLI run's stderr.
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
      const client = new sdk.S3Client({
        region: this.opts.region,
        ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
        forcePathStyle: this.options.forcePathStyle ?? !!this.options.endpoint,
        ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
        // Retries are ours (below), so that a short body is retried like a failed request.
        maxAttempts: 1,
        // Streamed uploads with checksums use aws-chunked framing, which not every S3-compatible service decodes.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: {
          requestTimeout: this.opts.requestTimeoutMs,
          connectionTimeout: 30_000,
          httpAgent: { maxSockets: this.opts.maxSockets, keepAlive: true },
          httpsAgent: { maxSockets: this.opts.maxSockets, keepAlive: true },
        },
      });
      return { sdk, client };
    });
    return this.sdk;
  }

  private key(name: string): string {
    if (name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '' || p === '.')) {
      throw new Error(`invalid storage name ${name}`);
    }
    return this.prefix + name;
  }

  /** retry runs `fn` until it succeeds, fails for good, or attempts run out. */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (isMissing(err) || !isRetryable(err) || attempt >= this.opts.maxAttempts) throw err;
        this.options.onRetry?.(what, attempt, err);
        const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random());
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async write(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    const { sdk, client } = await this.s3();
    const key = this.key(name);
    // One copy: the caller may reuse its buffers once write resolves, and retries resend the same bytes.
    const body = Buffer.concat(Buffer.isBuffer(data) ? [data] : [...data]);
    if (body.length <= this.opts.multipartThreshold) {
      const sum = md5(body);
      await this.retry(`PUT ${key}`, () =>
        client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ContentMD5: sum })),
      );
      return;
    }
    await this.multipart(key, body);
  }

  private async multipart(key: string, body: Buffer): Promise<void> {
    const { sdk, client } = await this.s3();
    const created = await this.retry(`create upload ${key}`, () =>
      client.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key })),
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error(`S3 returned no upload id for ${key}`);
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      const size = this.opts.partSize;
      // Parts go up two at a time: enough to fill a link without holding many sockets.
      const count = Math.ceil(body.length / size);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next++;
          const part = body.subarray(i * size, Math.min(body.length, (i + 1) * size));
          const sum = md5(part);
          const res = await this.retry(`PUT part ${i + 1} of ${key}`, () =>
            client.send(
              new sdk.UploadPartCommand({
                Bucket: this.bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: i + 1,
                Body: part,
                ContentLength: part.length,
                ContentMD5: sum,
              }),
            ),
          );
          if (!res.ETag) throw new Error(`S3 returned no ETag for part ${i + 1} of ${key}`);
          parts[i] = { PartNumber: i + 1, ETag: res.ETag };
        }
      };
      await Promise.all([worker(), worker()]);
      await this.retry(`complete upload ${key}`, () =>
        client.send(
          new sdk.CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
        ),
      );
    } catch (err) {
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** get fetches an object (or a range of it) and checks the body's length. */
  private async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const { sdk, client } = await this.s3();
    const key = this.key(name);
    try {
      return await this.retry(`GET ${key}`, async () => {
        const res = await client.send(
          new sdk.GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
          }),
        );
        if (!res.Body) throw new ShortBodyError(`S3 returned no body for ${key}`);
        // A view of the collected bytes, not a copy (a range may be 32 MiB).
        const bytes = await res.Body.transformToByteArray();
        const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (res.ContentLength !== undefined && body.length !== res.ContentLength) {
          throw new ShortBodyError(`S3 body of ${key} has ${body.length} bytes, expected ${res.ContentLength}`);
        }
        if (range && body.length !== range.length) {
          // A range reaching past the end is answered with what exists.
          throw new CorruptionError(`${name} is shorter than expected (wanted ${range.length} bytes at ${range.offset})`, { file: name });
        }
        return body;
      });
    } catch (err) {
      if (isMissing(err)) throw notFound(name);
      if (range && status(err) === 416) {
        throw new CorruptionError(`${name} is shorter than expected (wanted ${range.length} bytes at ${range.offset})`, { file: name });
      }
      throw err;
    }
  }

  read(name: string): Promise<Buffer> {
    return this.get(name);
  }

  async readAt(name: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) {
      const size = await this.size(name);
      if (offset > size) throw new CorruptionError(`${name} is shorter than expected (wanted 0 bytes at ${offset})`, { file: name });
      return Buffer.alloc(0);
    }
    return this.get(name, { offset, length });
  }

  async size(name: string): Promise<number> {
    const { sdk, client } = await this.s3();
    const key = this.key(name);
    try {
      const res = await this.retry(`HEAD ${key}`, () => client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return res.ContentLength ?? 0;
    } catch (err) {
      if (isMissing(err)) throw notFound(name);
      throw err;
    }
  }

  async list(dir: string): Promise<string[]> {
    const { sdk, client } = await this.s3();
    const prefix = `${this.prefix}${dir}/`;
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.retry(`LIST ${prefix}`, () =>
        client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) })),
      );
      for (const o of res.Contents ?? []) if (o.Key) out.push(o.Key.slice(this.prefix.length));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async remove(name: string): Promise<void> {
    const { sdk, client } = await this.s3();
    const key = this.key(name);
    try {
      await this.retry(`DELETE ${key}`, () => client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  /**
   * cleanTemp aborts multipart uploads under the prefix that a crashed writer
   * left behind (they are invisible but billed). Called with a writer lock,
   * so no other writer of this repository is uploading. A service that does
   * not list uploads (some S3-compatible ones) is left to its own expiry.
   */
  async cleanTemp(): Promise<number> {
    const { sdk, client } = await this.s3();
    let aborted = 0;
    try {
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      for (;;) {
        const res = await this.retry('LIST uploads', () =>
          client.send(
            new sdk.ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: this.prefix,
              ...(keyMarker ? { KeyMarker: keyMarker } : {}),
              ...(idMarker ? { UploadIdMarker: idMarker } : {}),
            }),
          ),
        );
        for (const u of res.Uploads ?? []) {
          if (!u.Key || !u.UploadId) continue;
          await client
            .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }))
            .catch(() => undefined);
          aborted++;
        }
        if (!res.IsTruncated) break;
        keyMarker = res.NextKeyMarker;
        idMarker = res.NextUploadIdMarker;
      }
    } catch (err) {
      const e = err as SdkError;
      if (e?.name === 'NotImplemented' || status(err) === 501) return aborted;
      throw err;
    }
    return aborted;
  }

  /** close ends the kept-alive connections; the next request opens new ones. */
  async close(): Promise<void> {
    const made = this.sdk;
    this.sdk = null;
    if (made) (await made).client.destroy();
  }
}
