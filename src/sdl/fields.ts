/**
 * sdl/fields: reading one field of the parsed YAML. Each helper checks one
 * value, records an issue when it is wrong and returns the value (or
 * undefined) so callers can keep going and report every problem.
 */
import type { Issues } from './issues.js';
import { at, item } from './issues.js';
import { TiB, parseSize } from './sizes.js';
import { suggest } from './suggest.js';

/** Largest size a storage entry may request. */
export const MAX_VOLUME_BYTES = 16 * TiB;

/** Service and volume names: lowercase, DNS-label-like. */
const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

const NAME_RULE = 'must start with a lowercase letter and contain only lowercase letters, digits and "-" (at most 63 characters)';

export type Mapping = Record<string, unknown>;

export function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return 'an unsupported value';
}

export function mapping(v: unknown, p: string, issues: Issues, what = 'a mapping'): Mapping | undefined {
  if (isMapping(v)) return v;
  issues.add(p, `must be ${what} (got ${describe(v)})`);
  return undefined;
}

/** Reports every key of `obj` not in `allowed` (nor in `ignored`). */
export function checkKeys(obj: Mapping, p: string, issues: Issues, allowed: readonly string[], ignored: readonly string[] = []): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key) || ignored.includes(key)) continue;
    if (key === '<<') {
      issues.add(at(p, key), 'YAML merge keys (<<) are not supported');
      continue;
    }
    const hint = suggest(key, allowed);
    issues.add(at(p, key), `unknown field${hint ? ` (did you mean "${hint}"?)` : ''}; expected one of: ${allowed.join(', ')}`);
  }
}

export function text(v: unknown, p: string, issues: Issues): string | undefined {
  if (typeof v !== 'string') {
    issues.add(p, `must be a string (got ${describe(v)})`);
    return undefined;
  }
  if (v.includes('\0')) {
    issues.add(p, 'must not contain NUL characters');
    return undefined;
  }
  return v;
}

/** A list of strings; `example` shows the expected form when a single string is given. */
export function stringList(v: unknown, p: string, issues: Issues, example: string): string[] | undefined {
  if (!Array.isArray(v)) {
    const hint = typeof v === 'string' ? `, e.g. ${example}` : '';
    issues.add(p, `must be a list of strings (got ${describe(v)})${hint}`);
    return undefined;
  }
  const out: string[] = [];
  let ok = true;
  v.forEach((el: unknown, i) => {
    const s = text(el, item(p, i), issues);
    if (s === undefined) ok = false;
    else out.push(s);
  });
  return ok ? out : undefined;
}

export function integer(v: unknown, p: string, issues: Issues, min: number, max: number): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    issues.add(p, `must be an integer from ${min} to ${max} (got ${describe(v)})`);
    return undefined;
  }
  if (v < min || v > max) {
    issues.add(p, `must be from ${min} to ${max} (got ${v})`);
    return undefined;
  }
  return v;
}

export function boolean(v: unknown, p: string, issues: Issues): boolean | undefined {
  if (typeof v === 'boolean') return v;
  issues.add(p, `must be true or false (got ${describe(v)})`);
  return undefined;
}

export function size(v: unknown, p: string, issues: Issues): number | undefined {
  const bytes = parseSize(v);
  if (bytes === null) {
    issues.add(p, `must be a size such as 512Mi, 1Gi, 100M or a number of bytes (got ${describe(v)})`);
    return undefined;
  }
  if (bytes <= 0) {
    issues.add(p, 'must be greater than zero');
    return undefined;
  }
  if (bytes > MAX_VOLUME_BYTES) {
    issues.add(p, 'must be at most 16Ti');
    return undefined;
  }
  return bytes;
}

export function checkName(key: string, p: string, issues: Issues, what: string): boolean {
  if (NAME_RE.test(key)) return true;
  issues.add(p, `${what} name ${NAME_RULE}`);
  return false;
}
