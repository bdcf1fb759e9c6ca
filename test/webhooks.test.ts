/**
 * Webhooks (docs/api.md, "Webhooks"): the API, deliveries to a real HTTP
 * receiver on loopback (signature checked with the secret), retries with
 * backoff driven by a ManualClock and runDue() instead of sleeps, the
 * delivery log, a restart resuming a pending delivery, missed automatic
 * snapshots, the deployment's snapshotHealth, and the refusal of private
 * addresses.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { MAX_ATTEMPTS, retryDelayMs, verifySignature } from '../src/services/webhooks/sender.js';
import { IDLE_SCRIPT, ISO_UTC, createDeployment, expectError, expectOk, takeSnapshot, volumeDir } from './helpers/api.js';
import { type Harness, sdlFor, startHarness, waitFor } from './helpers/harness.js';
import { type Received, type Receiver, startReceiver } from './helpers/receiver.js';

/** One attempt's timeout here: long enough for a busy machine, short enough to wait for once. */
const ATTEMPT_MS = 1500;

let receiver: Receiver;
let base: string;
let received: Received[] = [];

let h: Harness;
let clock: ManualClock;

beforeAll(async () => {
  receiver = await startReceiver();
  received = receiver.received;
  base = receiver.base;
  clock = new ManualClock(Date.UTC(2026, 2, 2, 9, 0, 0));
  // Jitter 0: every backoff is exactly the sender's base delay.
  h = await startHarness({ clock, minSnapshotIntervalMs: 1000, webhooks: { allowPrivate: true, timeoutMs: ATTEMPT_MS, random: () => 0 } });
});
afterEach(() => {
  received.length = 0;
  receiver.answer = (res) => res.end('ok');
});
afterAll(async () => {
  await h?.close();
  await receiver?.close();
});

/** A deployment whose snapshots fail (the pre hook exits 3) while FAIL_MARKER is in its volume. */
const FAIL_MARKER = '.fail-snapshots';
const failingSdl = sdlFor(IDLE_SCRIPT, { pre: ['sh', '-c', `if [ -e ${FAIL_MARKER} ]; then echo no space left; exit 3; fi`] });
const setFailing = (dep: string, on: boolean) => {
  const marker = path.join(volumeDir(h, dep), FAIL_MARKER);
  if (on) fs.writeFileSync(marker, '');
  else fs.rmSync(marker, { force: true });
};

async function addHook(events: string[], token?: string, extra: Record<string, unknown> = {}) {
  return expectOk(await h.api('POST', '/api/v1/webhooks', { url: `${base}/hook`, events, ...extra }, token), 201) as {
    webhook: { id: string; url: string; events: string[]; createdAt: string; lastDelivery: unknown };
    secret: string;
  };
}

async function deliveries(id: string, token?: string) {
  return expectOk(await h.api('GET', `/api/v1/webhooks/${id}/deliveries`, undefined, token)).deliveries as Array<{
    id: string;
    eventId: string;
    event: string;
    status: string;
    attempts: number;
    responseStatus: number | null;
    error: string | null;
    createdAt: string;
    lastAttemptAt: string | null;
    nextAttemptAt: string | null;
    finishedAt: string | null;
  }>;
}

async function removeAllHooks(token?: string) {
  for (const w of expectOk(await h.api('GET', '/api/v1/webhooks', undefined, token)).webhooks)
    expectOk(await h.api('DELETE', `/api/v1/webhooks/${w.id}`, undefined, token));
}

/** failSnapshot takes a manual snapshot of a failingSdl deployment that fails, and returns its id. */
async function failSnapshot(dep: string): Promise<string> {
  setFailing(dep, true);
  const snap = expectOk(await h.api('POST', `/api/v1/deployments/${dep}/snapshots`, {}), 202).snapshot;
  await h.idle();
  setFailing(dep, false);
  return snap.id as string;
}

