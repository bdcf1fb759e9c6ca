/**
 * connection: which server the client talks to, with which API token.
 *
 * Each comes from the first of: the --url / --token flags, the KOVA_URL /
 * KOVA_TOKEN environment variables, the login saved by `kova login` in
 * $XDG_CONFIG_HOME/kova/config.json (else ~/.config/kova/config.json, mode
 * 600); the URL defaults to http://127.0.0.1:8080. A saved token is sent only
 * to the server it was saved for: pointing the client at another URL never
 * leaks it there.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KovaError, isErrno } from '../../core/errors.js';
import { KovaClient } from './api-client.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface ConnectionFlags {
  readonly url?: string;
  readonly token?: string;
}

export interface SavedLogin {
  readonly url: string;
  readonly token: string;
}

export interface Connection {
  readonly url: string;
  readonly token: string;
  /** Where the token came from. */
  readonly tokenSource: 'flag' | 'env' | 'config';
}

type Env = Readonly<Record<string, string | undefined>>;

/** ClientUsageError: a mistake on the client side (bad flag, no token); printed as one line, exit 1. */
export class ClientUsageError extends KovaError {
  constructor(code: string, message: string) {
    super(code, message, { status: 400 });
    this.name = 'ClientUsageError';
  }
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s.trim() === '' ? undefined : s.trim());

/** configPath is the file `kova login` writes. */
export function configPath(env: Env = process.env): string {
  const xdg = nonEmpty(env.XDG_CONFIG_HOME);
  // The XDG spec says relative paths are invalid and must be ignored.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(nonEmpty(env.HOME) ?? os.homedir(), '.config');
  return path.join(base, 'kova', 'config.json');
}

/** normalizeUrl checks a server URL and drops a trailing slash (and any path, query or fragment). */
export function normalizeUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new ClientUsageError('INVALID_URL', `the server URL must look like http://host:port, got "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new ClientUsageError('INVALID_URL', `the server URL must be http:// or https://, got "${raw}"`);
  if (u.username || u.password)
    throw new ClientUsageError('INVALID_URL', 'the server URL must not carry credentials; use --token or KOVA_TOKEN');
  const base = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${u.host}${base}`;
}

/** checkToken rejects what cannot be a token before it goes into a header. */
export function checkToken(token: string): string {
  const t = token.trim();
  // Printable ASCII only: anything else cannot be a key and would break the header.
  if (!/^[!-~]+$/.test(t))
    throw new ClientUsageError('INVALID_TOKEN', 'the API token is empty or contains spaces, control or non-ASCII characters');
  return t;
}

/** readSavedLogin returns the saved login, or null when there is none. */
export async function readSavedLogin(file: string): Promise<SavedLogin | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ClientUsageError('INVALID_CONFIG', `${file} is not valid JSON; run "kova login" again or remove it`);
  }
  const o = v as Partial<SavedLogin> | null;
  if (!o || typeof o !== 'object' || typeof o.url !== 'string' || typeof o.token !== 'string') {
    throw new ClientUsageError('INVALID_CONFIG', `${file} has no "url" and "token"; run "kova login" again or remove it`);
  }
  return { url: o.url, token: o.token };
}

/** saveLogin writes the login readable by its owner only (0600, directory 0700), atomically. */
export async function saveLogin(file: string, login: SavedLogin): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.config.json.${process.pid}.${Date.now()}.tmp`);
  try {
    await fs.writeFile(tmp, `${JSON.stringify({ url: login.url, token: login.token }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await fs.chmod(tmp, 0o600); // whatever the umask did
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** removeLogin deletes the saved login; false when there was none. */
export async function removeLogin(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

/** resolveUrl picks the server URL from flags, environment, saved login, default. */
export function resolveUrl(flags: ConnectionFlags, env: Env, saved: SavedLogin | null): string {
  return normalizeUrl(nonEmpty(flags.url) ?? nonEmpty(env.KOVA_URL) ?? saved?.url ?? DEFAULT_URL);
}

/** resolveConnection finds the URL and token for a command, or explains how to log in. */
export async function resolveConnection(flags: ConnectionFlags, env: Env = process.env): Promise<Connection> {
  const flagToken = nonEmpty(flags.token);
  const envToken = nonEmpty(env.KOVA_TOKEN);
  // The saved login is read only when something is missing.
  const needSaved = flagToken === undefined && envToken === undefined;
  const urlGiven = nonEmpty(flags.url) ?? nonEmpty(env.KOVA_URL);
  const saved = needSaved || urlGiven === undefined ? await readSavedLogin(configPath(env)) : null;
  const url = resolveUrl(flags, env, saved);
  if (flagToken !== undefined) return { url, token: checkToken(flagToken), tokenSource: 'flag' };
  if (envToken !== undefined) return { url, token: checkToken(envToken), tokenSource: 'env' };
  if (saved && sameUrl(saved.url, url)) return { url, token: checkToken(saved.token), tokenSource: 'config' };
  if (saved) {
    throw new ClientUsageError(
      'NO_TOKEN',
      `no API token for ${url} (the saved login is for ${saved.url}): run "kova login --url ${url}" or set KOVA_TOKEN`,
    );
  }
  throw new ClientUsageError('NO_TOKEN', `not logged in: run "kova login" or set KOVA_TOKEN to an API key`);
}

function sameUrl(a: string, b: string): boolean {
  try {
    return normalizeUrl(a) === normalizeUrl(b);
  } catch {
    return false;
  }
}

/** connect resolves the connection and returns a client for it. */
export async function connect(flags: ConnectionFlags, env: Env = process.env): Promise<KovaClient> {
  const c = await resolveConnection(flags, env);
  return new KovaClient(c.url, c.token);
}
