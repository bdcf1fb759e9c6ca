/**
 * browser: Debian's Chromium driven by playwright-core (no downloaded
 * browser), and full-page screenshots into test-results/screenshots/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Locator, type Page, chromium } from 'playwright-core';
import { ROOT } from './kova-server.js';

export const CHROMIUM = process.env.KOVA_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(ROOT, 'test-results', 'screenshots');

export const chromiumInstalled = (): boolean => fs.existsSync(CHROMIUM);

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * screenshot saves a PNG named `name`: the full page, scrolled to the top (a
 * sticky header would otherwise show mid-page), or, while a modal dialog is
 * open (the page behind cannot scroll), the screen as the user sees it.
 * Animations are settled and the caret hidden; toasts are left out unless
 * `toasts` is set.
 */
export async function screenshot(page: Page, name: string, opts: { toasts?: boolean } = {}): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  const modal = (await page.locator('[role="dialog"][aria-modal="true"]').count()) > 0;
  if (!modal) await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({
    path: file,
    fullPage: !modal,
    animations: 'disabled',
    caret: 'hide',
    style: opts.toasts ? undefined : '.toaster { display: none !important; }',
  });
  return file;
}

// Code run in the page is passed as source text: the tests are type-checked
// with Node's libraries, which have no DOM.

/** pageOverflow tells how far the page is wider than the viewport (0: no horizontal overflow). */
export async function pageOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth');
}

/** inPage evaluates an expression in the page. */
export async function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate<T>(expression);
}

/** The little of the DOM the element helpers below use. */
interface PageGlobals {
  document: { activeElement: unknown };
}
interface WithDataset {
  dataset: Record<string, string | undefined>;
}

/** isFocused tells whether the element has the keyboard focus. */
export async function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((el: unknown) => el === (globalThis as unknown as PageGlobals).document.activeElement);
}

/** datasets returns, for each element, the named data-* attributes. */
export async function datasets(locator: Locator, ...keys: string[]): Promise<string[][]> {
  return locator.evaluateAll(
    (els: unknown[], names: string[]) => els.map((el) => names.map((k) => (el as WithDataset).dataset[k] ?? '')),
    keys,
  );
}
