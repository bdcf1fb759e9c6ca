/**
 * The dashboard against a control plane: a real PostgreSQL, one replica and
 * two nodes (process runtime) as processes, and Debian's Chromium. A user
 * creates two deployments, one through the form and one through the API,
 * and sees the node each runs on; the admin sees the Nodes page with both
 * nodes online and one deployment each (a user has no such page). One node
 * is cut off from the control plane: the Nodes page shows it offline, and
 * its deployment's page shows the banner and disables the actions that need
 * the node, while the other deployment's stay enabled; the node comes back
 * and everything turns online again. Screenshots at 1280 and 390 px go to
 * test-results/screenshots/network-*.png.
 *
 * Needs /usr/bin/chromium and PostgreSQL (scripts/test-setup.sh). With
 * CI=true a missing browser fails the suite; elsewhere it is skipped.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, chromiumInstalled, launchChromium, pageOverflow, screenshot } from './helpers/browser.js';
import { type Api, createDeployment, waitRunning } from './helpers/flows.js';
import { sdlFor } from './helpers/harness.js';
import { ensureBuilt } from './helpers/kova-server.js';
import { type KovaNode, type Network, startNetwork } from './helpers/network.js';
import { postgresAvailable } from './helpers/postgres.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();
if (!HAVE_BROWSER && !IN_CI)
  console.warn(
    `skipping the network dashboard test: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or run scripts/test-setup.sh)`,
  );

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const SDL = sdlFor('while true; do date +%s >> /data/log.txt; sleep 1; done');
/** Long enough for the control plane to call a cut node offline (--node-timeout 3s) and for the pages to poll. */
const STATUS_TIMEOUT_MS = 30_000;

async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
}

/** The buttons of a deployment's Overview that need its node. */
const nodeActions = (page: Page): Locator[] => [
  page.getByRole('button', { name: 'Restart' }),
  page.getByRole('button', { name: 'Update SDL' }),
  page.getByRole('button', { name: 'Close deployment' }),
];

