/**
 * encrypted-storage: a Storage that encrypts and authenticates every object
 * and its name before handing it to another Storage (an S3 bucket run by
 * someone else). The repository above it keeps working with plaintext.
 *
 * Layout in the backend (docs/format.md, "Encrypted repositories"):
 *   config                 plaintext JSON: repository id, algorithms, key check (no secret)
 *   <top>/<enc name>       every other object; <top> is the first component
 *                          of the plaintext name ("packs", "index", …, "root"
 *                          for names without a directory), <enc name> the
 *                          base64url AES-256-KWP (RFC 5649) encryption of the
 *                          whole plaintext name under the name key.
 * An object: "KOVAENC1" | nonce (12 random bytes) | segments. The plaintext is
 * cut into SEGMENT_BYTES segments, each sealed with AES-256-GCM under the
 * object's key (HKDF of the data key, salted with the nonce); segment i uses
 * the 96-bit nonce u64be(i) | u32be(last ? 1 : 0) and the header plus the
 * plaintext name as additional data, so segments can be neither reordered,
 * dropped at the end, nor moved to another name. A range read fetches and
 * opens only the segments it covers.
 *
 * Concurrency: as the backend's; the header cache is per instance and only
 * holds write-once objects' headers (replaced on write and remove).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CorruptionError, InvalidInputError, RepoNotFoundError, isErrno } from '../../core/errors.js';
import type { Storage } from '../storage/storage.js';
import { type RepoKeys, WrongKeyError, deriveRepoKeys, keyCheck, keyCheckMatches, objectKey } from './keys.js';

export const ENVELOPE_NAME = 'config';
export const SEGMENT_BYTES = 64 * 1024;
const MAGIC = Buffer.from('KOVAENC1');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + NONCE_BYTES;
const KWP_IV = Buffer.from('A65959A6', 'hex');
const HEADER_CACHE = 1024;

/** The plaintext `config` object of an encrypted repository. */
export interface Envelope {
  readonly kova: 'encrypted-repository';
  readonly version: 1;
  readonly repositoryId: string;
  readonly cipher: 'AES-256-GCM';
  readonly kdf: 'HKDF-SHA256';
  readonly names: 'AES-256-KWP';
  readonly segmentBytes: number;
  readonly keyCheck: string;
}

/** plainSize maps an object's stored size to its plaintext size (null when no plaintext has that size). */
export function plainSize(stored: number): number | null {
  const body = stored - HEADER_BYTES;
  if (body < TAG_BYTES) return null;
  const full = Math.floor(body / (SEGMENT_BYTES + TAG_BYTES));
  const rest = body - full * (SEGMENT_BYTES + TAG_BYTES);
  if (rest === 0) return full > 0 ? full * SEGMENT_BYTES : null;
  if (rest < TAG_BYTES || (rest === TAG_BYTES && full > 0)) return null;
  return full * SEGMENT_BYTES + rest - TAG_BYTES;
}

function segmentCount(plain: number): number {
  return Math.max(1, Math.ceil(plain / SEGMENT_BYTES));
}

function segmentNonce(i: number, last: boolean): Buffer {
  const n = Buffer.alloc(NONCE_BYTES);
  n.writeBigUInt64BE(BigInt(i), 0);
  n.writeUInt32BE(last ? 1 : 0, 8);
  return n;
}

interface Header {
  readonly key: Buffer;
  readonly aad: Buffer;
  readonly plain: number;
}

export class EncryptedStorage implements Storage {
  readonly location: string;
  private readonly headers = new Map<string, Header>();

  private constructor(
    private readonly inner: Storage,
    private readonly keys: RepoKeys,
    readonly envelope: Envelope,
  ) {
    this.location = inner.location;
  }

  /**
   * create writes the plaintext config object of a new encrypted repository
   * into `inner`, which must hold no repository yet. The repository id is
   * random unless given.
   */
  static async create(inner: Storage, master: Buffer, opts: { repositoryId?: string } = {}): Promise<EncryptedStorage> {
    if ((await exists(inner, ENVELOPE_NAME)) || (await inner.list('packs')).length > 0) {
      throw new InvalidInputError(`${inner.location} already holds a repository`);
    }
    const repositoryId = opts.repositoryId ?? randomBytes(16).toString('hex');
    if (!/^[0-9a-zA-Z_-]{1,128}$/.test(repositoryId)) throw new InvalidInputError(`invalid repository id ${repositoryId}`);
    const keys = deriveRepoKeys(master, repositoryId);
    const envelope: Envelope = {
      kova: 'encrypted-repository',
      version: 1,
      repositoryId,
      cipher: 'AES-256-GCM',
      kdf: 'HKDF-SHA256',
      names: 'AES-256-KWP',
      segmentBytes: SEGMENT_BYTES,
      keyCheck: keyCheck(keys),
    };
    await inner.write(ENVELOPE_NAME, Buffer.from(`${JSON.stringify(envelope, null, 2)}\n`));
    return new EncryptedStorage(inner, keys, envelope);
  }

