/**
 * API keys and the caller's identity: POST/GET /api/v1/api-keys, DELETE
 * /api/v1/api-keys/:prefix (revocation takes effect on the very next
 * request) and GET /api/v1/me.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { ISO_UTC, createDeployment, expectError, expectOk, raw } from './helpers/api.js';
import { type Harness, startHarness } from './helpers/harness.js';

let h: Harness;
let clock: ManualClock;

beforeAll(async () => {
  clock = new ManualClock(Date.UTC(2026, 3, 1, 10, 0, 0));
  h = await startHarness({ clock });
});
afterAll(async () => {
  await h?.close();
});

const TOKEN_RE = /^kova_([a-z2-7]{12})\.[A-Za-z0-9_-]{43}$/;

interface KeyView {
  prefix: string;
  label: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

async function newKey(token: string, label?: string): Promise<{ token: string; apiKey: KeyView }> {
  const body = expectOk(await h.api('POST', '/api/v1/api-keys', label === undefined ? {} : { label }, token), 201);
  return { token: body.token as string, apiKey: body.apiKey as KeyView };
}

async function keysOf(token: string): Promise<KeyView[]> {
  return expectOk(await h.api('GET', '/api/v1/api-keys', undefined, token)).apiKeys as KeyView[];
}

describe('POST /api/v1/api-keys', () => {
  it('creates a key: 201 with the token, shown once, and the key without its secret', async () => {
    const owner = await h.newUser('erin');
    const r = await h.api('POST', '/api/v1/api-keys', { label: 'ci' }, owner);
    const body = expectOk(r, 201);
    expect(Object.keys(body).sort()).toEqual(['apiKey', 'success', 'token']);
    expect(body.token).toMatch(TOKEN_RE);
    const prefix = TOKEN_RE.exec(body.token)![1];
    expect(body.apiKey).toEqual({ prefix, label: 'ci', createdAt: expect.stringMatching(ISO_UTC), lastUsedAt: null, revokedAt: null });

    // The new token works, as the same user.
    const me = expectOk(await h.api('GET', '/api/v1/me', undefined, body.token));
    expect(me.user.name).toBe('erin');
    // The secret is never listed again.
    const secret = body.token.split('.')[1];
    const list = await h.api('GET', '/api/v1/api-keys', undefined, owner);
    expect(list.res.body).not.toContain(secret);
    expect(list.res.body).not.toMatch(/scrypt|secret|hash/i);
  });

  it('takes no label, and makes a different key each time', async () => {
    const owner = await h.newUser('frank');
    const a = await newKey(owner);
    const b = await newKey(owner);
    expect(a.apiKey.label).toBeNull();
    expect(a.token).not.toBe(b.token);
    expect(a.apiKey.prefix).not.toBe(b.apiKey.prefix);
  });

  it('accepts a request with no body', async () => {
    const owner = await h.newUser('gina');
    const r = await raw(h, 'POST', '/api/v1/api-keys', { token: owner });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ success: true, token: expect.stringMatching(TOKEN_RE), apiKey: { label: null } });
  });

  it('rejects a label over 64 characters, a non-string label and unknown fields with 400', async () => {
    const owner = await h.newUser('hank');
    expectError(await h.api('POST', '/api/v1/api-keys', { label: 'k'.repeat(65) }, owner), 400, 'INVALID_REQUEST');
    expectError(await h.api('POST', '/api/v1/api-keys', { label: 7 }, owner), 400, 'INVALID_REQUEST');
    expectError(await h.api('POST', '/api/v1/api-keys', { label: 'x', userId: 'usr-x' }, owner), 400, 'INVALID_REQUEST');
    expect(expectOk(await h.api('POST', '/api/v1/api-keys', { label: 'k'.repeat(64) }, owner), 201).apiKey.label).toBe('k'.repeat(64));
    expect(await keysOf(owner)).toHaveLength(2);
  });
});

describe('GET /api/v1/api-keys', () => {
  it("lists the caller's keys only, newest first, and shows when a key was last used", async () => {
    const owner = await h.newUser('ivan');
    const other = await h.newUser('judy');
    clock.advance(1000);
    const k1 = await newKey(owner, 'one');
    clock.advance(1000);
    const k2 = await newKey(owner, 'two');
    const mine = await keysOf(owner);
    expect(mine).toHaveLength(3);
    const prefixes = mine.map((k) => k.prefix);
    expect(prefixes).toContain(k1.apiKey.prefix);
    expect(prefixes).toContain(k2.apiKey.prefix);
    expect(mine.map((k) => k.label)).toEqual(['two', 'one', 'test']);
    const theirs = (await keysOf(other)).map((k) => k.prefix);
    expect(theirs).toHaveLength(1);
    for (const p of prefixes) expect(theirs).not.toContain(p);

    expect(mine.find((k) => k.prefix === k1.apiKey.prefix)!.lastUsedAt).toBeNull();
    await h.api('GET', '/api/v1/me', undefined, k1.token);
    expect((await keysOf(owner)).find((k) => k.prefix === k1.apiKey.prefix)!.lastUsedAt).toMatch(ISO_UTC);
  });
});

describe('DELETE /api/v1/api-keys/:prefix', () => {
  it('revokes at once: the revoked token gets 401 on the very next request', async () => {
    const owner = await h.newUser('kate');
    const k = await newKey(owner, 'to revoke');
    // Used (and so remembered as verified) just before.
    expect((await h.api('GET', '/api/v1/me', undefined, k.token)).status).toBe(200);
    const r = await h.api('DELETE', `/api/v1/api-keys/${k.apiKey.prefix}`, undefined, owner);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ success: true });
    expectError(await h.api('GET', '/api/v1/me', undefined, k.token), 401, 'UNAUTHORIZED');
    expectError(await h.api('GET', '/api/v1/deployments', undefined, k.token), 401, 'UNAUTHORIZED');
    // The owner's other key is unaffected, and the list shows the revocation.
    const listed = (await keysOf(owner)).find((x) => x.prefix === k.apiKey.prefix)!;
    expect(listed.revokedAt).toMatch(ISO_UTC);
  });

  it('lets a key revoke itself', async () => {
    const owner = await h.newUser('liam');
    const k = await newKey(owner);
    expectOk(await h.api('DELETE', `/api/v1/api-keys/${k.apiKey.prefix}`, undefined, k.token));
    expectError(await h.api('GET', '/api/v1/api-keys', undefined, k.token), 401, 'UNAUTHORIZED');
    expect((await h.api('GET', '/api/v1/me', undefined, owner)).status).toBe(200);
  });

  it("answers 404 API_KEY_NOT_FOUND for an unknown key and for another user's key, which keeps working", async () => {
    const owner = await h.newUser('mona');
    const victim = await h.newUser('nick');
    const vk = await newKey(victim, 'victim');
    const foreign = expectError(await h.api('DELETE', `/api/v1/api-keys/${vk.apiKey.prefix}`, undefined, owner), 404, 'API_KEY_NOT_FOUND');
    const missing = expectError(await h.api('DELETE', '/api/v1/api-keys/aaaaaaaaaaaa', undefined, owner), 404, 'API_KEY_NOT_FOUND');
    expect(foreign.message.replace(vk.apiKey.prefix, '<p>')).toBe(missing.message.replace('aaaaaaaaaaaa', '<p>'));
    expect((await h.api('GET', '/api/v1/me', undefined, vk.token)).status).toBe(200);
    expect((await keysOf(victim)).find((k) => k.prefix === vk.apiKey.prefix)!.revokedAt).toBeNull();
  });

  it('needs a token itself', async () => {
    const owner = await h.newUser('olga');
    const k = await newKey(owner);
    expectError(await raw(h, 'DELETE', `/api/v1/api-keys/${k.apiKey.prefix}`, { token: null }), 401, 'UNAUTHORIZED');
    expect((await h.api('GET', '/api/v1/me', undefined, k.token)).status).toBe(200);
  });

  it("keeps the revoked key's deployments reachable with the user's other keys", async () => {
    const owner = await h.newUser('pete');
    const k = await newKey(owner);
    const dep = await createDeployment(h, undefined, k.token);
    expectOk(await h.api('DELETE', `/api/v1/api-keys/${k.apiKey.prefix}`, undefined, owner));
    expectError(await h.api('GET', `/api/v1/deployments/${dep}`, undefined, k.token), 401, 'UNAUTHORIZED');
    expect(expectOk(await h.api('GET', `/api/v1/deployments/${dep}`, undefined, owner)).deployment.id).toBe(dep);
    await h.idle();
  });
});

describe('GET /api/v1/me', () => {
  it('says who the caller is and what the dashboard needs to know', async () => {
    const body = expectOk(await h.api('GET', '/api/v1/me'));
    expect(body).toEqual({
      success: true,
      user: { id: expect.stringMatching(/^usr-/), name: 'alice', role: 'user' },
      server: { version: expect.any(String), runtime: 'process', minSnapshotInterval: '1s', mode: 'all-in-one' },
    });
    const bob = await h.newUser('bob');
    const other = expectOk(await h.api('GET', '/api/v1/me', undefined, bob));
    expect(other.user.name).toBe('bob');
    expect(other.user.id).not.toBe(body.user.id);
  });

  it('makes the user named admin (the one kova serve creates) the admin', async () => {
    const admin = expectOk(await h.api('GET', '/api/v1/me', undefined, await h.newUser('admin')));
    expect(admin.user).toMatchObject({ name: 'admin', role: 'admin' });
    expect(admin.server.mode).toBe('all-in-one');
  });

  it('needs a token', async () => {
    expectError(await raw(h, 'GET', '/api/v1/me', { token: null }), 401, 'UNAUTHORIZED');
  });
});

describe('a cap on active keys per user', () => {
  it('refuses the 21st active key with 409 KEY_LIMIT, creates nothing, and allows one again after a revocation', async () => {
    const owner = await h.newUser('hoarder');
    const made: string[] = [];
    for (let i = 1; i < 20; i++) made.push((await newKey(owner, `k${i}`)).apiKey.prefix);
    expect(await keysOf(owner)).toHaveLength(20);
    const err = expectError(await h.api('POST', '/api/v1/api-keys', { label: 'one too many' }, owner), 409, 'KEY_LIMIT');
    expect(err.message).toMatch(/20/);
    expect(await keysOf(owner)).toHaveLength(20);
    // Revoked keys do not count.
    expectOk(await h.api('DELETE', `/api/v1/api-keys/${made[0]}`, undefined, owner));
    await newKey(owner, 'replacement');
    expectError(await h.api('POST', '/api/v1/api-keys', {}, owner), 409, 'KEY_LIMIT');
    // Another user has their own cap.
    await newKey(await h.newUser('frugal'));
  });

  it('lets parallel creations past the cap only up to it', async () => {
    const owner = await h.newUser('racer');
    for (let i = 1; i < 18; i++) await newKey(owner);
    const rs = await Promise.all(Array.from({ length: 6 }, () => h.api('POST', '/api/v1/api-keys', {}, owner)));
    expect(rs.filter((r) => r.status === 201)).toHaveLength(2);
    for (const r of rs.filter((x) => x.status !== 201)) expectError(r, 409, 'KEY_LIMIT');
    expect((await keysOf(owner)).filter((k) => k.revokedAt === null)).toHaveLength(20);
  });
});
