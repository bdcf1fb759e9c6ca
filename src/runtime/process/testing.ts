/**
 * Helpers of the process runtime's tests: waiting for a condition, watching
 * a file grow, finding processes left behind.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { RuntimeError } from '../types.js';

/** waitFor polls fn until it returns something truthy, and returns that. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** lines counts the lines of a file (0 when it does not exist). */
export function lines(file: string): number {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
}

/** grows waits until a file has at least three more lines. */
export async function grows(file: string): Promise<void> {
  const before = lines(file);
  await waitFor(`${file} to grow`, () => lines(file) >= before + 3);
}

/**
 * leaked lists the live processes whose KOVA_DEPLOYMENT starts with prefix
 * (zombies have no environment and do not count).
 */
export function leaked(prefix: string): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (`\0${fs.readFileSync(`/proc/${name}/environ`, 'latin1')}`.includes(`\0KOVA_DEPLOYMENT=${prefix}`)) found.push(Number(name));
    } catch {
      // gone or not ours
    }
  }
  return found;
}

export async function expectRuntimeError(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RuntimeError);
  expect((err as Error).message).toMatch(re);
}