  /** open reads the config object and checks the key against it. */
  static async open(inner: Storage, master: Buffer): Promise<EncryptedStorage> {
    let raw: Buffer;
    try {
      raw = await inner.read(ENVELOPE_NAME);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new RepoNotFoundError(inner.location);
      throw err;
    }
    const envelope = parseEnvelope(raw, inner.location);
    const keys = deriveRepoKeys(master, envelope.repositoryId);
    if (!keyCheckMatches(keys, envelope.keyCheck)) throw new WrongKeyError(inner.location);
    return new EncryptedStorage(inner, keys, envelope);
  }

  /* ---- names ------------------------------------------------------------------- */

  private top(name: string): string {
    const slash = name.indexOf('/');
    return slash < 0 ? 'root' : name.slice(0, slash);
  }

  /** storedName is the backend name of `name` (deterministic, so it can be found again). */
  storedName(name: string): string {
    if (name.length === 0 || name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '' || p === '.')) {
      throw new Error(`invalid storage name ${name}`);
    }
    const c = createCipheriv('id-aes256-wrap-pad', this.keys.names, KWP_IV);
    return `${this.top(name)}/${Buffer.concat([c.update(name, 'utf8'), c.final()]).toString('base64url')}`;
  }

  /** plainName recovers a plaintext name, or null for an object this key did not name. */
  private plainName(stored: string): string | null {
    const slash = stored.indexOf('/');
    if (slash < 0) return null;
    try {
      const d = createDecipheriv('id-aes256-wrap-pad', this.keys.names, KWP_IV);
      const name = Buffer.concat([d.update(Buffer.from(stored.slice(slash + 1), 'base64url')), d.final()]).toString('utf8');
      return this.top(name) === stored.slice(0, slash) ? name : null;
    } catch {
      return null;
    }
  }

  /* ---- contents ------------------------------------------------------------------ */

  private aad(header: Buffer, name: string): Buffer {
    return Buffer.concat([header, Buffer.from(name, 'utf8')]);
  }

  /** seal encrypts `plain` as the object `name`. */
  seal(name: string, plain: Buffer): Buffer[] {
    const nonce = randomBytes(NONCE_BYTES);
    const header = Buffer.concat([MAGIC, nonce]);
    const key = objectKey(this.keys, nonce);
    const aad = this.aad(header, name);
    const n = segmentCount(plain.length);
    const out: Buffer[] = [header];
    for (let i = 0; i < n; i++) {
      const c = createCipheriv('aes-256-gcm', key, segmentNonce(i, i === n - 1));
      c.setAAD(aad);
      out.push(c.update(plain.subarray(i * SEGMENT_BYTES, (i + 1) * SEGMENT_BYTES)), c.final(), c.getAuthTag());
    }
    return out;
  }

  private parseHeader(name: string, header: Buffer, stored: number): Header {
    const plain = plainSize(stored);
    if (header.length !== HEADER_BYTES || !header.subarray(0, MAGIC.length).equals(MAGIC) || plain === null) {
      throw new CorruptionError(`${name}: not an encrypted object, or truncated`, { file: name });
    }
    return { key: objectKey(this.keys, header.subarray(MAGIC.length)), aad: this.aad(header, name), plain };
  }

  /** openSegments decrypts consecutive segments from `first`; `ct` holds exactly their stored bytes. */
  private openSegments(name: string, h: Header, first: number, ct: Buffer): Buffer[] {
    const last = segmentCount(h.plain) - 1;
    const out: Buffer[] = [];
    for (let at = 0, i = first; at < ct.length; i++) {
      const len = Math.min(SEGMENT_BYTES + TAG_BYTES, ct.length - at);
      const seg = ct.subarray(at, at + len);
      try {
        const d = createDecipheriv('aes-256-gcm', h.key, segmentNonce(i, i === last));
        d.setAAD(h.aad);
        d.setAuthTag(seg.subarray(len - TAG_BYTES));
        out.push(d.update(seg.subarray(0, len - TAG_BYTES)), d.final());
      } catch (err) {
        throw new CorruptionError(`${name}: encrypted object fails authentication (damaged, truncated or moved)`, { file: name }, err);
      }
      at += len;
    }
    return out;
  }

  private remember(name: string, h: Header): void {
    this.headers.set(name, h);
    if (this.headers.size > HEADER_CACHE) this.headers.delete(this.headers.keys().next().value as string);
  }

  private async header(name: string, stored: string): Promise<Header> {
    const cached = this.headers.get(name);
    if (cached) return cached;
    const size = await this.inner.size(stored);
    const h = this.parseHeader(name, await this.inner.readAt(stored, 0, Math.min(size, HEADER_BYTES)), size);
    this.remember(name, h);
    return h;
  }

  /* ---- Storage --------------------------------------------------------------------- */

  async write(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    const stored = this.storedName(name);
    const plain = Buffer.isBuffer(data) ? data : Buffer.concat([...data]);
    this.headers.delete(name);
    await this.inner.write(stored, this.seal(name, plain));
  }

  async read(name: string): Promise<Buffer> {
    const buf = await this.inner.read(this.storedName(name));
    const h = this.parseHeader(name, buf.subarray(0, HEADER_BYTES), buf.length);
    return Buffer.concat(this.openSegments(name, h, 0, buf.subarray(HEADER_BYTES)));
  }

  async readAt(name: string, offset: number, length: number): Promise<Buffer> {
    const stored = this.storedName(name);
    const h = await this.header(name, stored);
    if (offset + length > h.plain) {
      throw new CorruptionError(`${name} is shorter than expected (wanted ${length} bytes at ${offset})`, { file: name });
    }
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(offset / SEGMENT_BYTES);
    const last = Math.floor((offset + length - 1) / SEGMENT_BYTES);
    const from = HEADER_BYTES + first * (SEGMENT_BYTES + TAG_BYTES);
    const to = HEADER_BYTES + Math.min(h.plain, (last + 1) * SEGMENT_BYTES) + (last + 1) * TAG_BYTES;
    const plain = Buffer.concat(this.openSegments(name, h, first, await this.inner.readAt(stored, from, to - from)));
    const at = offset - first * SEGMENT_BYTES;
    return plain.subarray(at, at + length);
  }

  async size(name: string): Promise<number> {
    const stored = await this.inner.size(this.storedName(name));
    const plain = plainSize(stored);
    if (plain === null) throw new CorruptionError(`${name}: encrypted object has an impossible size ${stored}`, { file: name });
    return plain;
  }

  async list(dir: string): Promise<string[]> {
    const prefix = `${dir}/`;
    const out: string[] = [];
    for (const stored of await this.inner.list(this.top(prefix))) {
      const name = this.plainName(stored);
      if (name !== null && name.startsWith(prefix)) out.push(name);
    }
    return out.sort();
  }

  async remove(name: string): Promise<void> {
    this.headers.delete(name);
    await this.inner.remove(this.storedName(name));
  }

  cleanTemp(): Promise<number> {
    return this.inner.cleanTemp();
  }

  async close(): Promise<void> {
    this.headers.clear();
    await this.inner.close();
  }
}

async function exists(s: Storage, name: string): Promise<boolean> {
  try {
    await s.size(name);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

function parseEnvelope(raw: Buffer, location: string): Envelope {
  let e: Partial<Envelope> & { version?: unknown; id?: unknown };
  try {
    e = JSON.parse(raw.toString('utf8')) as typeof e;
  } catch (err) {
    throw new CorruptionError(`${location}: config is not valid JSON`, {}, err);
  }
  if (e.kova !== 'encrypted-repository') {
    throw new CorruptionError(`${location}: not an encrypted Kova repository (a plain repository cannot live in object storage)`);
  }
  if (
    e.version !== 1 ||
    e.cipher !== 'AES-256-GCM' ||
    e.kdf !== 'HKDF-SHA256' ||
    e.names !== 'AES-256-KWP' ||
    e.segmentBytes !== SEGMENT_BYTES
  ) {
    throw new CorruptionError(`${location}: unsupported encrypted repository version or algorithms`);
  }
  if (typeof e.repositoryId !== 'string' || typeof e.keyCheck !== 'string')
    throw new CorruptionError(`${location}: config lacks repositoryId or keyCheck`);
  return e as Envelope;
}
