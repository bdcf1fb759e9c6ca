/**
 * The dashboard's snapshot file browser and comparison, on a real `kova
 * serve` (process runtime) and Debian's Chromium: browse from the snapshot
 * root into a volume and a folder, page through a large folder, filter by
 * name, download a file (also one whose name is not UTF-8) and a folder and
 * check their bytes, compare two snapshots (with a filter by kind) and a
 * snapshot with the live volumes; the desktop (1280 px) and phone (390 px)
 * layouts are saved to test-results/screenshots/ and the phone one must not
 * scroll sideways.
 *
 * Needs /usr/bin/chromium (scripts/test-setup.sh). With CI=true a missing
 * browser fails the suite; elsewhere it is skipped with a message.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumInstalled, datasets, launchChromium, pageOverflow, screenshot } from './helpers/browser.js';
import { sdlFor } from './helpers/harness.js';
import { type KovaServer, ensureBuilt, startKova } from './helpers/kova-server.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const HAVE_BROWSER = chromiumInstalled();

/** A name that is not UTF-8: "caf", 0xe9, ".txt". */
const LATIN1 = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('.txt')]);
const REPORT = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) % 256));
const MANY = Array.from({ length: 130 }, (_, i) => `item-${String(i).padStart(3, '0')}.txt`);

