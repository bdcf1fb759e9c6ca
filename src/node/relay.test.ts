/** relay (node side): a page of a deployment's checks answered from the node's journal, with the all-in-one's checks. */
import type { Readable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { READ_HEADERS, type ReadPayload, type ReadRequest } from '../network/protocol.js';
import { ReadRunner } from './relay.js';
import { type TestNode, testNode, userWithDeployment } from './testing.js';

const nodes: TestNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
});

interface Uploaded {
  readonly path: string;
  readonly status: number;
  readonly body: unknown;
}

/** runner: a ReadRunner over `n`'s services whose uploads are collected. */
function runner(n: TestNode, withVerifications = true): { r: ReadRunner; uploads: Uploaded[] } {
  const uploads: Uploaded[] = [];
  const upload = async (path: string, headers: Readonly<Record<string, string>>, body: Readable) => {
    const parts: Buffer[] = [];
    for await (const b of body as AsyncIterable<Buffer>) parts.push(b);
    uploads.push({ path, status: Number(headers[READ_HEADERS.status]), body: JSON.parse(Buffer.concat(parts).toString('utf8')) });
    return { status: 200, body: { success: true }, url: 'http://cp' };
  };
  const r = new ReadRunner(n.services.browse, { upload }, pino({ level: 'silent' }), withVerifications ? n.services.verifications : null);
  return { r, uploads };
}

let seq = 0;
const read = (userId: string, deploymentId: string, payload: ReadPayload): ReadRequest => ({
  id: `read-${++seq}`,
  userId,
  deploymentId,
  snapshotId: '',
  payload,
  createdAt: Date.now(),
});

describe('ReadRunner: verifications', () => {
  it('answers a page of the checks, newest first, older than the cursor; refuses another user and a foreign cursor as the API does', async () => {
    const n = testNode();
    nodes.push(n);
    const { userId, depId } = userWithDeployment(n);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const v = n.services.verifications.request(userId, depId, true);
      ids.push(v.id);
      n.store.verifications.update(v.id, { status: 'ok', finishedAt: n.clock.now() });
    }
    const { r, uploads } = runner(n);
    r.accept([
      read(userId, depId, { kind: 'verifications', limit: 2 }),
      read(userId, depId, { kind: 'verifications', limit: 2, before: ids[1]! }),
      read('usr-mallory', depId, { kind: 'verifications', limit: 2 }),
      read(userId, depId, { kind: 'verifications', limit: 2, before: 'ver-elsewhere0' }),
    ]);
    await r.stop();
    const byPath = new Map(uploads.map((u) => [u.path, u]));
    const answer = (i: number) => byPath.get(`/node/v1/reads/read-${seq - 3 + i}/response`)!;
    expect(answer(0).status).toBe(200);
    expect((answer(0).body as { verifications: Array<{ id: string }> }).verifications.map((v) => v.id)).toEqual([ids[2], ids[1]]);
    expect((answer(1).body as { verifications: Array<{ id: string }> }).verifications.map((v) => v.id)).toEqual([ids[0]]);
    expect(answer(2)).toMatchObject({ status: 404, body: { code: 'DEPLOYMENT_NOT_FOUND' } });
    expect(answer(3)).toMatchObject({ status: 400, body: { code: 'INVALID_CURSOR' } });
  });

  it('refuses the read where no verification service is given (400 UNKNOWN_READ)', async () => {
    const n = testNode();
    nodes.push(n);
    const { userId, depId } = userWithDeployment(n);
    const { r, uploads } = runner(n, false);
    r.accept([read(userId, depId, { kind: 'verifications', limit: 2 })]);
    await r.stop();
    expect(uploads).toMatchObject([{ status: 400, body: { code: 'UNKNOWN_READ' } }]);
  });
});
