/**
 * sdl/mount-path: where a volume may appear inside a service: an absolute,
 * normalized path, never the container's root nor a system path. The
 * runtimes check mounts with systemPathOf too, for manifests stored before
 * the SDL refused them.
 */
import path from 'node:path';
import { describe, text } from './fields.js';
import type { Issues } from './issues.js';

/**
 * Container paths a volume may not be mounted on, nor below: the kernel's
 * interfaces (/proc, /sys) and device nodes (/dev, /dev/shm...). Mounting
 * over them would hide or replace what the runtime set up there.
 */
export const SYSTEM_PATHS: readonly string[] = ['/proc', '/sys', '/dev'];

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;

/** systemPathOf returns the system path (SYSTEM_PATHS) that `mount` is or lies below, if any. */
export function systemPathOf(mount: string): string | undefined {
  const normalized = path.posix.normalize(mount);
  return SYSTEM_PATHS.find((sys) => normalized === sys || normalized.startsWith(`${sys}/`));
}

/** An absolute path inside the container, normalized ("/data/" → "/data"). */
export function mountPath(v: unknown, p: string, issues: Issues): string | undefined {
  const s = text(v, p, issues);
  if (s === undefined) return undefined;
  if (!s.startsWith('/')) issues.add(p, `must be an absolute path (got ${describe(s)})`);
  else if (s.split('/').includes('..')) issues.add(p, 'must not contain ".." segments');
  else if (s.includes(':')) issues.add(p, 'must not contain ":"');
  else if (CONTROL_RE.test(s)) issues.add(p, 'must not contain control characters');
  else {
    const normalized = path.posix.normalize(s).replace(/\/+$/, '');
    const system = systemPathOf(normalized);
    if (normalized === '') issues.add(p, 'must not be / (the root of the container)');
    else if (system !== undefined) {
      issues.add(p, `must not be ${normalized}: ${system} and the paths below it are system paths the container needs (/proc, /sys, /dev)`);
    } else return normalized;
  }
  return undefined;
}
