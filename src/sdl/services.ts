/**
 * sdl/services: the `services` section: each service's image, command,
 * environment, exposed ports, volume mounts (params.storage) and snapshot
 * hooks (params.snapshot), as drafts that profile resolution completes.
 */
import { at, item } from './issues.js';
import type { Issues } from './issues.js';
import { checkKeys, checkName, boolean, describe, integer, mapping, stringList, text } from './fields.js';
import { mountPath } from './mount-path.js';

/** Most services one deployment may have. */
export const MAX_SERVICES = 16;

const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An image reference: printable ASCII, no whitespace. */
const IMAGE_RE = /^[\x21-\x7e]+$/;

export interface StorageParam {
  readonly name: string;
  readonly mount: string;
  readonly readOnly: boolean;
  readonly path: string;
}

export interface ServiceDraft {
  readonly name: string;
  readonly image: string | undefined;
  readonly command: readonly string[];
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly expose: ReadonlyArray<{ readonly port: number; readonly as: number }>;
  readonly storage: readonly StorageParam[];
  readonly hooks: { readonly pre: readonly string[] | null; readonly post: readonly string[] | null };
}

export function validateServices(v: unknown, issues: Issues): ServiceDraft[] {
  if (v === undefined) {
    issues.add('services', 'required: a mapping of service name to service');
    return [];
  }
  const services = mapping(v, 'services', issues, 'a mapping of service name to service');
  if (!services) return [];
  const names = Object.keys(services);
  if (names.length === 0) issues.add('services', 'must define at least one service');
  if (names.length > MAX_SERVICES) issues.add('services', `at most ${MAX_SERVICES} services are allowed (got ${names.length})`);
  const out: ServiceDraft[] = [];
  for (const svcName of names) {
    const p = at('services', svcName);
    const nameOk = checkName(svcName, p, issues, 'service');
    const draft = validateService(svcName, services[svcName], p, issues);
    if (draft && nameOk) out.push(draft);
  }
  return out;
}

function validateService(svcName: string, v: unknown, p: string, issues: Issues): ServiceDraft | undefined {
  const svc = mapping(v, p, issues, 'a mapping with at least an image');
  if (!svc) return undefined;
  checkKeys(svc, p, issues, ['image', 'command', 'args', 'env', 'expose', 'params'], ['dependencies', 'credentials']);

  let image: string | undefined;
  if (svc.image === undefined) issues.add(at(p, 'image'), 'required: the container image to run (e.g. busybox:1.36)');
  else if (typeof svc.image !== 'string' || !IMAGE_RE.test(svc.image)) {
    issues.add(at(p, 'image'), `must be a non-empty image reference without whitespace (got ${describe(svc.image)})`);
  } else image = svc.image;

  const command = svc.command === undefined ? [] : stringList(svc.command, at(p, 'command'), issues, '[sh, -c]');
  const args = svc.args === undefined ? [] : stringList(svc.args, at(p, 'args'), issues, '["echo hello"]');
  const env = svc.env === undefined ? {} : validateEnv(svc.env, at(p, 'env'), issues);
  const expose = svc.expose === undefined ? [] : validateExpose(svc.expose, at(p, 'expose'), issues);
  const params =
    svc.params === undefined ? { storage: [], hooks: { pre: null, post: null } } : validateParams(svc.params, at(p, 'params'), issues);

  return {
    name: svcName,
    image,
    command: command ?? [],
    args: args ?? [],
    env: env ?? {},
    expose: expose ?? [],
    storage: params?.storage ?? [],
    hooks: params?.hooks ?? { pre: null, post: null },
  };
}

function validateEnv(v: unknown, p: string, issues: Issues): Record<string, string> | undefined {
  if (!Array.isArray(v)) {
    issues.add(p, `must be a list of KEY=value strings (got ${describe(v)})`);
    return undefined;
  }
  const env = new Map<string, string>();
  const seen = new Map<string, number>();
  v.forEach((el: unknown, i) => {
    const ip = item(p, i);
    const s = text(el, ip, issues);
    if (s === undefined) return;
    const eq = s.indexOf('=');
    const key = eq < 0 ? s : s.slice(0, eq);
    if (eq < 0) issues.add(ip, `must be KEY=value (got ${describe(s)})`);
    else if (!ENV_KEY_RE.test(key)) {
      issues.add(ip, `variable name ${JSON.stringify(key)} must start with a letter or "_" and contain only letters, digits and "_"`);
    } else if (seen.has(key)) issues.add(ip, `duplicate variable ${key} (already set at ${item(p, seen.get(key) ?? 0)})`);
    else {
      seen.set(key, i);
      env.set(key, s.slice(eq + 1));
    }
  });
  // fromEntries defines own properties, so even a variable named __proto__ stays data.
  return Object.fromEntries(env);
}

