/**
 * The API client on a stubbed fetch: it hands back the contract's shapes
 * and rejects an answer that lacks what the contract promises.
 */
import { describe, expect, it } from 'vitest';
import type { Me } from '../../api/contract.js';
import { BadResponseError, KovaClient } from './api-client.js';

const answering =
  (body: unknown): typeof fetch =>
  async () =>
    new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });

describe('KovaClient.me', () => {
  const me: Me = {
    user: { id: 'usr-1', name: 'admin', role: 'admin' },
    server: { version: '0.1.0', runtime: 'process', minSnapshotInterval: '1h', mode: 'all-in-one' },
  };

  it('returns the user and the server settings', async () => {
    const client = new KovaClient('http://127.0.0.1:1', 'kova_x.y', { fetch: answering({ success: true, ...me }) });
    expect(await client.me()).toEqual(me);
  });

  it('rejects an answer without the server settings', async () => {
    const client = new KovaClient('http://127.0.0.1:1', 'kova_x.y', { fetch: answering({ success: true, user: me.user }) });
    const err = await client.me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadResponseError);
    expect((err as BadResponseError).message).toContain('no "server" in the response');
  });
});