describe('managing webhooks', () => {
  afterEach(async () => removeAllHooks());

  it('creates a webhook: 201 with the secret once; the list never shows it again', async () => {
    const { webhook, secret } = await addHook(['snapshot.failed', 'restore.completed', 'snapshot.failed']);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(webhook).toEqual({
      id: expect.stringMatching(/^whk-/),
      url: `${base}/hook`,
      events: ['snapshot.failed', 'restore.completed'],
      createdAt: expect.stringMatching(ISO_UTC),
      lastDelivery: null,
    });
    const list = await h.api('GET', '/api/v1/webhooks');
    expect(expectOk(list).webhooks).toEqual([webhook]);
    expect(list.res.body).not.toContain(secret);
    // A secret given is kept as given.
    const given = await addHook(['offsite.failed'], undefined, { secret: 'a-shared-secret-of-some-length' });
    expect(given.secret).toBe('a-shared-secret-of-some-length');
  });

  it('refuses bad URLs, events and secrets with their own 400 codes', async () => {
    const post = (body: unknown) => h.api('POST', '/api/v1/webhooks', body);
    for (const url of [
      'ftp://example.com/x',
      'not a url',
      '/relative',
      'javascript:alert(1)',
      `http://user:pw@127.0.0.1/`,
      `${base}/${'x'.repeat(2100)}`,
    ])
      expectError(await post({ url, events: ['snapshot.failed'] }), 400, 'INVALID_WEBHOOK_URL');
    expectError(await post({ url: base, events: [] }), 400, 'INVALID_WEBHOOK_EVENT');
    const bad = expectError(await post({ url: base, events: ['snapshot.failed', 'snapshot.deleted'] }), 400, 'INVALID_WEBHOOK_EVENT');
    expect(bad.message).toContain('snapshot.deleted');
    expectError(await post({ url: base, events: ['snapshot.failed'], secret: 'short' }), 400, 'INVALID_WEBHOOK_SECRET');
    expectError(
      await post({ url: base, events: ['snapshot.failed'], secret: 'has spaces in it, sixteen+' }),
      400,
      'INVALID_WEBHOOK_SECRET',
    );
    expectError(await post({ url: base, events: 'snapshot.failed' }), 400, 'INVALID_REQUEST');
    expectError(await post({ url: base, events: ['snapshot.failed'], extra: 1 }), 400, 'INVALID_REQUEST');
    expect(expectOk(await h.api('GET', '/api/v1/webhooks')).webhooks).toEqual([]);
  });

  it('allows at most 10 webhooks per user', async () => {
    for (let i = 0; i < 10; i++) await addHook(['snapshot.failed']);
    const err = expectError(await h.api('POST', '/api/v1/webhooks', { url: base, events: ['snapshot.failed'] }), 400, 'WEBHOOK_LIMIT');
    expect(err.message).toContain('10');
    // Another user has their own ten.
    const bob = await h.newUser('bob-limit');
    await addHook(['snapshot.failed'], bob);
    await removeAllHooks(bob);
  });

  it("shows, deletes and logs only the caller's own webhooks: another user's is 404", async () => {
    const { webhook } = await addHook(['snapshot.failed']);
    const mallory = await h.newUser('mallory');
    expect(expectOk(await h.api('GET', '/api/v1/webhooks', undefined, mallory)).webhooks).toEqual([]);
    expectError(await h.api('DELETE', `/api/v1/webhooks/${webhook.id}`, undefined, mallory), 404, 'WEBHOOK_NOT_FOUND');
    expectError(await h.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries`, undefined, mallory), 404, 'WEBHOOK_NOT_FOUND');
    expectError(await h.api('DELETE', '/api/v1/webhooks/whk-nonexistent00'), 404, 'WEBHOOK_NOT_FOUND');
    // Still there for its owner, who can delete it.
    expect(expectOk(await h.api('GET', '/api/v1/webhooks')).webhooks).toHaveLength(1);
    expectOk(await h.api('DELETE', `/api/v1/webhooks/${webhook.id}`));
    expect(expectOk(await h.api('GET', '/api/v1/webhooks')).webhooks).toEqual([]);
  });
});

describe('delivering events', () => {
  afterEach(async () => removeAllHooks());

  it('posts a failed snapshot to the receiver, signed with the secret, and logs it as delivered', async () => {
    const dep = await createDeployment(h, failingSdl);
    const { webhook, secret } = await addHook(['snapshot.failed']);
    const other = await addHook(['restore.completed']);
    const snapId = await failSnapshot(dep);
    // Recorded, not sent: sending is the dispatcher's, never the snapshot's.
    expect(received).toHaveLength(0);
    expect((await deliveries(webhook.id))[0]).toMatchObject({ event: 'snapshot.failed', status: 'pending', attempts: 0 });
    expect(await h.services.dispatcher.runDue()).toBe(1);

    expect(received).toHaveLength(1);
    const r = received[0]!;
    expect(verifySignature(secret, r.body, r.headers['x-kova-signature'] as string)).toBe(true);
    expect(verifySignature('another-secret-000', r.body, r.headers['x-kova-signature'] as string)).toBe(false);
    expect(r.headers['x-kova-event']).toBe('snapshot.failed');
    expect(r.headers['content-type']).toBe('application/json');
    const body = JSON.parse(r.body);
    expect(Object.keys(body).sort()).toEqual(['createdAt', 'data', 'deployment', 'event', 'id']);
    expect(body).toMatchObject({
      id: expect.stringMatching(/^evt-/),
      event: 'snapshot.failed',
      createdAt: expect.stringMatching(ISO_UTC),
      deployment: { id: dep, name: 'app' },
      data: { snapshot: { id: snapId, trigger: 'manual', error: expect.stringContaining('no space left') } },
    });

    const [d] = await deliveries(webhook.id);
    expect(r.headers['x-kova-delivery']).toBe(d!.id);
    expect(d).toEqual({
      id: expect.stringMatching(/^dlv-/),
      eventId: body.id,
      event: 'snapshot.failed',
      status: 'delivered',
      attempts: 1,
      responseStatus: 200,
      error: null,
      createdAt: expect.stringMatching(ISO_UTC),
      lastAttemptAt: expect.stringMatching(ISO_UTC),
      nextAttemptAt: null,
      finishedAt: expect.stringMatching(ISO_UTC),
    });
    // The list shows it as the latest delivery; the hook for other events got nothing.
    const listed = expectOk(await h.api('GET', '/api/v1/webhooks')).webhooks;
    expect(listed.find((w: { id: string }) => w.id === webhook.id).lastDelivery).toEqual(d);
    expect(await deliveries(other.webhook.id)).toEqual([]);
  });

  it('retries a receiver answering 500 with backoff until it answers 2xx', async () => {
    const dep = await createDeployment(h, failingSdl);
    const { webhook } = await addHook(['snapshot.failed']);
    await failSnapshot(dep);
    receiver.answer = (res) => {
      res.statusCode = 500;
      res.end('down for maintenance');
    };
    expect(await h.services.dispatcher.runDue()).toBe(1);
    let [d] = await deliveries(webhook.id);
    expect(d).toMatchObject({ status: 'pending', attempts: 1, responseStatus: 500, error: 'HTTP 500: down for maintenance' });
    expect(Date.parse(d!.nextAttemptAt!) - Date.parse(d!.lastAttemptAt!)).toBe(retryDelayMs(2, 0));
    // Not due yet: nothing is sent.
    clock.advance(retryDelayMs(2, 0)! - 1);
    expect(await h.services.dispatcher.runDue()).toBe(0);
    clock.advance(1);
    expect(await h.services.dispatcher.runDue()).toBe(1);
    [d] = await deliveries(webhook.id);
    expect(d).toMatchObject({ status: 'pending', attempts: 2, responseStatus: 500 });
    expect(Date.parse(d!.nextAttemptAt!) - Date.parse(d!.lastAttemptAt!)).toBe(retryDelayMs(3, 0));
    receiver.answer = (res) => res.end('thanks');
    clock.advance(retryDelayMs(3, 0)!);
    expect(await h.services.dispatcher.runDue()).toBe(1);
    [d] = await deliveries(webhook.id);
    expect(d).toMatchObject({ status: 'delivered', attempts: 3, responseStatus: 200, error: null, nextAttemptAt: null });
    expect(received).toHaveLength(3);
    // Every attempt is the same delivery: same id, same bytes, same signature.
    expect(new Set(received.map((r) => `${r.headers['x-kova-delivery']} ${r.headers['x-kova-signature']} ${r.body}`)).size).toBe(1);
  });

  it(`gives up after ${MAX_ATTEMPTS} attempts (a timeout, then errors), and logs it as failed`, async () => {
    const dep = await createDeployment(h, failingSdl);
    const { webhook } = await addHook(['snapshot.failed']);
    await failSnapshot(dep);
    receiver.answer = () => undefined; // never answers: the first attempt times out
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      expect(await h.services.dispatcher.runDue()).toBe(1);
      const [d] = await deliveries(webhook.id);
      if (attempt === 1) expect(d).toMatchObject({ attempts: 1, responseStatus: null, error: 'timed out' });
      else expect(d).toMatchObject({ attempts: attempt, responseStatus: 502, error: 'HTTP 502: bad gateway' });
      receiver.answer = (res) => {
        res.statusCode = 502;
        res.end('bad gateway');
      };
      if (attempt < MAX_ATTEMPTS) {
        expect(d!.status).toBe('pending');
        clock.set(Date.parse(d!.nextAttemptAt!));
      } else {
        expect(d).toMatchObject({ status: 'failed', nextAttemptAt: null, finishedAt: expect.stringMatching(ISO_UTC) });
      }
    }
    clock.advance(86_400_000);
    expect(await h.services.dispatcher.runDue()).toBe(0);
    expect(received).toHaveLength(MAX_ATTEMPTS);
  });

  it('reports a completed restore', async () => {
    const dep = await createDeployment(h);
    const { webhook } = await addHook(['restore.completed', 'restore.failed']);
    const snap = await takeSnapshot(h, dep);
    const restore = expectOk(
      await h.api('POST', `/api/v1/deployments/${dep}/snapshots/${snap.id}/restore`, { safetySnapshot: false }),
      202,
    ).restore;
    await h.idle();
    await h.services.dispatcher.runDue();
    expect(received.map((r) => r.headers['x-kova-event'])).toEqual(['restore.completed']);
    expect(JSON.parse(received[0]!.body).data).toMatchObject({ restore: { id: restore.id, snapshotId: snap.id } });
    expect((await deliveries(webhook.id))[0]).toMatchObject({ event: 'restore.completed', status: 'delivered' });
  });

  it('pages the delivery log, newest first', async () => {
    const dep = await createDeployment(h, failingSdl);
    const { webhook } = await addHook(['snapshot.failed']);
    for (let i = 0; i < 3; i++) await failSnapshot(dep);
    const all = await deliveries(webhook.id);
    expect(all).toHaveLength(3);
    const first = expectOk(await h.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries?limit=2`));
    expect(first.deliveries.map((d: { id: string }) => d.id)).toEqual(all.slice(0, 2).map((d) => d.id));
    expect(first.cursor).toEqual(expect.any(String));
    const second = expectOk(await h.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries?limit=2&cursor=${first.cursor}`));
    expect(second.deliveries.map((d: { id: string }) => d.id)).toEqual([all[2]!.id]);
    expect(second.cursor).toBeNull();
    expectError(await h.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries?cursor=abc`), 400, 'INVALID_CURSOR');
    expectError(await h.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries?limit=0`), 400, 'INVALID_REQUEST');
    expectError(await h.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries?limit=500`), 400, 'INVALID_REQUEST');
    await h.services.dispatcher.runDue();
  });
});

