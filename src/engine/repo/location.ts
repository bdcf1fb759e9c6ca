/**
 * location: opens or creates a repository from where it is: a local
 * directory, or `s3://bucket/prefix` in an S3-compatible service. A
 * repository in object storage is always encrypted (crypto/encrypted-storage.ts),
 * so it needs the operator's key file. The S3 client and the encryption are
 * loaded only for an s3:// location: loading the S3 SDK takes longer than a
 * small local snapshot.
 */
import { InvalidInputError } from '../../core/errors.js';
import type { EncryptedStorage } from '../crypto/encrypted-storage.js';
import { KeyRequiredError, readMasterKey } from '../crypto/keys.js';
import type { S3Storage, S3StorageOptions } from '../storage/s3-storage.js';
import type { InitOptions } from './config.js';
import { type OpenOptions, Repository } from './repository.js';

export interface LocationOptions extends OpenOptions {
  /** Endpoint URL of the S3-compatible service (default: AWS). */
  readonly s3Endpoint?: string;
  /** The master key file (32 bytes, base64 or hex); required for s3:// locations. */
  readonly keyFile?: string;
  /** More S3 settings (region, credentials, part sizes, retries). */
  readonly s3?: Partial<Omit<S3StorageOptions, 'bucket' | 'prefix' | 'endpoint'>>;
}

export function isS3Location(location: string): boolean {
  return location.startsWith('s3://');
}

async function encryptedBackend(
  location: string,
  opts: LocationOptions,
): Promise<{ inner: S3Storage; key: Buffer; encrypted: typeof EncryptedStorage }> {
  const { S3Storage, parseS3Url } = await import('../storage/s3-storage.js');
  const { EncryptedStorage } = await import('../crypto/encrypted-storage.js');
  const { bucket, prefix } = parseS3Url(location);
  if (!opts.keyFile) throw new KeyRequiredError(location);
  const key = await readMasterKey(opts.keyFile);
  if (opts.s3Endpoint !== undefined && !/^https?:\/\/[^/]+/.test(opts.s3Endpoint)) {
    throw new InvalidInputError(`S3 endpoint must be an http:// or https:// URL, got ${opts.s3Endpoint}`);
  }
  const inner = new S3Storage({ ...opts.s3, bucket, prefix, ...(opts.s3Endpoint ? { endpoint: opts.s3Endpoint } : {}) });
  return { inner, key, encrypted: EncryptedStorage };
}

/** openRepository opens the repository at `location`. */
export async function openRepository(location: string, opts: LocationOptions = {}): Promise<Repository> {
  if (!isS3Location(location)) {
    if (opts.keyFile)
      throw new InvalidInputError(`${location} is a local repository: local repositories are not encrypted, drop --key-file`);
    return Repository.open(location, opts);
  }
  const { inner, key, encrypted } = await encryptedBackend(location, opts);
  try {
    return await Repository.openStorage(await encrypted.open(inner, key), opts);
  } catch (err) {
    await inner.close();
    throw err;
  }
}

/** initRepository creates a repository at `location` (an empty directory or an unused bucket prefix). */
export async function initRepository(location: string, opts: LocationOptions = {}, init: InitOptions = {}): Promise<Repository> {
  if (!isS3Location(location)) {
    if (opts.keyFile)
      throw new InvalidInputError(`${location} is a local repository: local repositories are not encrypted, drop --key-file`);
    return Repository.init(location, init);
  }
  const { inner, key, encrypted } = await encryptedBackend(location, opts);
  try {
    return await Repository.create(await encrypted.create(inner, key), init);
  } catch (err) {
    await inner.close();
    throw err;
  }
}
