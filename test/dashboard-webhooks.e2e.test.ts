/**
 * The dashboard's Webhooks page and the snapshot-health banner, on a real
 * `kova serve` (process runtime, --webhooks-allow-private for the loopback
 * receiver) and Debian's Chromium, at desktop (1280) and phone (390)
 * widths: adding a webhook shows its secret once, a failed snapshot reaches
 * the receiver signed with that secret and shows in the delivery log, and a
 * deployment whose automatic snapshots fail carries a banner.
 *
 * Needs /usr/bin/chromium (scripts/test-setup.sh). With CI=true a missing
 * browser fails the suite; elsewhere it is skipped with a message.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../src/services/webhooks/sender.js';
import { chromiumInstalled, launchChromium, pageOverflow, screenshot } from './helpers/browser.js';
import { sdlFor } from './helpers/harness.js';
import { type KovaServer, ensureBuilt, startKova } from './helpers/kova-server.js';
import { type Received, type Receiver, startReceiver } from './helpers/receiver.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();
const FAIL_MARKER = '.fail';
const failingSdl = sdlFor('exec sleep 100000', {
  pre: ['sh', '-c', `if [ -e ${FAIL_MARKER} ]; then echo disk quota exceeded; exit 3; fi`],
});

describe.skipIf(!HAVE_BROWSER && !IN_CI)('dashboard: webhooks and the snapshot health banner', () => {
  let kova: KovaServer;
  let browser: Browser;
  let desktop: Page;
  let phone: Page;
  let receiver: Receiver | undefined;
  let hookUrl = '';
  let received: Received[] = [];

  beforeAll(async () => {
    ensureBuilt();
    receiver = await startReceiver();
    received = receiver.received;
    hookUrl = `${receiver.base}/kova`;
    kova = await startKova({ minSnapshotInterval: '1s', extraArgs: ['--webhooks-allow-private'] });
    browser = await launchChromium();
    const open = async (width: number, height: number) => {
      const ctx = await browser.newContext({ viewport: { width, height } });
      await ctx.addInitScript({ content: `localStorage.setItem('kova.apiKey', ${JSON.stringify(kova.adminKey)});` });
      return ctx.newPage();
    };
    desktop = await open(1280, 800);
    phone = await open(390, 844);
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await kova?.stop();
    await receiver?.close();
  });

  async function until<T>(check: () => Promise<T | null | undefined | false>, what: string): Promise<T> {
    for (let i = 0; i < 300; i++) {
      const v = await check();
      if (v) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  let depId = '';
  let secret = '';

  it('adds a webhook and shows its secret once', async () => {
    await desktop.goto(`${kova.url}/webhooks`);
    await desktop.getByRole('heading', { name: 'No webhooks yet' }).waitFor();
    await desktop.getByLabel('URL').fill(hookUrl);
    await desktop.getByRole('button', { name: 'Add webhook' }).click();
    secret = await desktop.getByTestId('webhook-secret').innerText();
    expect(secret).toMatch(/^whsec_/);
    await desktop.getByTestId('webhook').waitFor();
    expect(await desktop.getByTestId('webhook').innerText()).toContain(hookUrl);
    await screenshot(desktop, 'webhooks-added-desktop');
    // The secret is not listed: a reload shows the webhook without it.
    await desktop.reload();
    await desktop.getByTestId('webhook').waitFor();
    expect(await desktop.content()).not.toContain(secret);
  });

  it('refuses a URL that is not http(s) and says why next to the field', async () => {
    await desktop.getByLabel('URL').fill('ftp://example.com/x');
    await desktop.getByRole('button', { name: 'Add webhook' }).click();
    expect(await desktop.getByText('Enter a URL starting with https:// or http://.').isVisible()).toBe(true);
  });

  it('delivers a failed snapshot, signed, and shows it in the delivery log', async () => {
    const d = await kova.api('POST', '/api/v1/deployments', { sdl: failingSdl, name: 'shop-db' });
    depId = d.body.deployment.id as string;
    await until(async () => (await kova.api('GET', `/api/v1/deployments/${depId}`)).body.deployment.operation === null, 'the deploy');
    fs.writeFileSync(path.join(kova.dataDir, 'volumes', depId, 'app', 'data', FAIL_MARKER), '');
    expect((await kova.api('POST', `/api/v1/deployments/${depId}/snapshots`, { label: 'nightly' })).status).toBe(202);
    const got = await until(async () => received.find((r) => r.headers['x-kova-event'] === 'snapshot.failed'), 'the delivery');
    expect(verifySignature(secret, got.body, got.headers['x-kova-signature'] as string)).toBe(true);
    expect(JSON.parse(got.body).deployment).toEqual({ id: depId, name: 'shop-db' });

    for (const page of [desktop, phone]) {
      await page.goto(`${kova.url}/webhooks`);
      await page.getByRole('button', { name: 'Deliveries' }).click();
      const row = page.getByTestId('delivery').first();
      await row.waitFor();
      const text = await row.innerText();
      expect(text).toContain('snapshot.failed');
      expect(text).toContain('Delivered');
      expect(text).toContain('HTTP 200');
      expect(await pageOverflow(page)).toBe(0);
    }
    await screenshot(desktop, 'webhooks-deliveries-desktop');
    await screenshot(phone, 'webhooks-deliveries-phone');
  });

  it('shows a banner on a deployment whose automatic snapshots fail', async () => {
    expect((await kova.api('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { enabled: true, interval: '1s' })).status).toBe(200);
    await until(
      async () => (await kova.api('GET', `/api/v1/deployments/${depId}`)).body.deployment.snapshotHealth.status === 'failed',
      'failed',
    );
    expect((await kova.api('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { interval: '1h' })).status).toBe(200);
    for (const page of [desktop, phone]) {
      await page.goto(`${kova.url}/deployments/${depId}`);
      const banner = page.getByTestId('snapshot-health-banner');
      await banner.waitFor();
      const text = await banner.innerText();
      expect(text).toContain('The last automatic snapshot failed');
      expect(text).toContain('disk quota exceeded');
      expect(await pageOverflow(page)).toBe(0);
    }
    await screenshot(desktop, 'snapshot-health-failed-desktop');
    await screenshot(phone, 'snapshot-health-failed-phone');
    // Once a snapshot succeeds again, the banner goes.
    fs.rmSync(path.join(kova.dataDir, 'volumes', depId, 'app', 'data', FAIL_MARKER));
    expect((await kova.api('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { interval: '1s' })).status).toBe(200);
    await until(async () => (await kova.api('GET', `/api/v1/deployments/${depId}`)).body.deployment.snapshotHealth.status === 'ok', 'ok');
    expect((await kova.api('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { enabled: false })).status).toBe(200);
    await desktop.goto(`${kova.url}/deployments/${depId}`);
    await desktop.getByRole('heading', { name: 'shop-db' }).waitFor();
    expect(await desktop.getByTestId('snapshot-health-banner').count()).toBe(0);
  });
});
