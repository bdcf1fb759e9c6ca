/**
 * postgres: a throwaway PostgreSQL cluster for tests. `initdb` into a temp
 * directory owned by the `postgres` user, started with `pg_ctl` as that
 * user (never as root) on a free loopback port with its socket in the same
 * directory; `stop()`/`start()` restart it (same port, same data) for
 * outage tests; `close()` stops it and removes everything.
 *
 * When PostgreSQL is not installed, `postgresOrSkip()` makes the suite fail
 * under CI (`CI` set: scripts/test-setup.sh installs it) and skip locally
 * with the reason on stderr.
 */
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const execFile = promisify(execFileCb);
const PG_ROOT = '/usr/lib/postgresql';

/** The bin directory of the newest PostgreSQL installed, or null. */
export function postgresBin(): string | null {
  if (!fs.existsSync(PG_ROOT)) return null;
  const versions = fs
    .readdirSync(PG_ROOT)
    .filter((v) => fs.existsSync(path.join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : path.join(PG_ROOT, versions[0], 'bin');
}

/**
 * postgresOrSkip tells a suite whether to run: true when PostgreSQL is
 * installed; under CI it throws instead of skipping, so a missing install
 * fails the run.
 */
export function postgresAvailable(): boolean {
  if (postgresBin()) return true;
  const why = `PostgreSQL is not installed (no ${PG_ROOT}/*/bin/initdb); run scripts/test-setup.sh`;
  if (process.env.CI) throw new Error(why);
  process.stderr.write(`skipping PostgreSQL suites: ${why}\n`);
  return false;
}

export interface PostgresCluster {
  readonly port: number;
  /** A URL for database `db` on this cluster. */
  url(db: string): string;
  /** createDatabase makes a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** stop shuts the server down (`fast`: connections are terminated, as in a restart). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function postgresIds(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-pg-'));
  const data = path.join(root, 'data');
  const log = path.join(root, 'server.log');
  // As root, everything runs as `postgres`, which owns the directory; otherwise as the current user.
  const ids = process.getuid?.() === 0 ? postgresIds() : null;
  if (ids) fs.chownSync(root, ids.uid, ids.gid);
  fs.chmodSync(root, 0o700);
  const run = async (cmd: string, args: string[]): Promise<void> => {
    try {
      await execFile(path.join(bin, cmd), args, {
        cwd: root,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
        ...(ids ?? {}),
      });
    } catch (err) {
      const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-2000) : '';
      throw new Error(`${cmd} failed: ${(err as Error).message}\n${tail}`, { cause: err });
    }
  };
  const port = await freePort();
  let running = false;
  const start = async (): Promise<void> => {
    const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    await run('pg_ctl', ['-D', data, '-o', opts, '-l', log, '-w', '-t', '60', 'start']);
    running = true;
  };
  const stop = async (): Promise<void> => {
    await run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    running = false;
  };
  const url = (db: string): string => `postgres://postgres@127.0.0.1:${port}/${db}`;
  try {
    await run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await start();
  } catch (err) {
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: url('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    stop,
    start,
    async close() {
      try {
        if (running) await run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
