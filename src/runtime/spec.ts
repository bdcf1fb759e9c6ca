/**
 * spec: the checks every runtime makes on a DeploymentSpec before running
 * it. Deployment and service names end up in container names, labels and
 * file paths, so they are restricted to a safe alphabet; each runtime adds
 * the checks only it needs through `checkService`.
 */
import { systemPathOf } from '../sdl/mount-path.js';
import type { DeploymentSpec, ServiceSpec } from './types.js';
import { RuntimeError } from './types.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const NAME_RULE = 'may only contain letters, digits, "_", "." and "-"';

/** isValidName tells whether a deployment, service or volume name is safe to use in names and file paths. */
export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}

/** Throws the RuntimeError for a bad spec; never returns. */
export type Bad = (msg: string) => never;

/**
 * validateSpec throws a RuntimeError naming the deployment for the first
 * problem: a bad deployment or service name, a service listed twice, a bad
 * environment variable name, or whatever `checkService` (the runtime's own
 * rules, called for each service after the common ones) reports.
 */
export function validateSpec(spec: DeploymentSpec, checkService?: (svc: ServiceSpec, bad: Bad) => void): void {
  const bad: Bad = (msg) => {
    throw new RuntimeError(`invalid deployment ${spec.deploymentId}: ${msg}`);
  };
  if (!isValidName(spec.deploymentId)) bad(`the id ${NAME_RULE}`);
  const seen = new Set<string>();
  for (const svc of spec.services) {
    if (!isValidName(svc.name)) bad(`service name "${svc.name}" ${NAME_RULE}`);
    if (seen.has(svc.name)) bad(`service ${svc.name} appears twice`);
    seen.add(svc.name);
    for (const key of Object.keys(svc.env))
      if (key === '' || key.includes('=')) bad(`service ${svc.name}: bad environment variable name "${key}"`);
    checkService?.(svc, bad);
  }
}

/**
 * checkMounts refuses bind mounts a container must not have: paths that are
 * not absolute or contain ":" (the daemon's separator), and targets on the
 * container's root or its system paths (the SDL refuses those too; this
 * guards manifests stored before it did).
 */
export function checkMounts(svc: ServiceSpec, bad: Bad): void {
  for (const v of svc.volumes) {
    for (const p of [v.hostPath, v.mountPath]) {
      if (!p.startsWith('/') || p.includes(':')) bad(`volume ${v.name}: "${p}" must be an absolute path without ":"`);
    }
    if (systemPathOf(v.mountPath) !== undefined || v.mountPath.replace(/\/+$/, '') === '') {
      bad(`volume ${v.name}: ${v.mountPath} is a system path (/, /proc, /sys, /dev or below) and cannot be a mount`);
    }
  }
}