describe.skipIf((!HAVE_BROWSER && !IN_CI) || !postgresAvailable())(
  'dashboard in network mode (control plane, two nodes, real browser)',
  () => {
    let net: Network;
    let browser: Browser;
    let userDesktop: BrowserContext;
    let adminDesktop: BrowserContext;
    let adminPhone: BrowserContext;
    let userPhone: BrowserContext;
    let user: Page;
    let admin: Page;
    let userKey: string;
    let userApi: Api;
    const url = () => net.replicas[0]!.url;
    /** Each deployment id with the name of the node it was placed on. */
    const placed: Array<{ id: string; name: string; node: string }> = [];
    const pageErrors: string[] = [];

    beforeAll(async () => {
      ensureBuilt();
      net = await startNetwork({ replicas: 1, nodes: 2 });
      userKey = await net.userKey('carol');
      userApi = net.api(userKey);
      browser = await launchChromium();
      userDesktop = await browser.newContext({ viewport: DESKTOP });
      adminDesktop = await browser.newContext({ viewport: DESKTOP });
      adminPhone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
      userPhone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
      user = await userDesktop.newPage();
      admin = await adminDesktop.newPage();
      for (const p of [user, admin]) p.on('pageerror', (err) => pageErrors.push(String(err)));
    }, 240_000);

    afterAll(async () => {
      await browser?.close().catch(() => undefined);
      await net?.close();
    }, 120_000);

    it('shows a user the node each of their deployments runs on, and no Nodes page', async () => {
      await signIn(user, url(), userKey);
      expect(await user.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes' }).count()).toBe(0);

      // One deployment through the form, one through the API.
      await user.getByRole('link', { name: 'New deployment' }).first().click();
      await user.getByRole('textbox', { name: /^Name/ }).fill('shop');
      await user.getByLabel('SDL', { exact: true }).fill(SDL);
      await user.getByRole('button', { name: 'Create deployment' }).click();
      await user.waitForURL(/\/deployments\/dep-[a-z0-9]+$/);
      const shop = new URL(user.url()).pathname.split('/').pop()!;
      const blog = await createDeployment(userApi, SDL, 'blog');
      for (const [id, name] of [
        [shop, 'shop'],
        [blog, 'blog'],
      ] as const) {
        const d = await waitRunning(userApi, id, 60_000);
        placed.push({ id, name, node: d.node.name });
      }
      expect(new Set(placed.map((p) => p.node)), 'one deployment on each node').toEqual(new Set(['node-1', 'node-2']));

      // The deployment's page names its node, online.
      await user.goto(`${url()}/deployments/${shop}`);
      const onPage = user.getByTestId('deployment-node');
      await onPage.locator(`[data-node="${placed[0]!.node}"][data-node-status="online"]`).waitFor();
      expect(await onPage.innerText()).toMatch(new RegExp(`on node\\s+${placed[0]!.node}\\s+Online`));
      await user.locator('[data-service="app"] [data-status="running"]').waitFor({ timeout: STATUS_TIMEOUT_MS });
      await screenshot(user, 'network-01-deployment-online');

      // The list has a Node column with each one's node.
      await user.goto(`${url()}/deployments`);
      for (const p of placed) {
        const cell = user.locator(`tr[data-deployment-id="${p.id}"] td[data-label="Node"]`);
        await cell.locator(`[data-node="${p.node}"][data-node-status="online"]`).waitFor();
      }
      expect(await user.getByRole('columnheader', { name: 'Node' }).count()).toBe(1);
      await screenshot(user, 'network-02-deployments');

      // The Nodes page is for admins: a user who finds its address is told so.
      await user.goto(`${url()}/nodes`);
      await user.getByRole('heading', { name: 'Only admins see the nodes' }).waitFor();
    }, 180_000);

    it('shows the admin the Nodes page: both nodes online, one deployment each, readable on a phone', async () => {
      await signIn(admin, url(), net.adminKey);
      await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes' }).click();
      await admin.getByRole('heading', { name: 'Nodes', level: 1 }).waitFor();
      for (const name of ['node-1', 'node-2']) {
        const row = admin.locator(`tr[data-node="${name}"]`);
        await row.locator('[data-status="online"]').first().waitFor();
        await row.getByTestId('deployments').filter({ hasText: /^1$/ }).waitFor({ timeout: STATUS_TIMEOUT_MS });
        await row.getByTestId('running-services').filter({ hasText: /^1$/ }).waitFor({ timeout: STATUS_TIMEOUT_MS });
        expect(await row.locator('td[data-label="Last heartbeat"] time').count()).toBe(1);
        expect(await row.getByTestId('disk-free').innerText()).toMatch(/ free$/);
        // Volumes: used of the reserved SDL size (1 GiB each).
        expect(await row.locator('td[data-label="Volumes"] .usage-text').innerText()).toContain('/ 1.1 GB');
      }
      expect(await admin.getByTestId('node-summary').innerText()).toBe('2 nodes · 2 online');
      await screenshot(admin, 'network-03-nodes');

      const p = await adminPhone.newPage();
      p.on('pageerror', (err) => pageErrors.push(String(err)));
      try {
        await signIn(p, url(), net.adminKey);
        await p.goto(`${url()}/nodes`);
        await p.locator('tr[data-node="node-2"] [data-status="online"]').first().waitFor();
        expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
        const box = await p.locator('tr[data-node="node-1"]').boundingBox();
        expect(box!.width).toBeLessThanOrEqual(PHONE.width);
        // The header fits its three sections, none cut off, and the sign-out button on the screen.
        const nav = p.getByRole('navigation', { name: 'Main' });
        expect(
          await nav.evaluate((el: unknown) => (el as { scrollWidth: number }).scrollWidth - (el as { clientWidth: number }).clientWidth),
        ).toBe(0);
        const signOut = await p.getByRole('button', { name: 'Sign out' }).boundingBox();
        expect(signOut!.x + signOut!.width, 'inside the screen').toBeLessThanOrEqual(PHONE.width);
        await screenshot(p, 'network-04-nodes-phone');
      } finally {
        await p.close();
      }
    }, 120_000);

    it('shows a cut-off node offline, with the banner and disabled actions on its deployment, until it returns', async () => {
      const [gone, other] = placed as [(typeof placed)[0], (typeof placed)[0]];
      const node = net.nodes.find((n) => n.name === gone.node) as KovaNode;
      await user.goto(`${url()}/deployments/${gone.id}`);
      await user.getByTestId('deployment-node').locator('[data-node-status="online"]').waitFor();
      for (const b of nodeActions(user)) expect(await b.isEnabled()).toBe(true);

      node.cut();
      try {
        // The admin's page turns the node offline by itself (no reload).
        const row = admin.locator(`tr[data-node="${gone.node}"]`);
        await row.locator('[data-status="offline"]').first().waitFor({ timeout: STATUS_TIMEOUT_MS });
        expect(await admin.locator(`tr[data-node="${other.node}"] [data-status="online"]`).count()).toBeGreaterThan(0);
        expect(await admin.getByTestId('node-summary').innerText()).toBe('2 nodes · 1 online · 1 offline');
        // Its deployments are still counted: they are placed there, only unreachable.
        expect(await row.getByTestId('deployments').innerText()).toBe('1');
        await screenshot(admin, 'network-05-nodes-one-offline');

        // The user's deployment page, also without a reload: banner, offline badge, actions disabled with the reason.
        const banner = user.getByTestId('node-offline-banner');
        await banner.waitFor({ timeout: STATUS_TIMEOUT_MS });
        const text = await banner.innerText();
        expect(text).toContain(`The node ${gone.node} has not been seen since`);
        expect(text).toContain(
          'its snapshots are listed from the catalogue, but operations that need the node are unavailable until it returns',
        );
        await user.getByTestId('deployment-node').locator('[data-node-status="offline"]').waitFor();
        for (const b of nodeActions(user)) {
          expect(await b.isDisabled()).toBe(true);
          expect(await b.getAttribute('title')).toBe(`Unavailable while the node ${gone.node} is offline`);
        }
        // The services are still shown as last reported.
        expect(await user.locator('[data-service="app"]').count()).toBe(1);
        await screenshot(user, 'network-06-deployment-offline');

        // Snapshots are still listed; taking one waits for the node.
        await user
          .getByRole('navigation', { name: 'Deployment sections' })
          .getByRole('link', { name: /^Snapshots/ })
          .click();
        await user.getByRole('heading', { name: 'No snapshots yet' }).waitFor();
        const create = user.getByRole('button', { name: 'Create snapshot' });
        expect(await create.isDisabled()).toBe(true);
        await screenshot(user, 'network-07-snapshots-offline');

        // On a phone the banner and the page fit the screen.
        const p = await userPhone.newPage();
        p.on('pageerror', (err) => pageErrors.push(String(err)));
        try {
          await signIn(p, url(), userKey);
          await p.goto(`${url()}/deployments/${gone.id}`);
          await p.getByTestId('node-offline-banner').waitFor();
          expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
          await screenshot(p, 'network-08-deployment-offline-phone');
        } finally {
          await p.close();
        }

        // The other deployment, on the node that is still there, keeps its actions.
        await user.goto(`${url()}/deployments/${other.id}`);
        await user.getByTestId('deployment-node').locator('[data-node-status="online"]').waitFor();
        expect(await user.getByTestId('node-offline-banner').count()).toBe(0);
        for (const b of nodeActions(user)) expect(await b.isEnabled()).toBe(true);
        await user.goto(`${url()}/deployments/${gone.id}`);
        await user.getByTestId('node-offline-banner').waitFor();
      } finally {
        node.heal();
      }

      // Back: online everywhere, banner gone, actions enabled again, all without a reload.
      await admin.locator(`tr[data-node="${gone.node}"] [data-status="online"]`).first().waitFor({ timeout: STATUS_TIMEOUT_MS });
      await user.getByTestId('deployment-node').locator('[data-node-status="online"]').waitFor({ timeout: STATUS_TIMEOUT_MS });
      await user.getByTestId('node-offline-banner').waitFor({ state: 'detached' });
      for (const b of nodeActions(user)) expect(await b.isEnabled()).toBe(true);
      await waitRunning(userApi, gone.id, 60_000);
      await screenshot(admin, 'network-09-nodes-back');
      await screenshot(user, 'network-10-deployment-back');
      // Nothing the pages did threw.
      await sleep(100);
      expect(pageErrors).toEqual([]);
    }, 180_000);
  },
);
