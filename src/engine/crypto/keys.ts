/**
 * keys: the operator's master key and the keys derived from it for one
 * repository (docs/format.md, "Encrypted repositories").
 *
 * The master key is 32 random bytes in a file (base64 or hex). Each
 * repository's key is HKDF-SHA256(master, salt "kova-offsite-v1", info
 * "kova repository <id>"), where <id> is the repository id in the plaintext
 * `config` object of the bucket; from it, HKDF derives the data, name and
 * check keys. Nothing secret is stored next to the data: the master key and
 * the repository id are enough to read a repository after the node is gone.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import { KovaError, isErrno } from '../../core/errors.js';

export const KEY_BYTES = 32;
const MASTER_SALT = Buffer.from('kova-offsite-v1');

/** A repository in object storage needs a key file and none was given. */
export class KeyRequiredError extends KovaError {
  constructor(location: string) {
    super('KEY_REQUIRED', `${location} is an encrypted repository: give the key file with --key-file FILE (or KOVA_OFFSITE_KEY_FILE)`, {
      status: 400,
      details: { location },
    });
  }
}

/** The key file is missing, unreadable, or does not hold a 32-byte key. */
export class InvalidKeyFileError extends KovaError {
  constructor(file: string, why: string) {
    super('INVALID_KEY_FILE', `key file ${file}: ${why}`, { status: 400, details: { file } });
  }
}

/** The key does not open this repository (another master key, or another repository's key). */
export class WrongKeyError extends KovaError {
  constructor(location: string) {
    super('WRONG_KEY', `the key does not match the repository at ${location} (wrong key file?)`, { status: 403, details: { location } });
  }
}

/** parseMasterKey decodes a key file's text: 64 hex digits or base64 of 32 bytes, surrounding whitespace ignored. */
export function parseMasterKey(text: string, file = 'key'): Buffer {
  const t = text.trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== KEY_BYTES) {
    throw new InvalidKeyFileError(file, 'expected 32 random bytes written as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)');
  }
  if (key.every((b) => b === key[0])) throw new InvalidKeyFileError(file, 'the key is a repeated byte, not a random key');
  return key;
}

/** readMasterKey reads and parses a key file. */
export async function readMasterKey(file: string): Promise<Buffer> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err)) throw new InvalidKeyFileError(file, `cannot read it (${err.code})`);
    throw err;
  }
  return parseMasterKey(text, file);
}

/** newMasterKey returns a fresh key file's text (base64 of 32 random bytes). */
export function newMasterKey(): string {
  return `${randomBytes(KEY_BYTES).toString('base64')}\n`;
}

/** The keys of one repository. */
export interface RepoKeys {
  /** Derives each object's content key (with the object's random nonce as salt). */
  readonly data: Buffer;
  /** Encrypts object names (AES-256 key wrap with padding, deterministic). */
  readonly names: Buffer;
  /** Proves the key without revealing it: the `keyCheck` of the config object. */
  readonly check: Buffer;
}

function hkdf(key: Buffer, salt: Buffer | string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, info, KEY_BYTES));
}

/** repositoryKey is the per-repository key: what an operator may hand out for one repository alone. */
export function repositoryKey(master: Buffer, repositoryId: string): Buffer {
  return hkdf(master, MASTER_SALT, `kova repository ${repositoryId}`);
}

/** deriveRepoKeys derives the data, name and check keys of one repository from the master key. */
export function deriveRepoKeys(master: Buffer, repositoryId: string): RepoKeys {
  const repo = repositoryKey(master, repositoryId);
  return { data: hkdf(repo, '', 'kova data'), names: hkdf(repo, '', 'kova names'), check: hkdf(repo, '', 'kova key check') };
}

/** keyCheck is the value stored in the config object to recognise the right key. */
export function keyCheck(keys: RepoKeys): string {
  return createHmac('sha256', keys.check).update('kova key check v1').digest('hex');
}

export function keyCheckMatches(keys: RepoKeys, stored: string): boolean {
  const want = Buffer.from(keyCheck(keys), 'hex');
  const got = Buffer.from(stored, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** objectKey derives the content key of one object from its random nonce. */
export function objectKey(keys: RepoKeys, nonce: Buffer): Buffer {
  return hkdf(keys.data, nonce, 'kova object v1');
}
