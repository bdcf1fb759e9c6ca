/**
 * `kova serve` at start, as a child process: the runtime is never chosen
 * silently (auto refuses to start without Docker; the process runtime says
 * it has no isolation, on the console and in /healthz), and the data
 * directory and database are private to their owner.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type KovaServer, startKova } from './helpers/server-process.js';

let root: string;
let server: KovaServer | null = null;
let silent: net.Server | null = null;
const held: net.Socket[] = [];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-start-'));
});
afterEach(async () => {
  await server?.stop();
  server = null;
  held.splice(0).forEach((c) => c.destroy());
  await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
  silent = null;
  fs.rmSync(root, { recursive: true, force: true });
});

const mode = (f: string): number => fs.statSync(f).mode & 0o777;

/** silentSocket is a unix socket that accepts connections and never answers (a hung Docker daemon). */
async function silentSocket(file: string): Promise<void> {
  const srv = net.createServer((c) => void held.push(c));
  silent = srv;
  await new Promise<void>((resolve) => srv.listen(file, resolve));
}

describe('kova serve: the runtime', () => {
  it.each([
    ['a socket that never answers', true],
    ['no socket at all', false],
  ])('refuses to start with --runtime auto when Docker is %s, says what to do, and creates nothing', async (_what, listen) => {
    const sock = path.join(root, 'docker.sock');
    if (listen) await silentSocket(sock);
    const dataDir = path.join(root, 'data');
    const err = await startKova({ dataDir, args: ['--runtime', 'auto', '--docker-host', `unix://${sock}`] }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.message).toMatch(/exited before it was ready \(\{"code":1,/);
    expect(err!.message).toMatch(
      /kova: Docker does not answer at unix:\/\/.*docker\.sock: start Docker .* pass --runtime process .*no isolation/,
    );
    expect(fs.existsSync(path.join(dataDir, 'kova.db'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'admin.key'))).toBe(false);
  });

  it('starts with --runtime process, and says loudly that services are not isolated', async () => {
    server = await startKova({ dataDir: path.join(root, 'data'), args: ['--runtime', 'process'] });
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', runtime: 'process', isolation: 'none', warning: expect.stringMatching(/no isolation/) });
    expect(server.output()).toMatch(/WARNING: process runtime: .*no isolation/);
  });
});

describe('kova serve: the data directory', () => {
  it('creates a new data directory 0700 and the database and its WAL 0600', async () => {
    const old = process.umask(0o022);
    const dataDir = path.join(root, 'new');
    try {
      server = await startKova({ dataDir });
    } finally {
      process.umask(old);
    }
    expect(mode(dataDir)).toBe(0o700);
    for (const f of ['kova.db', 'kova.db-wal', 'kova.db-shm', 'admin.key'])
      expect({ f, mode: mode(path.join(dataDir, f)) }).toEqual({ f, mode: 0o600 });
  });

  it('narrows an existing data directory of mode 0755, and an old database of mode 0644, with a warning', async () => {
    const dataDir = path.join(root, 'old');
    server = await startKova({ dataDir });
    await server.stop();
    server = null;
    fs.chmodSync(dataDir, 0o755);
    fs.chmodSync(path.join(dataDir, 'kova.db'), 0o644);
    server = await startKova({ dataDir });
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(path.join(dataDir, 'kova.db'))).toBe(0o600);
    expect(mode(path.join(dataDir, 'kova.db-wal'))).toBe(0o600);
    expect(server.output()).toMatch(/data directory was mode 0755; changed to 0700/);
  });

  it('refuses to start in an open directory that is not a Kova data directory', async () => {
    const dataDir = path.join(root, 'shared');
    fs.mkdirSync(dataDir);
    fs.writeFileSync(path.join(dataDir, 'notes.txt'), 'not kova');
    fs.chmodSync(dataDir, 0o755);
    const err = await startKova({ dataDir }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/kova: data directory .* is mode 0755 .*chmod 700/);
    expect(mode(dataDir)).toBe(0o755);
    expect(fs.readdirSync(dataDir)).toEqual(['notes.txt']);
  });
});
