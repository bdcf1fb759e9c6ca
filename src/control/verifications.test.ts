/**
 * verifications (network mode): the settings' summary from the document,
 * a history page as a read and a check as an operation, on a real catalogue
 * (SQLite in memory) with the node's side played by hand.
 */
import { Readable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { ConflictError, NotFoundError } from '../core/errors.js';
import type { Verification } from '../db/verifications.js';
import type { DeploymentState } from '../network/protocol.js';
import type { VerificationStatus } from '../services/verification-service.js';
import type { Catalogue, CatalogueNode } from './catalogue.js';
import { Dispatcher } from './dispatch.js';
import { ReadRelay } from './relay.js';
import { openCatalogue } from './store/index.js';
import { doc } from './store/testing.js';
import { controlVerifications } from './verifications.js';

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
const dep = 'dep-aaaaaaaaaaaa';

let catalogue: Catalogue;
let clock: ManualClock;
let node: CatalogueNode;
let userId: string;

const check = (id: string): Verification => ({
  id,
  deploymentId: dep,
  trigger: 'manual',
  part: null,
  parts: 5,
  status: 'queued',
  createdAt: clock.now(),
  startedAt: null,
  finishedAt: null,
  stepsDone: 0,
  bytesRead: 0,
  packsRead: 0,
  findings: 0,
  findingList: [],
  damagedSnapshots: [],
  error: null,
});

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

function api() {
  const dispatcher = new Dispatcher(catalogue, clock, { waitMs: 5_000, nodeTimeoutMs: 30_000 }, log);
  const relay = new ReadRelay(catalogue, clock, null, { nodeTimeoutMs: 30_000 });
  const lookup = {
    async active(u: string, id: string) {
      const d = await catalogue.deployment(id);
      if (!d || d.userId !== u || !d.state) throw new NotFoundError('DEPLOYMENT_NOT_FOUND', `deployment ${id} not found`);
      if (d.state.deployment.status !== 'active') throw new ConflictError('DEPLOYMENT_NOT_ACTIVE', `deployment ${id} is closed`);
      return d as typeof d & { state: DeploymentState };
    },
    node: async (id: string) => (await catalogue.node(id))!,
  };
  return { v: controlVerifications(relay, dispatcher, lookup), relay, dispatcher };
}

describe('controlVerifications', () => {
  it('shows the summary the node reported, and null while it has reported none (an older node)', async () => {
    const { v } = api();
    await catalogue.applyState(node.id, [doc(dep, userId, 1)]);
    expect(await v.status(userId, dep)).toBeNull();
    const summary: VerificationStatus = {
      enabled: true,
      intervalMs: 86_400_000,
      interval: '1d',
      nextRunAt: clock.now() + 1_000,
      nextPart: 3,
      parts: 30,
      lastVerification: { ...check('ver-bbbbbbbbbbbb'), status: 'ok' },
      lastFullCheckAt: clock.now() - 1_000,
    };
    await catalogue.applyState(node.id, [{ ...doc(dep, userId, 2), verification: summary }]);
    expect(await v.status(userId, dep)).toEqual(summary);
    await expect(v.status('usr-someone-else', dep)).rejects.toMatchObject({ code: 'DEPLOYMENT_NOT_FOUND' });
  });

  it('asks the node for a page of the history, passing the cursor on, and throws its refusal as the all-in-one', async () => {
    const { v, relay } = api();
    await catalogue.applyState(node.id, [doc(dep, userId, 1)]);
    const page = v.list(userId, dep, 3, 'ver-cccccccccccc');
    const [read] = (await catalogue.poll(node.id, 5_000, { reads: true })).reads!;
    expect(read).toMatchObject({
      userId,
      deploymentId: dep,
      snapshotId: '',
      payload: { kind: 'verifications', limit: 3, before: 'ver-cccccccccccc' },
    });
    const rows = [check('ver-dddddddddddd')];
    await relay.receive(node.id, read!.id, 200, null, Readable.from([Buffer.from(JSON.stringify({ verifications: rows }))]));
    expect(await page).toEqual(rows);

    const refused = v.list(userId, dep, 3, 'ver-nope');
    const [second] = (await catalogue.poll(node.id, 5_000, { reads: true })).reads!;
    const wire = { code: 'INVALID_CURSOR', message: 'ver-nope is not a check of this deployment', status: 400 };
    await relay.receive(node.id, second!.id, 400, null, Readable.from([Buffer.from(JSON.stringify(wire))]));
    await expect(refused).rejects.toMatchObject({ code: 'INVALID_CURSOR', status: 400 });
  });

  it('sends a check as an operation with an id of its own and answers with the node’s check', async () => {
    const { v } = api();
    await catalogue.applyState(node.id, [doc(dep, userId, 1)]);
    const asked = v.request(userId, dep, true);
    const [op] = await catalogue.pending(node.id, 5_000);
    expect(op).toMatchObject({ userId, payload: { kind: 'verify', deploymentId: dep, full: true } });
    const id = (op!.payload as { verificationId: string }).verificationId;
    expect(id).toMatch(/^ver-/);
    await catalogue.finish(op!.id, node.id, { ok: true, state: null, value: check(id) }, clock.now());
    expect(await asked).toEqual(check(id));
  });

  it('answers 503 NODE_UNAVAILABLE at once while the node is offline, and 409 for a closed deployment, asking nothing', async () => {
    const { v } = api();
    await catalogue.applyState(node.id, [doc(dep, userId, 1)]);
    clock.advance(31_000);
    await expect(v.list(userId, dep, 10)).rejects.toMatchObject({ code: 'NODE_UNAVAILABLE', status: 503 });
    await expect(v.request(userId, dep, false)).rejects.toMatchObject({ code: 'NODE_UNAVAILABLE', status: 503 });
    await catalogue.applyState(node.id, [doc(dep, userId, 2, { status: 'closed' })]);
    await expect(v.list(userId, dep, 10)).rejects.toMatchObject({ code: 'DEPLOYMENT_NOT_ACTIVE' });
    expect(await catalogue.poll(node.id, 0, { reads: true })).toEqual({ operations: [], reads: [] });
  });
});