describe.skipIf(!HAVE_BROWSER && !IN_CI)('dashboard: snapshot files and comparison', () => {
  let kova: KovaServer;
  let browser: Browser;
  let desktop: BrowserContext;
  let page: Page;
  let depId = '';
  let vol = '';
  let snapA = '';
  let snapB = '';
  const pageErrors: string[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-e2e-browse-'));

  async function idle(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const d = await kova.api('GET', `/api/v1/deployments/${depId}`);
      if (d.body.deployment.operation === null) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`deployment ${depId} stayed busy`);
  }

  async function snapshot(label: string): Promise<string> {
    const s = await kova.api('POST', `/api/v1/deployments/${depId}/snapshots`, { label });
    expect(s.status).toBe(202);
    await idle();
    const got = await kova.api('GET', `/api/v1/deployments/${depId}/snapshots/${s.body.snapshot.id}`);
    expect(got.body.snapshot.status).toBe('ready');
    return s.body.snapshot.id as string;
  }

  beforeAll(async () => {
    ensureBuilt();
    kova = await startKova({ minSnapshotInterval: '1s', extraArgs: ['--rate-limit', '1000'] });
    const d = await kova.api('POST', '/api/v1/deployments', { sdl: sdlFor('exec sleep 100000'), name: 'files-app' });
    expect(d.status).toBe(201);
    depId = d.body.deployment.id;
    await idle();
    vol = kova.volumeDir(depId, 'app', 'data');
    fs.mkdirSync(path.join(vol, 'many'), { recursive: true });
    for (const n of MANY) fs.writeFileSync(path.join(vol, 'many', n), n);
    fs.writeFileSync(path.join(vol, 'report.csv'), REPORT);
    fs.writeFileSync(path.join(vol, 'notes.md'), '# notes\n');
    fs.writeFileSync(path.join(vol, 'obsolete.log'), 'old log\n');
    fs.chmodSync(path.join(vol, 'notes.md'), 0o640);
    fs.symlinkSync('report.csv', path.join(vol, 'latest'));
    fs.writeFileSync(Buffer.concat([Buffer.from(`${vol}/`), LATIN1]), 'latin-1 name\n');
    snapA = await snapshot('first');
    fs.appendFileSync(path.join(vol, 'notes.md'), 'more\n');
    fs.writeFileSync(path.join(vol, 'added.txt'), 'added between the snapshots\n');
    fs.rmSync(path.join(vol, 'obsolete.log'));
    snapB = await snapshot('second');
    fs.writeFileSync(path.join(vol, 'live-only.txt'), 'written after the last snapshot\n');

    browser = await launchChromium();
    desktop = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    await desktop.addInitScript({ content: `localStorage.setItem('kova.apiKey', ${JSON.stringify(kova.adminKey)});` });
    page = await desktop.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
  }, 180_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await kova?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const rows = (p: Page) => p.locator('table.file-table tbody tr');
  const names = async (p: Page) => (await datasets(rows(p), 'entry')).map((r) => r[0]);

  async function downloadBytes(p: Page, click: () => Promise<void>): Promise<{ name: string; bytes: Buffer }> {
    const [dl] = await Promise.all([p.waitForEvent('download'), click()]);
    const file = path.join(tmp, `dl-${Date.now()}`);
    await dl.saveAs(file);
    return { name: dl.suggestedFilename(), bytes: fs.readFileSync(file) };
  }

  it('opens a snapshot from its row and browses from the root into a volume', async () => {
    await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
    await page.getByRole('link', { name: 'Browse the files of first' }).click();
    await page.waitForURL(new RegExp(`/snapshots/${snapA}$`));
    await page.locator('tr[data-entry="app"]').waitFor();
    expect(await names(page)).toEqual(['app']);
    await page.getByRole('button', { name: 'Open service app' }).click();
    await page.getByRole('button', { name: 'Open volume data' }).click();
    await page.locator('tr[data-entry="report.csv"]').waitFor();
    const crumbs = page.getByRole('navigation', { name: 'Folder path' });
    expect(await crumbs.getByRole('listitem').allInnerTexts()).toEqual(['Snapshot root', 'app', 'data']);
    expect(await names(page)).toEqual(['caf\ufffd.txt', 'latest', 'many', 'notes.md', 'obsolete.log', 'report.csv']);

    const notes = page.locator('tr[data-entry="notes.md"]');
    expect(await notes.locator('.mode').innerText()).toBe('-rw-r-----');
    expect(await notes.innerText()).toContain('0:0');
    expect(await page.locator('tr[data-entry="report.csv"]').innerText()).toContain('70.0 KB');
    expect(await page.locator('tr[data-entry="latest"] .link-target').innerText()).toContain('report.csv');
    expect(await page.locator('tr[data-type="symlink"] .mode').innerText()).toMatch(/^l/);
    expect(await page.locator('tr[data-entry="caf\ufffd.txt"] .name-raw').innerText()).toBe('not UTF-8');
    await screenshot(page, 'browse-01-volume-desktop');
  });

  it('pages through a large folder and filters it by name on the server', async () => {
    await page.getByRole('button', { name: 'Open folder many' }).click();
    await page.locator('tr[data-entry="item-000.txt"]').waitFor();
    expect(await rows(page).count()).toBe(100);
    expect(await page.getByRole('status').filter({ hasText: 'more in this folder' }).count()).toBe(1);
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.locator('tr[data-entry="item-129.txt"]').waitFor();
    expect(await names(page)).toEqual(MANY);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    await screenshot(page, 'browse-02-paged-desktop');

    await page.getByRole('searchbox', { name: 'Filter this folder by name' }).fill('ITEM-12');
    await page.waitForFunction(`document.querySelectorAll('table.file-table tbody tr').length === 10`);
    expect(await names(page)).toEqual(MANY.filter((n) => n.startsWith('item-12')));
    await page.getByRole('searchbox', { name: 'Filter this folder by name' }).fill('nothing-like-this');
    await page.getByRole('heading', { name: 'No names match' }).waitFor();
    await screenshot(page, 'browse-03-no-match-desktop');
    await page.getByRole('navigation', { name: 'Folder path' }).getByRole('button', { name: 'data' }).click();
    await page.locator('tr[data-entry="report.csv"]').waitFor();
  });

  it('downloads files (the name that is not UTF-8 too) and a folder with their exact bytes, the key kept out of URLs', async () => {
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    const report = await downloadBytes(page, () => page.getByRole('button', { name: 'Download report.csv' }).click());
    expect(report.name).toBe('report.csv');
    expect(report.bytes.equals(REPORT)).toBe(true);

    const latin = await downloadBytes(page, () => page.locator('tr[data-entry="caf\ufffd.txt"]').getByRole('button').click());
    expect(latin.bytes.toString()).toBe('latin-1 name\n');

    const folder = await downloadBytes(page, () => page.getByRole('button', { name: 'Download many as .tar.zst' }).click());
    expect(folder.name).toBe(`${snapA}-many.tar.zst`);
    const archive = path.join(tmp, 'many.tar.zst');
    fs.writeFileSync(archive, folder.bytes);
    const listed = execFileSync('tar', ['--zstd', '-tf', archive], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(listed).toEqual(['many/', ...MANY.map((n) => `many/${n}`)]);
    expect(urls.some((u) => u.includes(kova.adminKey) || /token|key=/i.test(new URL(u).search))).toBe(false);
    expect(urls.some((u) => u.includes('/files/content?pathBase64='))).toBe(true);
  });

  it('compares two snapshots, older to newer, with a filter by kind', async () => {
    await page.goto(`${kova.url}/deployments/${depId}/snapshots`);
    await page.getByRole('link', { name: 'Compare first with…' }).click();
    await page.getByRole('heading', { name: 'Compare' }).waitFor();
    await page.getByLabel('Compare with').selectOption(snapB);
    await page.waitForURL(new RegExp(`/snapshots/${snapA}/compare\\?against=${snapB}$`));
    await page.getByTestId('diff-sides').filter({ hasText: 'Changes from first to second' }).waitFor();
    await page.locator('tr[data-path="app/data/added.txt"]').waitFor();
    const changes = async () => datasets(page.locator('table.diff-table tbody tr'), 'path', 'change');
    expect(await changes()).toEqual([
      ['app/data/added.txt', 'added'],
      ['app/data/notes.md', 'modified'],
      ['app/data/obsolete.log', 'removed'],
    ]);
    expect(await page.locator('tr[data-path="app/data/notes.md"]').innerText()).toMatch(/8 B[\s\S]*13 B/);
    expect(await page.getByTestId('diff-totals').innerText()).toContain('3 changes');
    await screenshot(page, 'browse-04-compare-snapshots-desktop');

    await page.getByRole('button', { name: /^Removed/ }).click();
    await page.waitForFunction(`document.querySelectorAll('table.diff-table tbody tr').length === 1`);
    expect(await changes()).toEqual([['app/data/obsolete.log', 'removed']]);
    expect(await page.getByRole('button', { name: /^Removed/ }).getAttribute('aria-pressed')).toBe('true');
  });

  it('compares a snapshot with the live volumes', async () => {
    await page.getByLabel('Compare with').selectOption('live');
    await page.getByRole('button', { name: 'Show all' }).click();
    await page.getByTestId('diff-sides').filter({ hasText: 'Changes from first to the live volumes' }).waitFor();
    await page.locator('tr[data-path="app/data/live-only.txt"]').waitFor();
    expect(await datasets(page.locator('table.diff-table tbody tr'), 'path', 'change')).toEqual([
      ['app/data/added.txt', 'added'],
      ['app/data/live-only.txt', 'added'],
      ['app/data/notes.md', 'modified'],
      ['app/data/obsolete.log', 'removed'],
    ]);
    await screenshot(page, 'browse-05-compare-live-desktop');
    expect(pageErrors).toEqual([]);
  });

  it('fits a phone screen (390 px) without sideways scrolling', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.addInitScript({ content: `localStorage.setItem('kova.apiKey', ${JSON.stringify(kova.adminKey)});` });
    const p = await phone.newPage();
    try {
      await p.goto(`${kova.url}/deployments/${depId}/snapshots/${snapB}`);
      await p.getByRole('button', { name: 'Open service app' }).click();
      await p.getByRole('button', { name: 'Open volume data' }).click();
      await p.locator('tr[data-entry="report.csv"]').waitFor();
      expect(await pageOverflow(p)).toBe(0);
      await screenshot(p, 'browse-06-volume-phone');
      await p.getByRole('button', { name: 'Open folder many' }).click();
      await p.locator('tr[data-entry="item-000.txt"]').waitFor();
      expect(await pageOverflow(p)).toBe(0);
      await screenshot(p, 'browse-07-paged-phone');

      await p.goto(`${kova.url}/deployments/${depId}/snapshots/${snapA}/compare?against=live`);
      await p.locator('tr[data-path="app/data/live-only.txt"]').waitFor();
      expect(await pageOverflow(p)).toBe(0);
      await screenshot(p, 'browse-08-compare-live-phone');
    } finally {
      await phone.close();
    }
  });
});
