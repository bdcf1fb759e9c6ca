/**
 * wake: how a waiter on one replica learns that another wrote what it waits
 * for (an operation for its node, a result for its operation, the answer
 * of a relayed read or room for its next chunk). Wakes are
 * hints: a waiter re-reads the database when woken and also every `pollMs`,
 * so a lost wake (a LISTEN connection that was down, another process on the
 * same SQLite file) only delays it.
 *
 * PostgreSQL: NOTIFY through the pool, LISTEN on one dedicated client per
 * catalogue that reconnects (with backoff) when PostgreSQL restarts and
 * wakes every waiter after reconnecting. SQLite: an in-process emitter
 * shared by every catalogue on the same file, and the poll for other
 * processes.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';

export type Channel = 'ops' | 'results' | 'reads';

export interface Wakeup {
  /** on calls `fn` on every wake of `key` on `channel` (and on a general wake); returns the unsubscriber. */
  on(channel: Channel, key: string, fn: () => void): () => void;
  /** notify wakes the waiters of `key` on every replica; it never fails (a lost wake only delays a waiter). */
  notify(channel: Channel, key: string): Promise<void>;
  close(): Promise<void>;
}

const ALL = '*';
const eventName = (channel: Channel, key: string): string => `${channel}:${key}`;

function newEmitter(): EventEmitter {
  const e = new EventEmitter();
  e.setMaxListeners(0);
  return e;
}

function subscribe(emitter: EventEmitter, channel: Channel, key: string, fn: () => void): () => void {
  const name = eventName(channel, key);
  emitter.on(name, fn);
  emitter.on(ALL, fn);
  return () => {
    emitter.off(name, fn);
    emitter.off(ALL, fn);
  };
}

/** In-process wakes for SQLite (connection.ts shares one per file between the catalogues on it). */
export function localWakeup(): Wakeup {
  const emitter = newEmitter();
  return {
    on: (channel, key, fn) => subscribe(emitter, channel, key, fn),
    notify: (channel, key) => {
      emitter.emit(eventName(channel, key));
      return Promise.resolve();
    },
    close: () => {
      emitter.removeAllListeners();
      return Promise.resolve();
    },
  };
}

const PG_CHANNELS: Record<Channel, string> = { ops: 'kova_ops', results: 'kova_results', reads: 'kova_reads' };

export interface PgWakeupOptions {
  readonly connectionString: string;
  readonly connectTimeoutMs: number;
  /** Longest pause between two reconnection attempts. */
  readonly reconnectMaxMs: number;
  /** Sends NOTIFY (through the pool, so it works while the listener reconnects). */
  readonly send: (channel: string, payload: string) => Promise<void>;
}

export function pgWakeup(opts: PgWakeupOptions): Wakeup {
  const emitter = newEmitter();
  let client: pg.Client | null = null;
  let closed = false;
  let delay = 50;
  let timer: NodeJS.Timeout | null = null;
  const byChannel = new Map(Object.entries(PG_CHANNELS).map(([k, v]) => [v, k as Channel]));

  const schedule = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = null;
      void listen();
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, opts.reconnectMaxMs);
  };

  const listen = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: opts.connectionString, connectionTimeoutMillis: opts.connectTimeoutMs });
    client = c;
    let dropped = false;
    const drop = (): void => {
      if (dropped) return;
      dropped = true;
      if (client === c) client = null;
      c.removeAllListeners('notification');
      void c.end().catch(() => undefined);
      schedule();
    };
    c.on('error', drop);
    c.on('end', drop);
    c.on('notification', (n) => {
      const channel = byChannel.get(n.channel);
      if (channel && n.payload !== undefined) emitter.emit(eventName(channel, n.payload));
    });
    try {
      await c.connect();
      for (const ch of Object.values(PG_CHANNELS)) await c.query(`LISTEN ${ch}`);
      if (closed) return void (await c.end().catch(() => undefined));
      delay = 50;
      // Anything written while we were not listening: let every waiter look again.
      emitter.emit(ALL);
    } catch {
      drop();
    }
  };
  void listen();

  return {
    on: (channel, key, fn) => subscribe(emitter, channel, key, fn),
    // A NOTIFY that fails (PostgreSQL went away right after the write) is not the write failing: waiters still poll.
    notify: async (channel, key) => {
      emitter.emit(eventName(channel, key));
      await opts.send(PG_CHANNELS[channel], key).catch(() => undefined);
    },
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = null;
      if (c) {
        c.removeAllListeners('end');
        c.removeAllListeners('error');
        c.on('error', () => undefined);
        await c.end().catch(() => undefined);
      }
    },
  };
}

/**
 * waitUntil calls `check` until it returns a value other than undefined,
 * re-checking on every wake of (channel, key), every `pollMs`, and a last
 * time at the deadline. Resolves undefined after `timeoutMs` or on abort.
 */
export async function waitUntil<T>(
  wake: Wakeup,
  channel: Channel,
  key: string,
  opts: { timeoutMs: number; pollMs: number; signal?: AbortSignal },
  check: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const deadline = Date.now() + Math.max(0, opts.timeoutMs);
  // An object, so a wake that arrives while `check` runs is seen after it.
  const state = { woken: false, poke: null as (() => void) | null };
  const onWake = (): void => {
    state.woken = true;
    state.poke?.();
  };
  const off = wake.on(channel, key, onWake);
  opts.signal?.addEventListener('abort', onWake);
  try {
    while (true) {
      state.woken = false;
      const v = await check();
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0 || opts.signal?.aborted) return undefined;
      if (state.woken) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(opts.pollMs, left));
        state.poke = () => {
          clearTimeout(t);
          resolve();
        };
      });
      state.poke = null;
    }
  } finally {
    off();
    opts.signal?.removeEventListener('abort', onWake);
  }
}
