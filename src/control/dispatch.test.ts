/**
 * dispatch: queueing an operation for a node and turning what happens to it
 * into the answer, on a real catalogue (SQLite in memory), with the node's
 * side played by hand.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { Catalogue, CatalogueNode } from './catalogue.js';
import { Dispatcher } from './dispatch.js';
import { openCatalogue } from './store/index.js';

const log = pino({ level: 'silent' });
const capacity = {
  diskFreeBytes: 1e12,
  diskTotalBytes: 2e12,
  volumeUsedBytes: 0,
  volumeReservedBytes: 0,
  deployments: 0,
  runningServices: 0,
  health: 'ok',
} as const;

let catalogue: Catalogue;
let clock: ManualClock;
let node: CatalogueNode;
let userId: string;
const dep = 'dep-aaaaaaaaaaaa';

beforeEach(async () => {
  clock = new ManualClock(Date.UTC(2026, 0, 1));
  catalogue = await openCatalogue(':memory:', { clock });
  userId = (await catalogue.ensureUser('alice', 'user', clock.now())).id;
  await catalogue.addNode('edge-1', 'hash-1', clock.now());
  await catalogue.heartbeat((await catalogue.node('edge-1'))!.id, capacity, clock.now());
  node = (await catalogue.node('edge-1'))!;
  await catalogue.place(dep, userId, node.id, clock.now());
});
afterEach(async () => {
  await catalogue.close();
});

const dispatcher = (waitMs = 300) => new Dispatcher(catalogue, clock, { waitMs, nodeTimeoutMs: 30_000 }, log);
const restart = { kind: 'restart', deploymentId: dep } as const;

describe('Dispatcher.run', () => {
  it("throws a node's failure as the all-in-one's error, and undoes what was prepared", async () => {
    const d = dispatcher(10_000);
    let undone = 0;
    const running = d.run(node, userId, restart, async () => void undone++);
    const [op] = await catalogue.pending(node.id, 5_000);
    await catalogue.finish(
      op!.id,
      node.id,
      { ok: false, error: { code: 'OPERATION_IN_PROGRESS', status: 409, message: 'busy', details: { operation: 'snapshot' } } },
      clock.now(),
    );
    await expect(running).rejects.toMatchObject({
      code: 'OPERATION_IN_PROGRESS',
      status: 409,
      message: 'busy',
      details: { operation: 'snapshot' },
    });
    expect(undone).toBe(1);
  });

  it('refuses an offline node at once, naming it, and queues nothing', async () => {
    clock.advance(30_001);
    await expect(dispatcher().run(node, userId, restart)).rejects.toMatchObject({
      code: 'NODE_UNAVAILABLE',
      status: 503,
      message: expect.stringContaining('node edge-1 is offline (it was last seen at 2026-01-01T00:00:00.000Z)'),
    });
    expect(await catalogue.pending(node.id, 0)).toEqual([]);
  });

  it('withdraws an operation no node collected in time: nothing was done, and what was prepared is undone', async () => {
    let undone = 0;
    await expect(dispatcher().run(node, userId, restart, async () => void undone++)).rejects.toMatchObject({
      code: 'NODE_UNAVAILABLE',
      message: expect.stringMatching(/edge-1 did not answer within .*nothing was done/),
    });
    expect(undone).toBe(1);
    expect(await catalogue.pending(node.id, 0)).toEqual([]);
  });

  it('leaves an operation the node collected to finish, and says so with its id', async () => {
    let undone = 0;
    const running = dispatcher().run(node, userId, restart, async () => void undone++);
    const [op] = await catalogue.pending(node.id, 5_000);
    await expect(running).rejects.toMatchObject({
      code: 'NODE_UNAVAILABLE',
      message: expect.stringContaining(`has the operation (${op!.id})`),
      details: { operationId: op!.id },
    });
    expect(undone).toBe(0);
    expect((await catalogue.operation(op!.id))!.status).toBe('delivered');
  });

  it('undoes what was prepared when the operation cannot even be queued', async () => {
    let undone = 0;
    const failing = Object.create(catalogue) as Catalogue;
    failing.enqueue = () => Promise.reject(Object.assign(new Error('connection lost'), { code: 'DATABASE_UNAVAILABLE' }));
    const d = new Dispatcher(failing, clock, { waitMs: 300, nodeTimeoutMs: 30_000 }, log);
    await expect(d.run(node, userId, restart, async () => void undone++)).rejects.toThrow('connection lost');
    expect(undone).toBe(1);
  });

  it('answers waits in progress when stopped, as on a timeout', async () => {
    const d = dispatcher(60_000);
    const running = d.run(node, userId, restart);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await d.stop();
    await expect(running).rejects.toMatchObject({ code: 'NODE_UNAVAILABLE', message: expect.stringMatching(/nothing was done/) });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
