/**
 * The dashboard's view of verification, on a real `kova serve` (process
 * runtime) and Debian's Chromium, at desktop (1280) and phone (390) widths:
 * the Snapshots tab says where the checks of the stored data stand, "Check
 * now" runs one, and after damage (bytes flipped in every pack file) a full
 * check marks the snapshots with a Damaged badge and the line turns red.
 *
 * Needs /usr/bin/chromium (scripts/test-setup.sh). With CI=true a missing
 * browser fails the suite; elsewhere it is skipped with a message.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumInstalled, launchChromium, pageOverflow, screenshot } from './helpers/browser.js';
import { sdlFor } from './helpers/harness.js';
import { type KovaServer, ensureBuilt, startKova } from './helpers/kova-server.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();

describe.skipIf(!HAVE_BROWSER && !IN_CI)('dashboard: verification of the stored data', () => {
  let kova: KovaServer;
  let browser: Browser;
  let desktop: Page;
  let phone: Page;
  let depId = '';

  beforeAll(async () => {
    ensureBuilt();
    kova = await startKova({ minSnapshotInterval: '1s' });
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
  });

  async function until<T>(check: () => Promise<T | null | undefined | false>, what: string): Promise<T> {
    for (let i = 0; i < 300; i++) {
      const v = await check();
      if (v) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const lastCheck = async () =>
    (await kova.api('GET', `/api/v1/deployments/${depId}/snapshot-settings`)).body.settings.verification.lastVerification;

  it('shows the last check and runs one with Check now', async () => {
    const d = await kova.api('POST', '/api/v1/deployments', { sdl: sdlFor('exec sleep 100000'), name: 'shop-db' });
    depId = d.body.deployment.id;
    await until(async () => (await kova.api('GET', `/api/v1/deployments/${depId}`)).body.deployment.operation === null, 'the deploy');
    fs.writeFileSync(path.join(kova.volumeDir(depId, 'app', 'data'), 'db.bin'), randomBytes(3_000_000));
    for (const label of ['nightly', 'before-migration']) {
      expect((await kova.api('POST', `/api/v1/deployments/${depId}/snapshots`, { label })).status).toBe(202);
      await until(async () => (await kova.api('GET', `/api/v1/deployments/${depId}`)).body.deployment.operation === null, 'the snapshot');
    }
    await desktop.goto(`${kova.url}/deployments/${depId}/snapshots`);
    const line = desktop.getByTestId('verification-line');
    await line.getByText('Last check: none yet').waitFor();
    await line.getByRole('button', { name: 'Check now' }).click();
    await until(async () => (await lastCheck())?.status === 'ok', 'the check');
    await line.getByText(/Last check .*: ok/).waitFor();
    await expect(line.textContent()).resolves.toMatch(/not every byte read back yet · a part every 7d, all in 30 days/);
    // A full check: every byte read since it started.
    expect((await kova.api('POST', `/api/v1/deployments/${depId}/verifications`, { full: true })).status).toBe(202);
    await until(async () => (await lastCheck())?.status === 'ok' && (await lastCheck())?.part === null, 'the full check');
    for (const page of [desktop, phone]) {
      await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
      await page
        .getByTestId('verification-line')
        .getByText(/every byte read at least once since/)
        .waitFor();
      expect(await pageOverflow(page)).toBe(0);
    }
    await screenshot(desktop, 'verification-ok-desktop');
    await screenshot(phone, 'verification-ok-phone');
  });

  it('marks damaged snapshots after a check finds damage', async () => {
    const packs = path.join(kova.dataDir, 'repos', depId, 'packs');
    for (const sub of fs.readdirSync(packs)) {
      for (const name of fs.readdirSync(path.join(packs, sub))) {
        const file = path.join(packs, sub, name);
        const buf = fs.readFileSync(file);
        buf[buf.length >> 1]! ^= 0xff;
        fs.writeFileSync(file, buf);
      }
    }
    expect((await kova.api('POST', `/api/v1/deployments/${depId}/verifications`, { full: true })).status).toBe(202);
    await until(async () => (await lastCheck())?.status === 'failed', 'the failed check');
    for (const page of [desktop, phone]) {
      await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
      const line = page.getByTestId('verification-line');
      await line.getByText(/found \d+ problems? \(2 snapshots marked damaged\)/).waitFor();
      expect(await line.getAttribute('class')).toContain('is-failed');
      await expect(line.textContent()).resolves.toMatch(/not every byte read back yet/);
      const rows = page.locator('tr[data-snapshot-id]');
      await expect(rows.count()).resolves.toBe(2);
      for (let i = 0; i < 2; i++) await rows.nth(i).locator('[data-status="damaged"]', { hasText: 'Damaged' }).waitFor();
      expect(await pageOverflow(page)).toBe(0);
    }
    await screenshot(desktop, 'verification-damaged-desktop');
    await screenshot(phone, 'verification-damaged-phone');
  });
});
