/**
 * The dashboard end to end: a real `kova serve` (process runtime) and Debian's
 * Chromium. One scenario, step by step: sign in; an invalid SDL is shown in
 * place; a deployment is created through the form (its service appends to a
 * file in its volume and records its pid); a labelled snapshot turns ready
 * without a reload, and a bad label is refused in the dialog; the volume is
 * changed on disk and the snapshot restored through the confirmation dialog
 * (data back, service restarted); the SDL is updated after a snapshot; the
 * phone layout does not overflow; clone and close; delete; automatic
 * snapshots every 1s with retention 2 appear and are pruned, none failing;
 * a revoked key signs out. Every page and dialog is saved to
 * test-results/screenshots/.
 *
 * Needs /usr/bin/chromium (scripts/test-setup.sh). With CI=true a missing
 * browser fails the suite; elsewhere it is skipped with a message.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, chromiumInstalled, datasets, inPage, isFocused, launchChromium, pageOverflow, screenshot } from './helpers/browser.js';
import { type KovaServer, ensureBuilt, startKova } from './helpers/kova-server.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();
if (!HAVE_BROWSER && !IN_CI)
  console.warn(`skipping the dashboard tests: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or run scripts/test-setup.sh)`);

const SCRIPT = 'echo $$ > pid.txt; [ -f state.txt ] || echo original > state.txt; while true; do date +%s >> log.txt; sleep 0.2; done';

const SDL = `version: "2.0"
services:
  app:
    image: busybox:1.36
    command: ["sh", "-c"]
    args:
      - ${JSON.stringify(SCRIPT)}
    params:
      storage:
        data:
          mount: /data
profiles:
  compute:
    app:
      resources:
        cpu:
          units: 0.5
        memory:
          size: 256Mi
        storage:
          - size: 512Mi
          - name: data
            size: 1Gi
            attributes:
              persistent: true
deployment:
  app:
    local:
      profile: app
      count: 1
`;

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

async function waitUntil<T>(check: () => Promise<T> | T, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const readIf = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!HAVE_BROWSER && !IN_CI)('dashboard (real server, real browser)', () => {
  let kova: KovaServer;
  let browser: Browser;
  let desktop: BrowserContext;
  let page: Page;
  /** A second key of the same user for the test's own API calls (rate limits are per key). */
  let checkKey: string;
  const api = (method: string, url: string, body?: unknown) => kova.api(method, url, body, checkKey);
  let depId = '';
  let vol = '';
  let snapId = '';
  let safetyId = '';
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ensureBuilt();
    // The scenario does in a minute what a person does in many: above the
    // default 100 requests a minute per key (the desktop page alone peaks near
    // 80, and the phone session and these checks share the admin key).
    kova = await startKova({ minSnapshotInterval: '1s', extraArgs: ['--rate-limit', '1000'] });
    const k = await kova.api('POST', '/api/v1/api-keys', { label: 'e2e checks' });
    expect(k.status).toBe(201);
    checkKey = k.body.token;
    browser = await launchChromium();
    desktop = await browser.newContext({ viewport: DESKTOP });
    page = await desktop.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await kova?.stop();
  });

  it('signs in with an API key, and refuses a wrong one in place', async () => {
    await page.goto(kova.url);
    await page.getByRole('heading', { name: 'Sign in to Kova' }).waitFor();
    await screenshot(page, '01-signin');

    await page.getByLabel('API key').fill('kova_nothere.not-a-real-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('This API key was not accepted').waitFor();
    await screenshot(page, '02-signin-error');

    await page.getByLabel('API key').fill(kova.adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
    expect(await inPage(page, "localStorage.getItem('kova.apiKey')")).toBe(kova.adminKey);
    await page.getByRole('heading', { name: 'No deployments yet' }).waitFor();
    expect(await page.getByText('Create a deployment from an SDL file').isVisible()).toBe(true);
    await screenshot(page, '03-deployments-empty');
  });

  it('shows an invalid SDL error in place, then creates a deployment through the form', async () => {
    await page.getByRole('link', { name: 'New deployment' }).first().click();
    await page.getByRole('heading', { name: 'New deployment' }).waitFor();
    const editor = page.getByLabel('SDL', { exact: true });
    expect(await editor.inputValue()).toContain('version: "2.0"');
    await screenshot(page, '04-new-deployment');

    await editor.fill(SDL.replace('    image: busybox:1.36', '    imag: busybox:1.36'));
    await page.getByRole('button', { name: 'Create deployment' }).click();
    const error = page.getByTestId('sdl-error');
    await error.waitFor();
    expect(await error.innerText()).toContain('services.app.imag');
    // The gutter marks the line the error is about (line 4: "    imag: …").
    expect(await page.locator('.sdl-gutter .is-error').innerText()).toBe('4');
    expect(page.url()).toMatch(/\/deployments\/new$/);
    await screenshot(page, '05-new-deployment-invalid-sdl');

    await page.getByRole('textbox', { name: /^Name/ }).fill('shop-db');
    await editor.fill(SDL);
    await page.getByRole('button', { name: 'Create deployment' }).click();
    await page.waitForURL(/\/deployments\/dep-[a-z0-9]+$/);
    depId = new URL(page.url()).pathname.split('/').pop()!;
    await page.getByRole('heading', { name: 'shop-db', level: 1 }).waitFor();
    await page.locator('[data-service="app"] [data-status="running"]').waitFor({ timeout: 30_000 });
    vol = kova.volumeDir(depId, 'app', 'data');
    await waitUntil(
      () => readIf(path.join(vol, 'state.txt')) === 'original\n' && readIf(path.join(vol, 'pid.txt')),
      'the service to write its files',
    );
    // Volume usage becomes known once the service has written.
    await page.locator('[data-volume="data"] .usage-text').filter({ hasText: '/ 1.1 GB' }).waitFor();
    expect(await page.locator('[data-volume="data"]').innerText()).toContain('/data');
    await screenshot(page, '06-overview');
  });

  it('creates a labelled snapshot whose badge turns ready without a reload; a bad label is refused in the dialog', async () => {
    await page
      .getByRole('navigation', { name: 'Deployment sections' })
      .getByRole('link', { name: /Snapshots/ })
      .click();
    await page.getByRole('heading', { name: 'No snapshots yet' }).waitFor();
    expect(await page.getByText('Take a snapshot before you update the SDL or run destructive operations').isVisible()).toBe(true);
    await screenshot(page, '07-snapshots-empty');

    // Record every status each snapshot row shows, and prove the page never reloads.
    await inPage(
      page,
      `(() => {
        window.__marker = 42;
        window.__seen = {};
        const record = () => {
          for (const tr of document.querySelectorAll('tr[data-snapshot-id]')) {
            const list = (window.__seen[tr.dataset.snapshotId] ??= []);
            if (list[list.length - 1] !== tr.dataset.status) list.push(tr.dataset.status);
          }
        };
        new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
      })()`,
    );

    const posts: number[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/snapshots$/.test(new URL(r.url()).pathname)) posts.push(Date.now());
    });

    await page.getByRole('button', { name: 'Create snapshot' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Create snapshot' });
    await dialog.waitFor();
    const label = dialog.getByLabel(/Label/);
    expect(await isFocused(label)).toBe(true);
    expect(await dialog.getAttribute('aria-modal')).toBe('true');
    await screenshot(page, '08-dialog-create-snapshot');

    // 65 characters: refused in the dialog, before and instead of sending.
    await label.fill('x'.repeat(65));
    await dialog.getByText('label must be at most 64 characters').waitFor();
    await dialog.getByRole('button', { name: 'Create snapshot' }).click();
    expect(await dialog.isVisible()).toBe(true);
    expect(await label.getAttribute('aria-invalid')).toBe('true');
    expect(posts).toHaveLength(0);
    await screenshot(page, '09-dialog-create-snapshot-invalid');

    // Tab and Shift+Tab stay inside the dialog; Escape closes it without
    // creating anything and gives focus back to the button that opened it.
    const inDialog = () => inPage<boolean>(page, `!!document.activeElement?.closest('[role="dialog"]')`);
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      expect(await inDialog()).toBe(true);
    }
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Shift+Tab');
      expect(await inDialog()).toBe(true);
    }
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(posts).toHaveLength(0);
    expect(await inPage(page, 'document.activeElement?.textContent?.trim()')).toBe('Create snapshot');

    await page.getByRole('button', { name: 'Create snapshot' }).first().click();
    await dialog.getByLabel(/Label/).fill('before-migration');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    const row = page.locator('tr[data-snapshot-id]', { hasText: 'before-migration' });
    await row.locator('[data-status="ready"]').waitFor({ timeout: 30_000 });
    snapId = (await row.getAttribute('data-snapshot-id'))!;
    const seen = await inPage<Record<string, string[]>>(page, 'window.__seen');
    expect(seen[snapId]).toEqual(['creating', 'ready']);
    expect(await inPage(page, 'window.__marker')).toBe(42);
    expect(posts).toHaveLength(1);

    // The row: manual, exact time on hover, consistency; storage used is counted.
    expect(await row.locator('.trigger').innerText()).toBe('Manual');
    const time = row.locator('time');
    expect(await time.getAttribute('title')).toMatch(/\d{4}/);
    expect(await time.innerText()).toMatch(/now|sec|min/);
    expect(await row.locator('td[data-label="Consistency"]').innerText()).toMatch(/Frozen|Live/);
    expect(await page.getByTestId('snapshot-storage').innerText()).toMatch(/^\d+(\.\d)? (B|KB|MB)$/);
    expect(await page.getByTestId('snapshot-storage').innerText()).not.toBe('0 B');
    await screenshot(page, '10-snapshots-ready');
  });

  it('restores the snapshot through the confirmation dialog: data back on disk, service restarted', async () => {
    const pidBefore = Number(fs.readFileSync(path.join(vol, 'pid.txt'), 'utf8'));
    expect(alive(pidBefore)).toBe(true);
    fs.writeFileSync(path.join(vol, 'state.txt'), 'changed\n');
    fs.writeFileSync(path.join(vol, 'extra.txt'), 'written after the snapshot\n');

    const statuses: string[] = [];
    page.on('response', (r) => {
      if (/\/restores\/rst-[^/]+$/.test(new URL(r.url()).pathname) && r.ok()) {
        r.json().then(
          (b: { restore: { status: string } }) => statuses.push(b.restore.status),
          () => undefined,
        );
      }
    });

    await page.getByRole('button', { name: 'Restore before-migration' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore this snapshot?' });
    await dialog.waitFor();
    const text = await dialog.innerText();
    expect(text).toContain('All current data in the volumes is replaced');
    expect(text).toContain('Data written since the snapshot was taken will be lost');
    expect(text).toContain('The container restarts');
    const safety = dialog.getByRole('checkbox', { name: 'Take a safety snapshot of the current state first' });
    expect(await safety.isChecked()).toBe(true);
    // Focus starts on Cancel: Enter alone never starts a destructive restore.
    expect(await isFocused(dialog.getByRole('button', { name: 'Cancel' }))).toBe(true);
    await screenshot(page, '11-dialog-restore');

    await dialog.getByRole('button', { name: 'Confirm restore' }).click();
    await dialog.waitFor({ state: 'detached' });
    const panel = page.getByTestId('restore-panel');
    await panel.waitFor();
    await screenshot(page, '12-restore-running');
    const outcome = panel.getByRole('heading', { name: /Restore (completed|failed)/ });
    await outcome.waitFor({ timeout: 60_000 });
    expect(await panel.innerText(), 'the restore completed').toContain('Restore completed');
    const downtime = await page.getByTestId('restore-downtime').innerText();
    expect(downtime).toMatch(/^\d+(\.\d)? (ms|s)$/);
    expect(await panel.locator('.step.is-done').count()).toBe(4);

    // The statuses the page saw went forward only, and ended completed.
    const order = ['pending', 'restoring', 'swapping', 'completed'];
    const ranks = statuses.map((s) => order.indexOf(s));
    expect(ranks.every((r) => r >= 0)).toBe(true);
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
    expect(statuses[statuses.length - 1]).toBe('completed');

    // On disk: the snapshot's data, nothing written since; a new process.
    expect(fs.readFileSync(path.join(vol, 'state.txt'), 'utf8')).toBe('original\n');
    expect(fs.existsSync(path.join(vol, 'extra.txt'))).toBe(false);
    const pidAfter = await waitUntil(() => {
      const p = Number(readIf(path.join(vol, 'pid.txt')));
      return p && p !== pidBefore && alive(p) ? p : 0;
    }, 'the restarted service to write its pid');
    expect(pidAfter).not.toBe(pidBefore);
    expect(alive(pidBefore)).toBe(false);

    // The safety snapshot is listed, as "Before restore".
    const restore = (await api('GET', `/api/v1/deployments/${depId}/restores`)).body.restores[0];
    expect(restore.status).toBe('completed');
    expect(restore.safetySnapshotId).toMatch(/^snap-/);
    const safetyRow = page.locator(`tr[data-snapshot-id="${restore.safetySnapshotId}"]`);
    await safetyRow.locator('[data-status="ready"]').waitFor();
    expect(await safetyRow.locator('.trigger').innerText()).toBe('Before restore');
    safetyId = restore.safetySnapshotId;
    // Restore is offered again once the restore is over.
    expect(await page.getByRole('button', { name: 'Restore before-migration' }).isEnabled()).toBe(true);
    await screenshot(page, '13-restore-completed');
  });

  it('updates the SDL from the overview, taking a snapshot first', async () => {
    await page.getByRole('navigation', { name: 'Deployment sections' }).getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('button', { name: 'Update SDL' }).click();
    const check = page.getByRole('checkbox', { name: /Take a snapshot first/ });
    expect(await check.isChecked()).toBe(true);
    const editor = page.getByRole('textbox', { name: 'SDL', exact: true });
    await editor.fill(SDL.replace('    image: busybox:1.36\n', '    image: busybox:1.36\n    env: ["MODE=updated"]\n'));
    await screenshot(page, '14-overview-update-sdl');
    await page.getByRole('button', { name: 'Save and restart' }).click();
    await page.getByText('Update started').waitFor();
    await waitUntil(async () => {
      const d = (await api('GET', `/api/v1/deployments/${depId}`)).body.deployment;
      return d.operation === null && d.services[0].state === 'running' && d.sdl.includes('MODE=updated');
    }, 'the update to finish');
    const snaps = (await api('GET', `/api/v1/deployments/${depId}/snapshots`)).body.snapshots as { trigger: string; status: string }[];
    expect(snaps.some((s) => s.trigger === 'before-update' && s.status === 'ready')).toBe(true);
    await page.locator('[data-service="app"] [data-status="running"]').waitFor();
  });

  it('renders on a phone-sized screen without horizontal overflow', async () => {
    const phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      await phone.addInitScript({ content: `localStorage.setItem('kova.apiKey', ${JSON.stringify(kova.adminKey)});` });
      const p = await phone.newPage();
      p.on('pageerror', (err) => pageErrors.push(String(err)));

      await p.goto(`${kova.url}/deployments/${depId}/snapshots`);
      await p.locator(`tr[data-snapshot-id="${snapId}"]`).waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      // The table became cards: a row is no wider than the screen.
      const box = await p.locator(`tr[data-snapshot-id="${snapId}"]`).boundingBox();
      expect(box!.width).toBeLessThanOrEqual(PHONE.width);
      await screenshot(p, 'phone-01-snapshots');

      await p.getByRole('button', { name: 'Restore before-migration' }).click();
      await p.getByRole('dialog', { name: 'Restore this snapshot?' }).waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      await screenshot(p, 'phone-02-dialog-restore');
      await p.keyboard.press('Escape');

      await p.goto(`${kova.url}/deployments/${depId}`);
      await p.locator('[data-service="app"] [data-status="running"]').waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      await screenshot(p, 'phone-03-overview');

      await p.goto(`${kova.url}/deployments/${depId}/settings`);
      await p.getByLabel('Interval', { exact: true }).waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      await screenshot(p, 'phone-04-settings');

      await p.goto(`${kova.url}/deployments`);
      await p.locator(`tr[data-deployment-id="${depId}"]`).waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      await screenshot(p, 'phone-05-deployments');

      await p.goto(`${kova.url}/deployments/new`);
      await p.getByLabel('SDL', { exact: true }).waitFor();
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      await screenshot(p, 'phone-06-new-deployment');
    } finally {
      await phone.close();
    }
  });

  it('clones a snapshot into a new deployment, then closes that one after typing its name', async () => {
    await page
      .getByRole('navigation', { name: 'Deployment sections' })
      .getByRole('link', { name: /Snapshots/ })
      .click();
    await page.getByRole('button', { name: 'Clone before-migration into a new deployment' }).click();
    const dialog = page.getByRole('dialog', { name: 'Clone into a new deployment' });
    await dialog.waitFor();
    expect(await dialog.getByLabel('Name of the new deployment').inputValue()).toBe('shop-db-clone');
    await screenshot(page, '15-dialog-clone');
    await dialog.getByRole('button', { name: 'Create clone' }).click();
    await page.waitForURL((u) => /\/deployments\/dep-[a-z0-9]+$/.test(u.pathname) && !u.pathname.endsWith(depId));
    const cloneId = new URL(page.url()).pathname.split('/').pop()!;
    await page.getByRole('heading', { name: 'shop-db-clone', level: 1 }).waitFor();
    await page.locator('[data-service="app"] [data-status="running"]').waitFor({ timeout: 30_000 });
    // The clone's volume started from the snapshot.
    expect(readIf(path.join(kova.volumeDir(cloneId, 'app', 'data'), 'state.txt'))).toBe('original\n');
    await waitUntil(
      async () => (await api('GET', `/api/v1/deployments/${cloneId}`)).body.deployment.operation === null,
      'the clone to settle',
    );

    await page.getByRole('button', { name: 'Close deployment' }).click();
    const close = page.getByRole('dialog', { name: 'Close this deployment?' });
    await close.waitFor();
    const confirm = close.getByRole('button', { name: 'Close deployment' });
    expect(await confirm.isDisabled()).toBe(true);
    const typed = close.getByRole('textbox');
    await typed.fill('shop-db');
    expect(await confirm.isDisabled()).toBe(true);
    await typed.fill('shop-db-clone');
    expect(await confirm.isDisabled()).toBe(false);
    await screenshot(page, '16-dialog-close');
    await confirm.click();
    await close.waitFor({ state: 'detached' });
    await page.locator('.title-row [data-status="closed"]').waitFor();
    await page.getByText('This deployment is closed', { exact: true }).waitFor();
    await waitUntil(
      async () => (await api('GET', `/api/v1/deployments/${cloneId}`)).body.deployment.operation === null,
      'the close to finish',
    );
    await screenshot(page, '17-overview-closed');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deployments' }).click();
    await page.locator(`tr[data-deployment-id="${depId}"]`).waitFor();
    await page.locator(`tr[data-deployment-id="${cloneId}"] [data-status="closed"]`).waitFor();
    expect(await page.locator(`tr[data-deployment-id="${depId}"]`).innerText()).toMatch(/ago|now/);
    await screenshot(page, '18-deployments');
  });

  it('deletes a snapshot after confirming', async () => {
    await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
    const row = page.locator(`tr[data-snapshot-id="${safetyId}"]`);
    await row.locator('[data-status="ready"]').waitFor();
    await row.getByRole('button', { name: /^Delete/ }).click();
    const del = page.getByRole('dialog', { name: 'Delete this snapshot?' });
    await del.waitFor();
    expect(await isFocused(del.getByRole('button', { name: 'Cancel' }))).toBe(true);
    await screenshot(page, '19-dialog-delete-snapshot');
    await del.getByRole('button', { name: 'Delete snapshot' }).click();
    await del.waitFor({ state: 'detached' });
    await row.waitFor({ state: 'detached', timeout: 30_000 });
    expect((await api('GET', `/api/v1/deployments/${depId}/snapshots/${safetyId}`)).status).toBe(404);
    expect(await page.locator(`tr[data-snapshot-id="${snapId}"]`).count()).toBe(1);
  });

  it('shows a skeleton while loading and an error with a retry when the API fails', async () => {
    // The list request is held until the skeleton has been seen; then requests fail (the error state).
    let mode: 'hold' | 'fail' = 'hold';
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/api/v1/deployments', async (route) => {
      if (mode === 'hold') {
        await held;
        await route.continue().catch(() => undefined);
      } else {
        await route.fulfill({
          status: 503,
          contentType: 'application/json',
          body: JSON.stringify({
            success: false,
            error: { code: 'UNAVAILABLE', message: 'The server is restarting; try again in a moment.' },
          }),
        });
      }
    });
    try {
      await page.goto(`${kova.url}/deployments`);
      await page.getByRole('status', { name: 'Loading deployments' }).waitFor();
      await screenshot(page, '20-deployments-loading');
      release();
      await page.locator(`tr[data-deployment-id="${depId}"]`).waitFor();

      mode = 'fail';
      await page.reload();
      const error = page.getByRole('alert').filter({ hasText: 'Could not load your deployments' });
      await error.waitFor();
      expect(await error.innerText()).toContain('The server is restarting; try again in a moment.');
      await screenshot(page, '21-deployments-error');
    } finally {
      release();
      await page.unroute('**/api/v1/deployments');
    }
    await page.getByRole('button', { name: 'Try again' }).click();
    await page.locator(`tr[data-deployment-id="${depId}"]`).waitFor();
  });

  it('turns on automatic snapshots (1s, keep 2) in Settings; they appear and are pruned', async () => {
    await page.goto(`${kova.url}/deployments/${depId}`);
    await page.getByRole('navigation', { name: 'Deployment sections' }).getByRole('link', { name: 'Settings' }).click();
    const interval = page.getByLabel('Interval', { exact: true });
    await interval.waitFor();
    const before = (await api('GET', `/api/v1/deployments/${depId}/snapshot-settings`)).body.settings;
    expect(before).toMatchObject({ enabled: false, retention: 7 });
    expect(await interval.inputValue()).toBe(before.interval);
    expect(await page.getByLabel('Retention', { exact: true }).inputValue()).toBe('7');
    expect(await page.getByText('Minimum on this server:').innerText()).toContain('1s');
    await screenshot(page, '22-settings');

    const save = page.getByRole('button', { name: 'Save settings' });
    await interval.fill('90x');
    await save.click();
    await page.getByRole('alert').filter({ hasText: 'interval must be a whole number' }).waitFor();
    expect(await interval.getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, '23-settings-invalid');

    const retention = page.getByLabel('Retention', { exact: true });
    await interval.fill('1h');
    await retention.fill('0');
    await save.click();
    await page.getByRole('alert').filter({ hasText: 'retention must be an integer from 1 to 100' }).waitFor();

    await page.getByRole('switch', { name: 'Take snapshots automatically' }).check();
    await interval.fill('1s');
    await retention.fill('2');
    await save.click();
    await page.getByText('Automatic snapshots every 1s, keeping 2.').waitFor();
    await page.getByTestId('next-run').locator('time').waitFor();
    await screenshot(page, '24-settings-saved');

    // In the Snapshots tab, automatic snapshots come and go without a reload.
    await page
      .getByRole('navigation', { name: 'Deployment sections' })
      .getByRole('link', { name: /Snapshots/ })
      .click();
    await page.locator('tr[data-snapshot-id]').first().waitFor();
    await inPage(page, 'window.__marker = 43');
    const seen = new Set<string>();
    let mostReady = 0;
    await waitUntil(
      async () => {
        const rows = await datasets(page.locator('tr[data-snapshot-id]:has(.trigger-automatic)'), 'snapshotId', 'status');
        for (const [id] of rows) seen.add(id!);
        mostReady = Math.max(mostReady, rows.filter(([, s]) => s === 'ready').length);
        return seen.size >= 4 && mostReady >= 2;
      },
      'four automatic snapshots to appear',
      60_000,
    );
    await screenshot(page, '25-snapshots-automatic');

    // Off again; once idle, at most 2 automatic snapshots are left, and the manual one stays.
    await page.getByRole('navigation', { name: 'Deployment sections' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('switch', { name: 'Take snapshots automatically' }).uncheck();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Automatic snapshots are off.').waitFor();
    await page
      .getByRole('navigation', { name: 'Deployment sections' })
      .getByRole('link', { name: /Snapshots/ })
      .click();
    await waitUntil(async () => {
      const statuses = (await datasets(page.locator('tr[data-snapshot-id]'), 'status')).map(([st]) => st);
      return statuses.length > 0 && statuses.every((s) => s === 'ready' || s === 'failed');
    }, 'every snapshot to settle');
    const failed = await page.locator('tr[data-snapshot-id][data-status="failed"]').allInnerTexts();
    expect(failed, 'no snapshot failed').toEqual([]);
    const automaticRows = await page.locator('tr[data-snapshot-id]:has(.trigger-automatic)').count();
    expect(automaticRows).toBeGreaterThanOrEqual(1);
    expect(automaticRows).toBeLessThanOrEqual(2);
    const fromApi = (await api('GET', `/api/v1/deployments/${depId}/snapshots`)).body.snapshots as { id: string; automatic: boolean }[];
    expect(fromApi.filter((s) => s.automatic).length).toBe(automaticRows);
    expect(fromApi.some((s) => s.id === snapId)).toBe(true);
    expect(await page.locator(`tr[data-snapshot-id="${snapId}"]`).count()).toBe(1);
    expect(await inPage(page, 'window.__marker')).toBe(43);
  });

  it('Settings: calendar tiers, the policy in plain words, and a preview of the automatic snapshots saving would delete', async () => {
    // Three ready automatic snapshots to preview against, then the schedule off again.
    expect(
      (await api('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { enabled: true, interval: '1s', retention: 3 })).status,
    ).toBe(200);
    type Listed = { id: string; automatic: boolean; status: string };
    const list = async () => (await api('GET', `/api/v1/deployments/${depId}/snapshots`)).body.snapshots as Listed[];
    await waitUntil(
      async () => (await list()).filter((s) => s.automatic && s.status === 'ready').length >= 3,
      'three automatic snapshots',
      60_000,
    );
    expect((await api('PUT', `/api/v1/deployments/${depId}/snapshot-settings`, { enabled: false })).status).toBe(200);
    await waitUntil(async () => (await list()).every((s) => s.status === 'ready' || s.status === 'failed'), 'every snapshot to settle');

    await page.goto(`${kova.url}/deployments/${depId}`);
    await page.getByRole('navigation', { name: 'Deployment sections' }).getByRole('link', { name: 'Settings' }).click();
    const description = page.getByTestId('retention-description');
    await description.waitFor();
    expect(await description.innerText()).toBe(
      'Keeps the 3 most recent automatic snapshots; older automatic snapshots are deleted. Manual snapshots are never deleted.',
    );
    for (const tier of ['Hourly', 'Daily', 'Weekly', 'Monthly']) expect(await page.getByLabel(tier, { exact: true }).inputValue()).toBe('');

    // Retention 1 and one day: the newest is kept, every other automatic snapshot would go.
    await page.getByLabel('Retention', { exact: true }).fill('1');
    await page.getByLabel('Daily', { exact: true }).fill('1');
    const expected = (await api('POST', `/api/v1/deployments/${depId}/snapshot-settings/preview`, { retention: 1, keepDaily: 1 })).body;
    expect(expected.prune.length).toBeGreaterThanOrEqual(2);
    const n = expected.prune.length as number;
    const warning = page
      .getByRole('status')
      .filter({ hasText: `Saving will delete ${n} automatic snapshots when the next automatic snapshot is taken:` });
    await warning.waitFor();
    await waitUntil(async () => (await description.innerText()) === expected.description, 'the description of the new policy');
    expect(expected.description).toContain('the newest of the last day (UTC)');
    const listed = (await datasets(page.getByTestId('retention-prune').locator('li'), 'snapshotId')).map(([id]) => id);
    expect(listed).toEqual(expected.prune.map((p: { id: string }) => p.id));
    expect(listed).not.toContain(snapId);
    expect(await warning.innerText()).toContain('1 automatic snapshot stays; manual snapshots are never deleted.');
    expect(await warning.innerText()).toContain('Automatic snapshots are off: nothing is deleted until they are turned on.');
    await screenshot(page, '25b-settings-retention-preview');

    // The same preview on a phone: the tiers, the policy and the list fit the screen.
    const phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      await phone.addInitScript({ content: `localStorage.setItem('kova.apiKey', ${JSON.stringify(kova.adminKey)});` });
      const p = await phone.newPage();
      p.on('pageerror', (err) => pageErrors.push(String(err)));
      await p.goto(`${kova.url}/deployments/${depId}/settings`);
      await p.getByLabel('Retention', { exact: true }).fill('1');
      await p.getByLabel('Daily', { exact: true }).fill('1');
      const phoneWarning = p.getByRole('status').filter({ hasText: `Saving will delete ${n} automatic snapshots` });
      await phoneWarning.waitFor();
      await waitUntil(
        async () => (await p.getByTestId('retention-description').innerText()) === expected.description,
        'the policy on a phone',
      );
      const phoneListed = (await datasets(p.getByTestId('retention-prune').locator('li'), 'snapshotId')).map(([id]) => id);
      expect(phoneListed).toEqual(listed);
      expect(await pageOverflow(p)).toBeLessThanOrEqual(0);
      for (const box of [await phoneWarning.boundingBox(), await p.getByLabel('Monthly', { exact: true }).boundingBox()])
        expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
      await screenshot(p, 'phone-07-settings-retention-preview');
    } finally {
      await phone.close();
    }
    // The preview deleted nothing.
    expect((await list()).filter((s) => s.automatic && s.status === 'ready').length).toBe(n + 1);

    // A bad tier is refused at its field; a good one saves and comes back.
    const weekly = page.getByLabel('Weekly', { exact: true });
    await weekly.fill('1001');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('alert').filter({ hasText: 'keepWeekly must be an integer from 0 to 1000' }).waitFor();
    expect(await weekly.getAttribute('aria-invalid')).toBe('true');
    expect(await description.innerText()).toBe('Fix the retention fields to see what the new settings keep.');
    await weekly.fill('');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Automatic snapshots are off.').waitFor();
    const after = (await api('GET', `/api/v1/deployments/${depId}/snapshot-settings`)).body.settings;
    expect(after).toMatchObject({ retention: 1, keepHourly: null, keepDaily: 1, keepWeekly: null, keepMonthly: null });
    expect(await description.innerText()).toBe(after.retentionDescription);
    expect(await page.getByRole('status').filter({ hasText: 'Saving will delete' }).count()).toBe(0);
  });

  it('signs out with a message when the key is revoked while signed in', async () => {
    const k = await kova.api('POST', '/api/v1/api-keys', { label: 'to be revoked' });
    expect(k.status).toBe(201);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').fill(k.body.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deployments' }).click();
    await page.locator(`tr[data-deployment-id="${depId}"]`).waitFor();

    expect((await kova.api('DELETE', `/api/v1/api-keys/${k.body.apiKey.prefix}`)).status).toBe(200);
    await page.getByRole('link', { name: 'shop-db', exact: true }).click();
    await page.getByRole('heading', { name: 'Sign in to Kova' }).waitFor();
    await page.getByText('Your API key was not accepted any more').waitFor();
    expect(await inPage(page, "localStorage.getItem('kova.apiKey')")).toBeNull();
    await screenshot(page, '26-signed-out');
    expect(pageErrors).toEqual([]);
  });
});