describe('missed automatic snapshots and snapshotHealth', () => {
  afterEach(async () => {
    await h.idle();
    await removeAllHooks();
    for (const d of expectOk(await h.api('GET', '/api/v1/deployments')).deployments)
      if (d.status === 'active') expectOk(await h.api('POST', `/api/v1/deployments/${d.id}/close`));
    await h.idle();
  });

  const health = async (dep: string) => expectOk(await h.api('GET', `/api/v1/deployments/${dep}`)).deployment.snapshotHealth;
  const missedBodies = () => received.filter((r) => r.headers['x-kova-event'] === 'snapshot.missed').map((r) => JSON.parse(r.body));

  it('reports a due time passed by more than the grace, once, and shows the deployment overdue until a snapshot is taken', async () => {
    const dep = await createDeployment(h);
    await addHook(['snapshot.missed']);
    expect(await health(dep)).toEqual({ status: 'ok', since: null, message: null });
    const settings = expectOk(
      await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { enabled: true, interval: '1h' }),
    ).settings;
    const due = Date.parse(settings.nextRunAt);
    // The server is "down" across the due time: no tick until 10 minutes (the grace of a 1h interval) have passed.
    clock.set(due + 10 * 60_000);
    expect((await health(dep)).status).toBe('ok');
    h.services.settings.tick();
    await h.services.dispatcher.runDue();
    expect(missedBodies()).toHaveLength(0);
    await h.idle(); // the catch-up snapshot
    expect((await health(dep)).status).toBe('ok');

    // The next due time is missed: the snapshot stays queued behind a long restore, say. Here: the server is down again.
    const next = Date.parse(expectOk(await h.api('GET', `/api/v1/deployments/${dep}/snapshot-settings`)).settings.nextRunAt);
    clock.set(next + 10 * 60_000 + 1);
    expect(await health(dep)).toEqual({
      status: 'overdue',
      since: new Date(next).toISOString(),
      message: expect.stringContaining('has not been taken'),
    });
    h.services.settings.tick();
    h.services.settings.tick();
    await h.services.dispatcher.runDue();
    const missed = missedBodies();
    expect(missed).toHaveLength(1);
    expect(missed[0]).toMatchObject({
      event: 'snapshot.missed',
      deployment: { id: dep },
      data: { dueAt: new Date(next).toISOString(), interval: '1h' },
    });
    await h.idle(); // the catch-up snapshot was queued by the same tick
    expect(await health(dep)).toEqual({ status: 'ok', since: null, message: null });
    clock.advance(60_000);
    h.services.settings.tick();
    await h.services.dispatcher.runDue();
    expect(missedBodies()).toHaveLength(1);
  });

  it('reports a queued snapshot that has not started once the grace has passed', async () => {
    const dep = await createDeployment(h);
    await addHook(['snapshot.missed']);
    const due = Date.parse(
      expectOk(await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { enabled: true, interval: '2h' })).settings.nextRunAt,
    );
    // Hold the job queue's slots so the automatic snapshot stays queued.
    const release: Array<() => void> = [];
    const jobs = h.services.ctx.jobs;
    jobs.register('hold', () => new Promise<void>((r) => release.push(r)));
    try {
      const holders = [await createDeployment(h), await createDeployment(h)];
      for (const d of holders) h.store.tx(() => jobs.enqueue(d, 'hold'));
      await waitFor(() => release.length === 2, 10_000, 'the job slots to be held');
      clock.set(due);
      expect(h.services.settings.tick()).toBe(1);
      // 12 minutes: the grace of a 2h interval is max(10 min, 12 min).
      clock.advance(12 * 60_000);
      h.services.settings.tick();
      await h.services.dispatcher.runDue();
      expect(missedBodies()).toHaveLength(0);
      clock.advance(1);
      h.services.settings.tick();
      await h.services.dispatcher.runDue();
      expect(missedBodies()).toHaveLength(1);
      expect((await health(dep)).status).toBe('overdue');
    } finally {
      for (const r of release) r();
    }
    await h.idle();
    expect((await health(dep)).status).toBe('ok');
  });

  it('does not report a snapshot taken on time', async () => {
    const dep = await createDeployment(h);
    await addHook(['snapshot.missed']);
    const due = Date.parse(
      expectOk(await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { enabled: true, interval: '1h' })).settings.nextRunAt,
    );
    clock.set(due);
    expect(h.services.settings.tick()).toBe(1);
    await h.idle();
    clock.advance(11 * 60_000);
    h.services.settings.tick();
    await h.services.dispatcher.runDue();
    expect(missedBodies()).toHaveLength(0);
    expect((await health(dep)).status).toBe('ok');
  });

  it('shows failed while the newest automatic snapshot failed, since the first failure of the run', async () => {
    const dep = await createDeployment(h, failingSdl);
    const { webhook } = await addHook(['snapshot.failed']);
    expectOk(await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { enabled: true, interval: '1h' }));
    setFailing(dep, true);
    const runDue = async () => {
      clock.set(Date.parse(expectOk(await h.api('GET', `/api/v1/deployments/${dep}/snapshot-settings`)).settings.nextRunAt));
      expect(h.services.settings.tick()).toBe(1);
      await h.idle();
    };
    await runDue();
    const firstFailure = (await h.api('GET', `/api/v1/deployments/${dep}/snapshots`)).body.snapshots[0];
    await runDue();
    const hl = await health(dep);
    expect(hl).toEqual({ status: 'failed', since: firstFailure.createdAt, message: expect.stringContaining('no space left') });
    await h.services.dispatcher.runDue();
    expect((await deliveries(webhook.id)).map((d) => d.event)).toEqual(['snapshot.failed', 'snapshot.failed']);
    setFailing(dep, false);
    await runDue();
    expect((await health(dep)).status).toBe('ok');
    // Turning automatic snapshots off clears it as well.
    setFailing(dep, true);
    await runDue();
    expect((await health(dep)).status).toBe('failed');
    expectOk(await h.api('PUT', `/api/v1/deployments/${dep}/snapshot-settings`, { enabled: false }));
    expect((await health(dep)).status).toBe('ok');
  });
});

