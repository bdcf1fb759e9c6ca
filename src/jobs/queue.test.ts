/**
 * The job queue when the database cannot write (disk full): a failure to
 * record a job's start or end is logged and never escapes as an uncaught
 * exception or an unhandled rejection, and the queue goes on with the next
 * jobs.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { Store } from '../db/store.js';
import { JobQueue, KEEP_FINISHED_MS } from './queue.js';

function sqliteFull(): Error {
  return Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
}

let escaped: unknown[] = [];
const onEscape = (err: unknown): void => {
  escaped.push(err);
};
beforeEach(() => {
  escaped = [];
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
});
afterEach(() => {
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
});

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

describe('JobQueue with a database that cannot write', () => {
  it('logs a failure to record the end of a job and runs the next one', async () => {
    const store = Store.open(':memory:');
    store.db.pragma('foreign_keys = OFF');
    const logged: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
    const queue = new JobQueue(store, new ManualClock(0), log, 1);
    const ran: string[] = [];
    queue.register('work', async (job) => {
      ran.push(job.payload.name as string);
      if (job.payload.name === 'first') throw new Error('the job itself failed');
    });
    const finish = store.jobs.finish.bind(store.jobs);
    let fullOnce = true;
    store.jobs.finish = (...args) => {
      if (fullOnce) {
        fullOnce = false;
        throw sqliteFull();
      }
      finish(...args);
    };
    queue.start();
    queue.enqueue('dep-a', 'work', { name: 'first' });
    queue.enqueue('dep-b', 'work', { name: 'second' });
    await settle();
    await settle();
    expect(ran).toEqual(['first', 'second']);
    expect(escaped).toEqual([]);
    expect(logged.join('')).toMatch(/could not record the end of a job/);
    await queue.stop();
    store.close();
  });

  it('logs a failure to record the start of a job instead of throwing from the timer', async () => {
    const store = Store.open(':memory:');
    store.db.pragma('foreign_keys = OFF');
    const logged: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
    const queue = new JobQueue(store, new ManualClock(0), log, 1);
    const ran: string[] = [];
    queue.register('work', async () => {
      ran.push('ran');
    });
    const markRunning = store.jobs.markRunning.bind(store.jobs);
    store.jobs.markRunning = () => {
      throw sqliteFull();
    };
    queue.start();
    queue.enqueue('dep-a', 'work');
    await settle();
    expect(escaped).toEqual([]);
    expect(ran).toEqual([]);
    expect(logged.join('')).toMatch(/could not start queued jobs/);
    // Space is back: the next kick runs it.
    store.jobs.markRunning = markRunning;
    queue.enqueue('dep-b', 'work');
    await settle();
    expect(ran).toEqual(['ran', 'ran']);
    await queue.stop();
    store.close();
  });
});

describe('JobQueue kinds with maxRunning', () => {
  it('runs at most maxRunning jobs of the kind at once, and lets the waiting deployment run other jobs', async () => {
    const store = Store.open(':memory:');
    store.db.pragma('foreign_keys = OFF');
    const queue = new JobQueue(store, new ManualClock(0), pino({ level: 'silent' }), 4);
    let running = 0;
    let most = 0;
    const order: string[] = [];
    const gates: Array<() => void> = [];
    queue.register(
      'check',
      async (job) => {
        running++;
        most = Math.max(most, running);
        order.push(`check ${job.deploymentId}`);
        await new Promise<void>((r) => gates.push(r));
        running--;
      },
      { maxRunning: 1 },
    );
    queue.register('work', async (job) => {
      order.push(`work ${job.deploymentId}`);
    });
    queue.start();
    queue.enqueue('dep-a', 'check');
    queue.enqueue('dep-b', 'check');
    queue.enqueue('dep-b', 'work');
    await settle();
    // dep-b's check waits for dep-a's; dep-b's later job does not wait for it.
    expect(order).toEqual(['check dep-a', 'work dep-b']);
    gates.shift()!();
    await settle();
    expect(order).toEqual(['check dep-a', 'work dep-b', 'check dep-b']);
    gates.shift()!();
    await queue.idle();
    expect(most).toBe(1);
    await queue.stop();
    store.close();
  });
});

describe('JobQueue finished jobs', () => {
  it('keeps finished jobs for a week, then deletes them, and never a job that has not finished', async () => {
    const store = Store.open(':memory:');
    store.db.pragma('foreign_keys = OFF');
    const clock = new ManualClock(1_000_000);
    const queue = new JobQueue(store, clock, pino({ level: 'silent' }), 2);
    queue.register('ok', async () => undefined);
    queue.register('bad', async () => {
      throw new Error('no');
    });
    queue.start();
    queue.enqueue('dep-a', 'ok');
    queue.enqueue('dep-b', 'bad');
    await queue.idle();
    const count = (): number => (store.db.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
    expect(count()).toBe(2);

    // A day later: kept.
    clock.advance(24 * 3600_000);
    queue.enqueue('dep-a', 'ok');
    await queue.idle();
    expect(count()).toBe(3);

    // Past a week after the first two: they go when the next job ends; the third stays.
    clock.advance(KEEP_FINISHED_MS);
    queue.register('hold', () => new Promise<void>(() => undefined));
    queue.enqueue('dep-c', 'hold');
    queue.enqueue('dep-a', 'ok');
    await settle();
    const left = store.db.prepare('SELECT deployment_id AS d, state FROM jobs ORDER BY id').all();
    expect(left).toEqual([
      { d: 'dep-a', state: 'done' },
      { d: 'dep-c', state: 'running' },
      { d: 'dep-a', state: 'done' },
    ]);
    store.close();
  });
});
