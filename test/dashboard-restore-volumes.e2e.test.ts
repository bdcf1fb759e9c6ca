/**
 * The dashboard's restore dialog when the deployment's volumes changed since
 * the snapshot, on a real `kova serve` (process runtime) and Debian's
 * Chromium: after a service rename it says which volume goes where, and the
 * finished restore says so too; after a volume was removed it shows why the
 * snapshot can't be restored and Confirm stays disabled.
 *
 * Needs /usr/bin/chromium (scripts/test-setup.sh). With CI=true a missing
 * browser fails the suite; elsewhere it is skipped with a message.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumInstalled, launchChromium, screenshot } from './helpers/browser.js';
import { sdlFor } from './helpers/harness.js';
import { type KovaServer, ensureBuilt, startKova } from './helpers/kova-server.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();

describe.skipIf(!HAVE_BROWSER && !IN_CI)('dashboard: restore after the volumes changed', () => {
  let kova: KovaServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ensureBuilt();
    kova = await startKova({ minSnapshotInterval: '1s' });
    browser = await launchChromium();
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx.addInitScript({ content: `localStorage.setItem('kova.apiKey', ${JSON.stringify(kova.adminKey)});` });
    page = await ctx.newPage();
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await kova?.stop();
  });

  async function idle(depId: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const d = await kova.api('GET', `/api/v1/deployments/${depId}`);
      if (d.body.deployment.operation === null) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`deployment ${depId} stayed busy`);
  }

  /** deployWith creates a deployment from `sdl`, takes a snapshot labelled `label`, then updates it to `next`. */
  async function deployWith(sdl: string, next: string, label: string): Promise<string> {
    const d = await kova.api('POST', '/api/v1/deployments', { sdl });
    expect(d.status).toBe(201);
    const depId = d.body.deployment.id as string;
    await idle(depId);
    const s = await kova.api('POST', `/api/v1/deployments/${depId}/snapshots`, { label });
    expect(s.status).toBe(202);
    await idle(depId);
    const u = await kova.api('PUT', `/api/v1/deployments/${depId}`, { sdl: next });
    expect(u.status).toBe(202);
    await idle(depId);
    return depId;
  }

  it('after a service rename, says where the volume goes and restores it there', async () => {
    const sdl = sdlFor('exec sleep 100000');
    const depId = await deployWith(sdl, sdl.replace(/\n {2}app:\n/g, '\n  web:\n'), 'before-rename');
    await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
    await page.getByRole('button', { name: 'Restore before-rename' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore this snapshot?' });
    const mapping = dialog.getByRole('list', { name: 'Volume mapping' });
    await mapping.waitFor();
    expect(await mapping.innerText()).toContain('app.data is restored into web.data (same mount path)');
    await screenshot(page, 'restore-volumes-renamed');

    await dialog.getByRole('button', { name: 'Confirm restore' }).click();
    const panel = page.getByTestId('restore-panel');
    await panel.getByRole('heading', { name: /Restore (completed|failed)/ }).waitFor({ timeout: 60_000 });
    const text = await panel.innerText();
    expect(text).toContain('Restore completed');
    expect(text).toContain('Restored into renamed volumes: app.data → web.data');
    expect(fs.readdirSync(path.join(kova.dataDir, 'volumes', depId)).filter((n) => !n.startsWith('.'))).toEqual(['web']);
  });

  it('after a volume was removed, shows why the snapshot cannot be restored and keeps Confirm disabled', async () => {
    const depId = await deployWith(sdlFor('exec sleep 100000', { volumes: ['data', 'logs'] }), sdlFor('exec sleep 100000'), 'two-volumes');
    await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
    await page.getByRole('button', { name: 'Restore two-volumes' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore this snapshot?' });
    const alert = dialog.getByRole('alert');
    await alert.waitFor();
    const text = await alert.innerText();
    expect(text).toContain("can't be restored into the deployment as it is now");
    expect(text).toMatch(/holds volumes the deployment no longer has: app\.logs/);
    expect(await dialog.getByRole('button', { name: 'Confirm restore' }).isDisabled()).toBe(true);
    await screenshot(page, 'restore-volumes-refused');
    expect((await kova.api('GET', `/api/v1/deployments/${depId}/restores`)).body.restores).toEqual([]);
  });
});
