/**
 * The dashboard's "Recover on another node", against a control plane with a
 * real PostgreSQL, two nodes (process runtime) copying to one s3rver target,
 * and Debian's Chromium. A user's deployment has a snapshot whose offsite
 * badge reads copied; its node is killed and its data directory destroyed;
 * the deployment's page shows the node offline with the action; the dialog
 * names the snapshot, its date and size, and what recovering does; Confirm
 * brings the deployment up on the other node, and the page follows it until
 * its service runs. Screenshots at 1280 and 390 px go to
 * test-results/screenshots/recover-*.png.
 *
 * Needs /usr/bin/chromium and PostgreSQL (scripts/test-setup.sh). With
 * CI=true a missing browser fails the suite; elsewhere it is skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, chromiumInstalled, launchChromium, pageOverflow, screenshot } from './helpers/browser.js';
import { type Api, createDeployment, snapshotReady, volumeDir, waitRunning } from './helpers/flows.js';
import { sdlFor, waitFor } from './helpers/harness.js';
import { ensureBuilt } from './helpers/kova-server.js';
import type { Network } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';
import { type OffsiteNetwork, startOffsiteNetwork } from './helpers/offsite-network.js';
import { killServices } from './helpers/server-process.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();
if (!HAVE_BROWSER && !IN_CI)
  console.warn(
    `skipping the recovery dashboard test: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or run scripts/test-setup.sh)`,
  );

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const SDL = sdlFor('sleep 3600');
const STATUS_TIMEOUT_MS = 30_000;

async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
}

describe.skipIf((!HAVE_BROWSER && !IN_CI) || !postgresAvailable())('dashboard: recover a deployment on another node', () => {
  let offsite: OffsiteNetwork;
  let net: Network;
  let browser: Browser;
  let userKey: string;
  let userApi: Api;
  const pageErrors: string[] = [];
  const url = () => net.replicas[0]!.url;

  beforeAll(async () => {
    ensureBuilt();
    offsite = await startOffsiteNetwork('dash');
    net = offsite.net;
    userKey = await net.userKey('dana');
    userApi = net.api(userKey);
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await offsite?.close();
  }, 120_000);

  it('shows the copy, offers recovery when the node is lost, and follows the deployment to the other node', async () => {
    const depId = await createDeployment(userApi, SDL, 'ledger');
    const first = await waitRunning(userApi, depId, 60_000);
    const lost = net.nodes.find((n) => n.name === first.node.name)!;
    const other = net.nodes.find((n) => n.name !== first.node.name)!;
    fs.writeFileSync(path.join(volumeDir(lost.dataDir, depId), 'ledger.txt'), 'balance: 42\n');
    await snapshotReady(userApi, depId, 'nightly');

    const desktop = await browser.newContext({ viewport: DESKTOP });
    const page = await desktop.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    await signIn(page, url(), userKey);

    // The Snapshots tab shows the off-node copy, as the node reported it through the control plane.
    await page.goto(`${url()}/deployments/${depId}/snapshots`);
    await page.locator('[data-offsite="copied"]').first().waitFor({ timeout: 60_000 });
    await screenshot(page, 'recover-01-snapshot-copied');

    // The node is lost: process, services and data directory.
    await lost.kill();
    killServices(lost.dataDir);
    fs.rmSync(lost.dataDir, { recursive: true, force: true });

    await page.goto(`${url()}/deployments/${depId}`);
    const banner = page.getByTestId('node-offline-banner');
    await banner.waitFor({ timeout: STATUS_TIMEOUT_MS });
    await screenshot(page, 'recover-02-node-offline');
    // While the node is offline its copied snapshot can still be cloned (from the copy); deleting it waits for the node.
    await page.goto(`${url()}/deployments/${depId}/snapshots`);
    const clone = page.getByRole('button', { name: 'Clone nightly into a new deployment' });
    await clone.waitFor();
    expect(await clone.isEnabled()).toBe(true);
    expect(await clone.getAttribute('title')).toBe('Clone from the off-node copy onto another node');
    expect(
      await page
        .getByRole('button', { name: /^Delete/ })
        .first()
        .isDisabled(),
    ).toBe(true);
    await page.goto(`${url()}/deployments/${depId}`);
    await banner.waitFor({ timeout: STATUS_TIMEOUT_MS });
    await banner.getByRole('button', { name: 'Recover on another node' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('radio').first().waitFor();
    const text = await dialog.innerText();
    expect(text).toContain('nightly');
    expect(text).toContain('Newest copy · taken');
    expect(text).toMatch(/\d+(\.\d+)? [kKMG]?B/);
    expect(text).toContain('Data written after it is lost.');
    expect(text).toContain('runs on another node');
    expect(text).toContain(`If ${lost.name} comes back, it stops this deployment and no longer runs it.`);
    expect(await dialog.getByRole('radio').count()).toBe(1);
    await screenshot(page, 'recover-03-dialog');

    // The same dialog on a phone fits the screen.
    const phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      p.on('pageerror', (err) => pageErrors.push(String(err)));
      await signIn(p, url(), userKey);
      await p.goto(`${url()}/deployments/${depId}`);
      // The banner keeps its text readable: the action goes under it, not beside it.
      const phoneBanner = p.getByTestId('node-offline-banner');
      await phoneBanner.waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      const text = await phoneBanner.locator('.callout-body').boundingBox();
      const action = await phoneBanner.getByRole('button', { name: 'Recover on another node' }).boundingBox();
      expect(text!.width, 'the banner text spans the banner').toBeGreaterThan(PHONE.width * 0.6);
      expect(action!.y, 'the action sits under the text').toBeGreaterThanOrEqual(text!.y + text!.height - 1);
      await screenshot(p, 'recover-04-node-offline-phone');
      await phoneBanner.getByRole('button', { name: 'Recover on another node' }).click();
      await p.getByRole('dialog').getByRole('radio').first().waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      const box = await p.getByRole('dialog').boundingBox();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
      await screenshot(p, 'recover-05-dialog-phone');
    } finally {
      await phone.close();
    }

    // Confirm: the deployment moves to the other node and runs there; the page follows without a reload.
    await dialog.getByRole('button', { name: 'Recover on another node' }).click();
    await dialog.waitFor({ state: 'detached' });
    const node = page.getByTestId('deployment-node');
    await node.locator(`[data-node="${other.name}"]`).waitFor({ timeout: STATUS_TIMEOUT_MS });
    if (await page.getByTestId('recovery-banner').count()) await screenshot(page, 'recover-06-recovering');
    await page.locator('[data-service="app"] [data-status="running"]').waitFor({ timeout: 90_000 });
    await node.locator(`[data-node="${other.name}"][data-node-status="online"]`).waitFor();
    expect(await page.getByTestId('node-offline-banner').count()).toBe(0);
    await screenshot(page, 'recover-07-running-elsewhere');
    expect(fs.readFileSync(path.join(volumeDir(other.dataDir, depId), 'ledger.txt'), 'utf8')).toBe('balance: 42\n');

    // Its snapshot is listed again, copied.
    await page
      .getByRole('navigation', { name: 'Deployment sections' })
      .getByRole('link', { name: /^Snapshots/ })
      .click();
    await waitFor(async () => (await page.locator(`[data-offsite="copied"]`).count()) > 0, 30_000, 'the copied badge after recovery');
    await page.getByText('nightly').first().waitFor();
    await screenshot(page, 'recover-08-snapshots-after');
    await desktop.close();
    expect(pageErrors).toEqual([]);
  }, 300_000);
});
