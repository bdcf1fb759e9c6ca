/**
 * sdl/issues: collecting an SDL's problems. Validation never stops at the
 * first one: each becomes an SdlIssue with the path of the offending field
 * (`services.web.image`, `profiles.compute.web.resources.storage[1].size`),
 * so a user can fix them all in one go. SdlError carries them to callers
 * that want an exception (INVALID_SDL, HTTP 400).
 */
import { KovaError } from '../core/errors.js';
import type { SdlIssue } from './types.js';

/** Most issues reported for one SDL; the rest are counted. */
const MAX_ISSUES = 100;

/** The SDL is malformed: `details.issues` lists every problem found. */
export class SdlError extends KovaError {
  readonly issues: readonly SdlIssue[];

  constructor(issues: readonly SdlIssue[]) {
    super('INVALID_SDL', sdlErrorMessage(issues), { status: 400, details: { issues } });
    this.name = 'SdlError';
    this.issues = issues;
  }
}

function sdlErrorMessage(issues: readonly SdlIssue[]): string {
  const first = issues[0];
  if (first === undefined) return 'invalid SDL';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return `invalid SDL: ${first.path === '' ? '' : `${first.path}: `}${first.message}${more}`;
}

export class Issues {
  private readonly items: SdlIssue[] = [];
  private dropped = 0;

  get count(): number {
    return this.items.length + this.dropped;
  }

  add(path: string, message: string): void {
    if (this.items.length < MAX_ISSUES) this.items.push({ path, message });
    else this.dropped++;
  }

  list(): SdlIssue[] {
    if (this.dropped === 0) return [...this.items];
    return [...this.items, { path: '', message: `${this.dropped} more issues not shown` }];
  }
}

/** at('services', 'web') → "services.web"; keys that are not plain words are quoted: services["a.b"]. */
export function at(base: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base === '' ? key : `${base}.${key}`;
}

export function item(base: string, index: number): string {
  return `${base}[${index}]`;
}