describe('restart', () => {
  it('resumes a pending delivery after the server restarts', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-hooks-'));
    const c = new ManualClock(Date.UTC(2026, 2, 3, 9, 0, 0));
    const opts = { clock: c, dataDir, webhooks: { allowPrivate: true, timeoutMs: ATTEMPT_MS, random: () => 0 } };
    let first: Harness | null = await startHarness(opts);
    let second: Harness | null = null;
    try {
      const dep = await createDeployment(first, failingSdl);
      const { webhook, secret } = expectOk(
        await first.api('POST', '/api/v1/webhooks', { url: `${base}/hook`, events: ['snapshot.failed'] }),
        201,
      );
      fs.writeFileSync(path.join(first.paths.volume(dep, { service: 'app', volume: 'data' }), FAIL_MARKER), '');
      expectOk(await first.api('POST', `/api/v1/deployments/${dep}/snapshots`, {}), 202);
      await first.idle();
      receiver.answer = (res) => {
        res.statusCode = 503;
        res.end();
      };
      await first.services.dispatcher.runDue();
      await first.close();
      first = null;

      receiver.answer = (res) => res.end('ok');
      second = await startHarness(opts);
      const [pending] = expectOk(await second.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries`)).deliveries;
      expect(pending).toMatchObject({ status: 'pending', attempts: 1, responseStatus: 503 });
      c.set(Date.parse(pending.nextAttemptAt));
      expect(await second.services.dispatcher.runDue()).toBe(1);
      const [done] = expectOk(await second.api('GET', `/api/v1/webhooks/${webhook.id}/deliveries`)).deliveries;
      expect(done).toMatchObject({ id: pending.id, status: 'delivered', attempts: 2, responseStatus: 200 });
      expect(received).toHaveLength(2);
      expect(received[1]!.headers['x-kova-delivery']).toBe(pending.id);
      expect(received[1]!.body).toBe(received[0]!.body);
      expect(verifySignature(secret, received[1]!.body, received[1]!.headers['x-kova-signature'] as string)).toBe(true);
    } finally {
      await first?.close();
      await second?.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('private addresses (SSRF)', () => {
  let strict: Harness;
  const names: Record<string, string[]> = { 'hooks.example.com': ['93.184.216.34'], 'inside.example.com': ['10.0.0.7'] };
  beforeAll(async () => {
    strict = await startHarness({
      webhooks: {
        timeoutMs: 300,
        resolve: async (host) => {
          const a = names[host];
          if (!a) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
          return a;
        },
      },
    });
  });
  afterAll(async () => strict?.close());

  it('refuses hosts that are or resolve to loopback, private, link-local or reserved addresses', async () => {
    const post = (url: string) => strict.api('POST', '/api/v1/webhooks', { url, events: ['snapshot.failed'] });
    for (const url of [
      base,
      'http://127.0.0.1/',
      'http://0.0.0.0/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data',
      'http://100.64.0.1/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://2130706433/',
      'https://inside.example.com/hook',
    ])
      expectError(await post(url), 400, 'WEBHOOK_URL_FORBIDDEN');
    expectError(await post('https://nowhere.example.com/hook'), 400, 'INVALID_WEBHOOK_URL');
    expect(expectOk(await strict.api('GET', '/api/v1/webhooks')).webhooks).toEqual([]);
    expectOk(await post('https://hooks.example.com/hook'), 201);
    expectOk(await post('http://93.184.216.34/x'), 201);
  });

  it('checks again before each attempt: a name that now resolves to a private address is not called', async () => {
    const dep = await createDeployment(strict);
    const hook = expectOk(
      await strict.api('POST', '/api/v1/webhooks', { url: 'https://hooks.example.com/x', events: ['restore.failed'] }),
      201,
    ).webhook;
    names['hooks.example.com'] = ['127.0.0.1'];
    strict.services.webhooks.emit('restore.failed', dep, { restore: { id: 'rst-test' } });
    expect(await strict.services.dispatcher.runDue()).toBe(1);
    const [d] = expectOk(await strict.api('GET', `/api/v1/webhooks/${hook.id}/deliveries`)).deliveries;
    expect(d).toMatchObject({
      status: 'pending',
      attempts: 1,
      responseStatus: null,
      error: expect.stringMatching(/^refused: .*127\.0\.0\.1/),
    });
  });
});
