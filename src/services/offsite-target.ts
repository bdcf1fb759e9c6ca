/**
 * offsite-target: where the off-node copies live and how to open them.
 *
 * One target, `s3://BUCKET/PREFIX`, holds:
 *   PREFIX/deployments/<dep>/   each deployment's repository (encrypted with
 *                               its own key, derived from the master key and
 *                               the repository's id: docs/format.md)
 *   PREFIX/catalogue/           an encrypted store with one object, the
 *                               catalogue (offsite-catalogue.ts)
 */
import { RepoNotFoundError } from '../core/errors.js';
import { EncryptedStorage } from '../engine/crypto/encrypted-storage.js';
import { readMasterKey } from '../engine/crypto/keys.js';
import type { Repository } from '../engine/index.js';
import { type LocationOptions, initRepository, openRepository } from '../engine/repo/location.js';
import { S3Storage, type S3StorageOptions, parseS3Url } from '../engine/storage/s3-storage.js';

/** Long operations wait for each other's locks on a bucket repository rather than fail (as repos.ts does locally). */
const LOCK_WAIT_MS = 30 * 60_000;

export interface OffsiteTarget {
  /** s3://BUCKET/PREFIX, without a trailing slash. */
  readonly url: string;
  /** The S3-compatible service; default AWS. */
  readonly s3Endpoint?: string;
  /** The operator's master key file. */
  readonly keyFile: string;
  /** More S3 settings (credentials, retries); default: the AWS environment variables or shared credentials file. */
  readonly s3?: Partial<Omit<S3StorageOptions, 'bucket' | 'prefix' | 'endpoint'>>;
}

/** normalizeTarget drops a trailing slash and checks the URL's form. */
export function normalizeTarget(t: OffsiteTarget): OffsiteTarget {
  const url = t.url.replace(/\/+$/, '');
  parseS3Url(url);
  return { ...t, url };
}

/**
 * targetIdentity names a target without its credentials: its URL, and the
 * origin of its S3 endpoint when it is not AWS (user and password in an
 * endpoint URL are left out). Nodes of a network report it to the control
 * plane, which moves a deployment only between nodes that name the same one.
 */
export function targetIdentity(t: Pick<OffsiteTarget, 'url' | 's3Endpoint'>): string {
  const url = t.url.replace(/\/+$/, '');
  if (!t.s3Endpoint) return url;
  let origin: string;
  try {
    origin = new URL(t.s3Endpoint).origin;
  } catch {
    origin = t.s3Endpoint;
  }
  return `${url} at ${origin}`;
}

export function deploymentLocation(t: OffsiteTarget, depId: string): string {
  return `${t.url}/deployments/${depId}`;
}

function locationOptions(t: OffsiteTarget): LocationOptions {
  return {
    keyFile: t.keyFile,
    lockTimeoutMs: LOCK_WAIT_MS,
    ...(t.s3Endpoint ? { s3Endpoint: t.s3Endpoint } : {}),
    ...(t.s3 ? { s3: t.s3 } : {}),
  };
}

/**
 * openDeploymentRepo opens a deployment's bucket repository; with `like`,
 * creates it when missing with that repository's chunker, pack and
 * compression settings. Null when missing and not created.
 */
export async function openDeploymentRepo(t: OffsiteTarget, depId: string, like?: Repository): Promise<Repository | null> {
  const location = deploymentLocation(t, depId);
  try {
    return await openRepository(location, locationOptions(t));
  } catch (err) {
    if (!(err instanceof RepoNotFoundError) || !like) {
      if (err instanceof RepoNotFoundError) return null;
      throw err;
    }
  }
  const { chunker, packSize, compressionLevel } = like.config;
  await (
    await initRepository(location, locationOptions(t), {
      chunker: { minSize: chunker.minSize, avgSize: chunker.avgSize, maxSize: chunker.maxSize },
      packSize,
      compressionLevel,
    })
  ).close();
  return openRepository(location, locationOptions(t));
}

/** A small encrypted object store under PREFIX/catalogue. */
export interface CatalogueStore {
  read(name: string): Promise<Buffer | null>;
  write(name: string, data: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** openCatalogueStore opens the catalogue's encrypted store, creating it when `create` and missing (null otherwise). */
export async function openCatalogueStore(t: OffsiteTarget, create: boolean): Promise<CatalogueStore | null> {
  const { bucket, prefix } = parseS3Url(`${t.url}/catalogue`);
  const key = await readMasterKey(t.keyFile);
  const inner = new S3Storage({ ...t.s3, bucket, prefix, ...(t.s3Endpoint ? { endpoint: t.s3Endpoint } : {}) });
  let enc: EncryptedStorage;
  try {
    try {
      enc = await EncryptedStorage.open(inner, key);
    } catch (err) {
      if (!(err instanceof RepoNotFoundError)) throw err;
      if (!create) {
        await inner.close();
        return null;
      }
      enc = await EncryptedStorage.create(inner, key);
    }
  } catch (err) {
    await inner.close();
    throw err;
  }
  return {
    read: async (name) => {
      try {
        return await enc.read(name);
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return null;
        throw err;
      }
    },
    write: (name, data) => enc.write(name, data),
    close: () => enc.close(),
  };
}
