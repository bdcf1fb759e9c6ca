/**
 * The dashboard's restore of selected files and folders, on a real
 * `kova serve` (process runtime) and Debian's Chromium: in the restore
 * dialog, choose "Selected files and folders", open the volume in the
 * picker, check a folder; the confirmation lists exactly what is replaced
 * (and what the folder loses); alongside, where it goes. Screenshots at
 * desktop (1280) and phone (390) widths.
 *
 * Needs /usr/bin/chromium (scripts/test-setup.sh). With CI=true a missing
 * browser fails the suite; elsewhere it is skipped with a message.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumInstalled, launchChromium, pageOverflow, screenshot } from './helpers/browser.js';
import { sdlFor } from './helpers/harness.js';
import { type KovaServer, ensureBuilt, startKova } from './helpers/kova-server.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();

describe.skipIf(!HAVE_BROWSER && !IN_CI)('dashboard: restore selected files and folders', () => {
  let kova: KovaServer;
  let browser: Browser;
  let depId: string;
  /** The test's own polling uses a key of its own: the server limits requests per key, and the page needs the admin key's. */
  let pollKey: string;

  async function idle(): Promise<void> {
    for (let i = 0; i < 300; i++) {
      const d = await kova.api('GET', `/api/v1/deployments/${depId}`, undefined, pollKey);
      if (d.status === 200 && d.body.deployment.operation === null) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`deployment ${depId} stayed busy`);
  }

  const restoreCount = async (): Promise<number> =>
    (await kova.api('GET', `/api/v1/deployments/${depId}/restores`, undefined, pollKey)).body.restores.length;

  /** finished waits for the restore after the first `before` to end (the panel may still show an earlier one's outcome). */
  async function finished(before: number): Promise<{ status: string; paths: string[] | null; mode: string | null } | undefined> {
    let latest;
    for (let i = 0; i < 150; i++) {
      // Polled gently: the server rate-limits a key, and the page polls too.
      await new Promise((r) => setTimeout(r, 400));
      const r = await kova.api('GET', `/api/v1/deployments/${depId}/restores`, undefined, pollKey);
      if (r.status !== 200) continue;
      latest = r.body.restores.length > before ? r.body.restores[0] : undefined;
      if (latest && (latest.status === 'completed' || latest.status === 'failed')) return latest;
    }
    return latest;
  }

  const live = (rel: string) => path.join(kova.dataDir, 'volumes', depId, 'app', 'data', rel);

  beforeAll(async () => {
    ensureBuilt();
    kova = await startKova({ minSnapshotInterval: '1s' });
    const made = await kova.api('POST', '/api/v1/api-keys', { label: 'test polling' });
    expect(made.status).toBe(201);
    pollKey = made.body.token as string;
    browser = await launchChromium();
    const d = await kova.api('POST', '/api/v1/deployments', { sdl: sdlFor('exec sleep 100000') });
    expect(d.status).toBe(201);
    depId = d.body.deployment.id as string;
    await idle();
    fs.mkdirSync(live('db'), { recursive: true });
    fs.writeFileSync(live('db/main.db'), 'A');
    fs.writeFileSync(live('notes.txt'), 'A notes');
    expect((await kova.api('POST', `/api/v1/deployments/${depId}/snapshots`, { label: 'before-change' })).status).toBe(202);
    await idle();
    fs.writeFileSync(live('db/main.db'), 'B');
    fs.writeFileSync(live('db/added.db'), 'B only');
    fs.writeFileSync(live('notes.txt'), 'B notes');
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await kova?.stop();
  });

  async function openDialog(width: number): Promise<{ page: Page; dialog: ReturnType<Page['getByRole']> }> {
    const ctx = await browser.newContext({ viewport: { width, height: 900 } });
    await ctx.addInitScript({ content: `localStorage.setItem('kova.apiKey', ${JSON.stringify(kova.adminKey)});` });
    const page = await ctx.newPage();
    await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
    await page.getByRole('button', { name: 'Restore before-change' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore this snapshot?' });
    await dialog.getByLabel('Selected files and folders').check();
    await dialog.getByRole('button', { name: 'Open app' }).click();
    await dialog.getByRole('button', { name: 'Open data' }).click();
    await dialog.getByLabel('db/').check();
    return { page, dialog };
  }

  for (const width of [1280, 390]) {
    it(`at ${width}px: lists exactly what is replaced, then restores only that folder`, async () => {
      const { page, dialog } = await openDialog(width);
      const list = dialog.getByRole('list', { name: 'What is replaced' });
      await list.waitFor();
      const text = await list.innerText();
      expect(text).toContain("app/data/db is replaced: the folder becomes exactly the snapshot's");
      expect(text).toContain('removed, not in the snapshot: app/data/db/added.db');
      expect(text).toContain('Everything else is left as it is.');
      expect(await pageOverflow(page)).toBeLessThanOrEqual(0);
      await screenshot(page, `restore-paths-replace-${width}`);

      await dialog.getByLabel('Restore next to the live data into folder…').check();
      await dialog.getByLabel('Folder to restore into, inside the volume').fill(`copy-${width}`);
      const along = dialog.getByRole('list', { name: 'What is restored' });
      await along.waitFor();
      expect(await along.innerText()).toContain(`app/data/db → app/data/copy-${width}/db`);
      await screenshot(page, `restore-paths-alongside-${width}`);
      const before = await restoreCount();
      // Nothing refused the plan (if something did, its message is the failure).
      expect(await dialog.getByRole('alert').allInnerTexts()).toEqual([]);
      await dialog.getByRole('button', { name: 'Confirm restore' }).click();
      expect(await finished(before)).toMatchObject({ status: 'completed', mode: 'alongside' });
      const panel = page.getByTestId('restore-panel');
      await panel.getByRole('heading', { name: /Restore (completed|failed)/ }).waitFor({ timeout: 60_000 });
      expect(await panel.innerText()).toContain('Restore completed');
      expect(fs.readFileSync(live(`copy-${width}/db/main.db`), 'utf8')).toBe('A');
      expect(fs.readFileSync(live('db/main.db'), 'utf8')).toBe('B');
      await idle();
      await page.context().close();
    });
  }

  it('replace in place puts back the folder and leaves the rest', async () => {
    const before = await restoreCount();
    const { page, dialog } = await openDialog(1280);
    await dialog.getByRole('list', { name: 'What is replaced' }).waitFor();
    await dialog.getByRole('button', { name: 'Confirm restore' }).click();
    expect(await finished(before)).toMatchObject({ status: 'completed', paths: ['app/data/db'], mode: 'replace' });
    const panel = page.getByTestId('restore-panel');
    await panel.getByRole('heading', { name: /Restore (completed|failed)/ }).waitFor({ timeout: 60_000 });
    expect(fs.readFileSync(live('db/main.db'), 'utf8')).toBe('A');
    expect(fs.existsSync(live('db/added.db'))).toBe(false);
    expect(fs.readFileSync(live('notes.txt'), 'utf8')).toBe('B notes');
    await page.context().close();
  });
});