function validateExpose(v: unknown, p: string, issues: Issues): Array<{ port: number; as: number }> | undefined {
  if (!Array.isArray(v)) {
    issues.add(p, `must be a list of {port, as, proto, to} entries (got ${describe(v)})`);
    return undefined;
  }
  const out: Array<{ port: number; as: number }> = [];
  v.forEach((el: unknown, i) => {
    const ip = item(p, i);
    // Other Akash fields (accept, http_options, ...) are accepted and ignored: containers here have no network.
    const entry = mapping(el, ip, issues, 'a mapping with a port');
    if (!entry) return;
    let port: number | undefined;
    if (entry.port === undefined) issues.add(at(ip, 'port'), 'required: the container port, 1 to 65535');
    else port = integer(entry.port, at(ip, 'port'), issues, 1, 65535);
    const as = entry.as === undefined ? port : integer(entry.as, at(ip, 'as'), issues, 1, 65535);
    if (entry.proto !== undefined && !(typeof entry.proto === 'string' && ['tcp', 'udp'].includes(entry.proto.toLowerCase()))) {
      issues.add(at(ip, 'proto'), `must be tcp or udp (got ${describe(entry.proto)})`);
    }
    if (entry.to !== undefined && !Array.isArray(entry.to)) issues.add(at(ip, 'to'), `must be a list (got ${describe(entry.to)})`);
    if (port !== undefined && as !== undefined) out.push({ port, as });
  });
  return out;
}

function validateParams(v: unknown, p: string, issues: Issues): { storage: StorageParam[]; hooks: ServiceDraft['hooks'] } | undefined {
  const params = mapping(v, p, issues, 'a mapping with storage and snapshot');
  if (!params) return undefined;
  checkKeys(params, p, issues, ['storage', 'snapshot']);
  const storage = params.storage === undefined ? [] : validateStorageParams(params.storage, at(p, 'storage'), issues);
  let hooks: ServiceDraft['hooks'] = { pre: null, post: null };
  if (params.snapshot !== undefined) {
    const sp = at(p, 'snapshot');
    const snapshot = mapping(params.snapshot, sp, issues, 'a mapping with pre and post');
    if (snapshot) {
      checkKeys(snapshot, sp, issues, ['pre', 'post']);
      hooks = { pre: hook(snapshot.pre, at(sp, 'pre'), issues), post: hook(snapshot.post, at(sp, 'post'), issues) };
    }
  }
  return { storage, hooks };
}

/** A hook is one command line (program and arguments) run inside the service. */
function hook(v: unknown, p: string, issues: Issues): string[] | null {
  if (v === undefined || v === null) return null;
  const cmd = stringList(v, p, issues, '[sh, -c, "sync"]');
  if (!cmd) return null;
  if (cmd.length === 0) issues.add(p, 'must not be empty: give the command to run, e.g. [sh, -c, "sync"]');
  else if (cmd[0] === '') issues.add(item(p, 0), 'must not be empty: it is the program to run');
  return cmd;
}

function validateStorageParams(v: unknown, p: string, issues: Issues): StorageParam[] {
  const storage = mapping(v, p, issues, 'a mapping of volume name to {mount}');
  if (!storage) return [];
  const out: StorageParam[] = [];
  const mounts = new Map<string, string>();
  for (const volName of Object.keys(storage)) {
    const vp = at(p, volName);
    const nameOk = checkName(volName, vp, issues, 'volume');
    const vol = mapping(storage[volName], vp, issues, 'a mapping with mount (an absolute path)');
    if (!vol) continue;
    checkKeys(vol, vp, issues, ['mount', 'readOnly']);
    if (vol.readOnly !== undefined) boolean(vol.readOnly, at(vp, 'readOnly'), issues);
    let mount: string | undefined;
    if (vol.mount === undefined) issues.add(at(vp, 'mount'), 'required: where the service sees the volume, e.g. /data');
    else mount = mountPath(vol.mount, at(vp, 'mount'), issues);
    if (mount === undefined) continue;
    const other = mounts.get(mount);
    if (other !== undefined) {
      issues.add(at(vp, 'mount'), `${mount} is already the mount of volume ${other}`);
      continue;
    }
    mounts.set(mount, volName);
    if (nameOk) out.push({ name: volName, mount, readOnly: vol.readOnly === true, path: vp });
  }
  return out;
}
