/**
 * catalogue: how operator commands reach the control plane's database:
 * `--database URL`, else KOVA_DATABASE_URL (postgres://…, sqlite:PATH or a
 * file path). The store is loaded only by the commands that use it.
 */
import type { Catalogue } from '../control/catalogue.js';
import { InvalidInputError } from '../core/errors.js';

export const DATABASE_OPTION = [
  '--database <url>',
  "the control plane's database: postgres://… or sqlite:PATH [KOVA_DATABASE_URL]",
] as const;

/** databaseUrl is the flag, else the environment's KOVA_DATABASE_URL, else undefined. */
export function databaseUrl(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag ?? (env.KOVA_DATABASE_URL || undefined);
}

export async function withCatalogue<T>(url: string | undefined, fn: (c: Catalogue) => Promise<T>): Promise<T> {
  if (!url) throw new InvalidInputError('no database given: pass --database URL or set KOVA_DATABASE_URL');
  const { openCatalogue } = await import('../control/store/index.js');
  const catalogue = await openCatalogue(url);
  try {
    return await fn(catalogue);
  } finally {
    await catalogue.close();
  }
}
