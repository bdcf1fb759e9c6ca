/**
 * sdl/parse-sdl: from SDL text (YAML, the Akash/Kova "version 2.0" shape) to
 * a validated Manifest, or to the list of everything wrong with it.
 *
 * The SDL is untrusted input: it is size-capped before parsing, YAML aliases
 * are limited (no "billion laughs"), merge keys (`<<`) are not supported and
 * every field is checked by hand. Validation never stops at the first
 * problem: each one becomes an SdlIssue with the path of the offending field
 * (`services.web.image`, `profiles.compute.web.resources.storage[1].size`),
 * so a user can fix them all in one go.
 *
 * Shape (fields not listed are rejected, so typos are caught):
 *
 *   version: "2.0"
 *   services:
 *     <service>:                      # ^[a-z][a-z0-9-]{0,62}$, at most 16
 *       image: busybox:1.36
 *       command: [sh, -c]             # lists of strings, optional
 *       args: ["..."]
 *       env: [KEY=value]
 *       expose: [{port: 80, as: 8080, proto: tcp, to: [...]}]
 *       params:
 *         storage:
 *           <volume>: {mount: /data, readOnly: false}   # not /, /proc, /sys, /dev or below
 *         snapshot:                   # commands run inside the service
 *           pre: [sh, -c, sync]       # before the freeze
 *           post: [sh, -c, "echo done"]  # after the thaw
 *       dependencies, credentials     # accepted and ignored
 *   profiles:
 *     compute:
 *       <profile>:
 *         resources:
 *           cpu: {units: 0.5}          # limits of the services using it
 *           memory: {size: 512Mi}      # at least 6Mi
 *           storage:                  # one {size} mapping or a list
 *             - size: 1Gi             # no name: the ephemeral root storage
 *             - name: <volume>
 *               size: 10Gi
 *               attributes: {persistent: true, class: beta2}
 *     placement: {...}                # accepted and ignored
 *   deployment:
 *     <service>:
 *       <placement>: {profile: <profile>, count: 1}
 *   endpoints: {...}                  # accepted and ignored
 */
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { KovaError } from '../core/errors.js';
import { MiB, TiB, parseSize } from './sizes.js';
import type { Manifest, SdlIssue, ServiceManifest, ServiceResources, VolumeManifest } from './types.js';

/** Largest SDL accepted, in bytes of UTF-8. */
export const MAX_SDL_BYTES = 256 * 1024;
/** Most services one deployment may have. */
export const MAX_SERVICES = 16;
/** Largest size a storage entry may request. */
export const MAX_VOLUME_BYTES = 16 * TiB;
/** Smallest memory limit (Docker refuses less than 6 MiB). */
export const MIN_MEMORY_BYTES = 6 * MiB;
/** CPU limits: from one millicpu to what a single node can have. */
const MIN_CPUS = 0.001;
const MAX_CPUS = 1024;
/**
 * Container paths a volume may not be mounted on, nor below: the kernel's
 * interfaces (/proc, /sys) and device nodes (/dev, /dev/shm...). Mounting
 * over them would hide or replace what the runtime set up there.
 */
export const SYSTEM_PATHS: readonly string[] = ['/proc', '/sys', '/dev'];
/**
 * Budget for YAML alias expansion (the yaml package weighs each alias by the
 * aliases nested inside what it points to). Plenty for sharing an env list,
 * far too little for an exponential "billion laughs" document.
 */
const MAX_ALIAS_COUNT = 50;
/** Most issues reported for one SDL; the rest are counted. */
const MAX_ISSUES = 100;

/** Service and volume names: lowercase, DNS-label-like. */
const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
const NAME_RULE = 'must start with a lowercase letter and contain only lowercase letters, digits and "-" (at most 63 characters)';
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** An image reference: printable ASCII, no whitespace. */
const IMAGE_RE = /^[\x21-\x7e]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;

export type ParseSdlResult = { ok: true; manifest: Manifest } | { ok: false; issues: SdlIssue[] };

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

/** parseSdl validates SDL text; it never throws on bad input. */
export function parseSdl(text: string): ParseSdlResult {
  const issues = new Issues();
  const root = parseYaml(text, issues);
  const manifest = issues.count === 0 ? validateRoot(root, issues) : null;
  if (manifest === null || issues.count > 0) return { ok: false, issues: issues.list() };
  return { ok: true, manifest };
}

/** parseSdlOrThrow is parseSdl for callers that want an SdlError (HTTP 400). */
export function parseSdlOrThrow(text: string): Manifest {
  const result = parseSdl(text);
  if (!result.ok) throw new SdlError(result.issues);
  return result.manifest;
}

/** systemPathOf returns the system path (SYSTEM_PATHS) that `mount` is or lies below, if any. */
export function systemPathOf(mount: string): string | undefined {
  const normalized = path.posix.normalize(mount);
  return SYSTEM_PATHS.find((sys) => normalized === sys || normalized.startsWith(`${sys}/`));
}

// ---------------------------------------------------------------------------
// Issues and paths

class Issues {
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
function at(base: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base === '' ? key : `${base}.${key}`;
}

function item(base: string, index: number): string {
  return `${base}[${index}]`;
}

// ---------------------------------------------------------------------------
// YAML

function parseYaml(text: string, issues: Issues): unknown {
  if (typeof text !== 'string') {
    issues.add('', 'the SDL must be YAML text');
    return undefined;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SDL_BYTES) {
    issues.add('', `the SDL is ${bytes} bytes; at most ${MAX_SDL_BYTES} bytes (256 KiB) are accepted`);
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    merge: false,
    stringKeys: true,
    uniqueKeys: true,
    logLevel: 'error',
  });
  for (const err of doc.errors) {
    const { line, col } = lineCounter.linePos(err.pos[0]);
    const message = err.code === 'MULTIPLE_DOCS' ? 'the SDL must be a single YAML document (found another "---")' : err.message;
    issues.add('', `YAML syntax error at line ${line}, column ${col}: ${message}`);
  }
  if (doc.errors.length > 0) return undefined;
  // A %YAML 1.1 directive would bring back merge keys, yes/no booleans and
  // sexagesimal numbers: only YAML 1.2 (the default) is read.
  const version = doc.directives?.yaml.version ?? '1.2';
  if (version !== '1.2') {
    issues.add('', `only YAML 1.2 is supported (remove the %YAML ${version} directive)`);
    return undefined;
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // Too many aliases (resource exhaustion) or an alias used before its anchor.
    const reason = err instanceof Error ? err.message : String(err);
    issues.add(
      '',
      /excessive alias count/i.test(reason)
        ? 'YAML aliases expand too much: an SDL may reuse anchors only a few times'
        : `YAML aliases could not be expanded: ${reason}`,
    );
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Field helpers: each checks one value, records an issue when it is wrong and
// returns the value (or undefined) so callers can keep going.

type Mapping = Record<string, unknown>;

function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return 'an unsupported value';
}

function mapping(v: unknown, p: string, issues: Issues, what = 'a mapping'): Mapping | undefined {
  if (isMapping(v)) return v;
  issues.add(p, `must be ${what} (got ${describe(v)})`);
  return undefined;
}

/** Reports every key of `obj` not in `allowed` (nor in `ignored`). */
function checkKeys(obj: Mapping, p: string, issues: Issues, allowed: readonly string[], ignored: readonly string[] = []): void {
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

/** The allowed key a typo most likely meant: same letters ignoring case, or at most two edits away. */
function suggest(key: string, allowed: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const exact = allowed.find((a) => a.toLowerCase() === lower);
  if (exact !== undefined) return exact;
  return allowed.find((a) => Math.abs(a.length - key.length) <= 2 && editDistance(a.toLowerCase(), lower) <= 2);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function text(v: unknown, p: string, issues: Issues): string | undefined {
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
function stringList(v: unknown, p: string, issues: Issues, example: string): string[] | undefined {
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

function integer(v: unknown, p: string, issues: Issues, min: number, max: number): number | undefined {
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

function boolean(v: unknown, p: string, issues: Issues): boolean | undefined {
  if (typeof v === 'boolean') return v;
  issues.add(p, `must be true or false (got ${describe(v)})`);
  return undefined;
}

function size(v: unknown, p: string, issues: Issues): number | undefined {
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

function checkName(key: string, p: string, issues: Issues, what: string): boolean {
  if (NAME_RE.test(key)) return true;
  issues.add(p, `${what} name ${NAME_RULE}`);
  return false;
}

// ---------------------------------------------------------------------------
// The document

interface StorageParam {
  readonly name: string;
  readonly mount: string;
  readonly readOnly: boolean;
  readonly path: string;
}

interface ServiceDraft {
  readonly name: string;
  readonly image: string | undefined;
  readonly command: readonly string[];
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly expose: ReadonlyArray<{ readonly port: number; readonly as: number }>;
  readonly storage: readonly StorageParam[];
  readonly hooks: { readonly pre: readonly string[] | null; readonly post: readonly string[] | null };
}

interface StorageEntry {
  readonly name: string | null;
  readonly sizeBytes: number | undefined;
  readonly persistent: boolean;
}

/** A compute profile: its storage, and the cpu and memory limits of the services using it. */
interface Profile {
  readonly name: string;
  readonly storage: readonly StorageEntry[];
  readonly resources: ServiceResources;
}

function validateRoot(root: unknown, issues: Issues): Manifest | null {
  if (root === null || root === undefined) {
    issues.add('', 'the SDL is empty');
    return null;
  }
  const doc = mapping(root, '', issues, 'a mapping with version, services, profiles and deployment');
  if (!doc) return null;
  checkKeys(doc, '', issues, ['version', 'services', 'profiles', 'deployment'], ['endpoints']);

  if (doc.version === undefined) issues.add('version', 'required: must be "2.0"');
  else if (doc.version !== '2.0' && doc.version !== 2) issues.add('version', `must be "2.0" (got ${describe(doc.version)})`);

  const services = validateServices(doc.services, issues);
  const compute = validateProfiles(doc.profiles, issues);
  const profileOf = resolveProfiles(doc, services, compute, issues);

  const out: ServiceManifest[] = [];
  for (const svc of services) {
    const profile = profileOf.get(svc.name);
    const volumes = profile ? resolveVolumes(svc, profile, issues) : [];
    if (svc.image === undefined) continue;
    out.push({
      name: svc.name,
      image: svc.image,
      command: svc.command,
      args: svc.args,
      env: svc.env,
      expose: svc.expose,
      volumes,
      hooks: svc.hooks,
      resources: profile?.resources ?? { cpus: null, memoryBytes: null },
    });
  }
  return { services: out };
}

// --- services ---------------------------------------------------------------

function validateServices(v: unknown, issues: Issues): ServiceDraft[] {
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

function validateParams(
  v: unknown,
  p: string,
  issues: Issues,
): { storage: StorageParam[]; hooks: ServiceDraft['hooks'] } | undefined {
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

/** An absolute path inside the container, normalized ("/data/" → "/data"). */
function mountPath(v: unknown, p: string, issues: Issues): string | undefined {
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

// --- profiles ---------------------------------------------------------------

/** Returns the compute profiles by name, or undefined when profiles.compute is unusable. */
function validateProfiles(v: unknown, issues: Issues): Map<string, Profile | undefined> | undefined {
  if (v === undefined) {
    issues.add('profiles', 'required: profiles.compute must define the compute profile of each service');
    return undefined;
  }
  const profiles = mapping(v, 'profiles', issues, 'a mapping with compute and placement');
  if (!profiles) return undefined;
  checkKeys(profiles, 'profiles', issues, ['compute', 'placement']);
  if (profiles.placement !== undefined) mapping(profiles.placement, 'profiles.placement', issues);
  if (profiles.compute === undefined) {
    issues.add('profiles.compute', 'required: a mapping of profile name to {resources}');
    return undefined;
  }
  const compute = mapping(profiles.compute, 'profiles.compute', issues, 'a mapping of profile name to {resources}');
  if (!compute) return undefined;
  // A profile that is present but broken maps to undefined: its issues are
  // reported once here, not again by every service that uses it.
  const out = new Map<string, Profile | undefined>();
  for (const profileName of Object.keys(compute)) {
    out.set(profileName, validateProfile(profileName, compute[profileName], issues));
  }
  return out;
}

function validateProfile(profileName: string, v: unknown, issues: Issues): Profile | undefined {
  const p = at('profiles.compute', profileName);
  const profile = mapping(v, p, issues, 'a mapping with resources');
  if (!profile) return undefined;
  checkKeys(profile, p, issues, ['resources']);
  const rp = at(p, 'resources');
  if (profile.resources === undefined) {
    issues.add(rp, 'required: a mapping with cpu, memory and storage');
    return undefined;
  }
  const resources = mapping(profile.resources, rp, issues, 'a mapping with cpu, memory and storage');
  if (!resources) return undefined;
  checkKeys(resources, rp, issues, ['cpu', 'memory', 'storage'], ['gpu']);

  // cpu and memory become the limits of the services using this profile.
  let cpus: number | null = null;
  let memoryBytes: number | null = null;
  if (resources.cpu !== undefined) {
    const cpu = mapping(resources.cpu, at(rp, 'cpu'), issues, 'a mapping with units');
    if (cpu) cpus = cpuUnits(cpu.units, at(at(rp, 'cpu'), 'units'), issues) ?? null;
  }
  if (resources.memory !== undefined) {
    const memory = mapping(resources.memory, at(rp, 'memory'), issues, 'a mapping with size');
    if (memory) memoryBytes = memorySize(memory.size, at(at(rp, 'memory'), 'size'), issues) ?? null;
  }
  const storage = resources.storage === undefined ? [] : validateStorageEntries(resources.storage, at(rp, 'storage'), issues);
  return storage ? { name: profileName, storage, resources: { cpus, memoryBytes } } : undefined;
}

/** CPU units: a number of CPUs (0.5) or millicpus as a string ("500m"), at least MIN_CPUS. */
function cpuUnits(v: unknown, p: string, issues: Issues): number | undefined {
  if (v === undefined) {
    issues.add(p, 'required: e.g. 0.5 or 500m');
    return undefined;
  }
  let cpus = NaN;
  if (typeof v === 'number') cpus = v;
  else if (typeof v === 'string' && /^[0-9]+(\.[0-9]+)?m?$/.test(v)) cpus = v.endsWith('m') ? parseFloat(v) / 1000 : parseFloat(v);
  if (!(cpus > 0 && Number.isFinite(cpus))) {
    issues.add(p, `must be a positive number of CPUs, e.g. 0.5 or 500m (got ${describe(v)})`);
    return undefined;
  }
  if (cpus < MIN_CPUS || cpus > MAX_CPUS) {
    issues.add(p, `must be from ${MIN_CPUS * 1000}m to ${MAX_CPUS} CPUs (got ${describe(v)})`);
    return undefined;
  }
  return cpus;
}

/** A memory limit: a size of at least MIN_MEMORY_BYTES (the smallest limit Docker accepts). */
function memorySize(v: unknown, p: string, issues: Issues): number | undefined {
  if (v === undefined) {
    issues.add(p, 'required: e.g. 512Mi');
    return undefined;
  }
  const bytes = size(v, p, issues);
  if (bytes !== undefined && bytes < MIN_MEMORY_BYTES) {
    issues.add(p, `must be at least 6Mi: a service cannot run in less (got ${describe(v)})`);
    return undefined;
  }
  return bytes;
}

/** storage: one {size} mapping or a list of entries. Returns undefined when any entry is broken. */
function validateStorageEntries(v: unknown, p: string, issues: Issues): StorageEntry[] | undefined {
  if (isMapping(v)) {
    const entry = validateStorageEntry(v, p, issues);
    return entry ? [entry] : undefined;
  }
  if (!Array.isArray(v)) {
    issues.add(p, `must be a {size} mapping or a list of {name, size, attributes} entries (got ${describe(v)})`);
    return undefined;
  }
  const out: StorageEntry[] = [];
  const names = new Map<string | null, number>();
  let ok = true;
  v.forEach((el: unknown, i) => {
    const ip = item(p, i);
    const entry = validateStorageEntry(el, ip, issues);
    if (!entry) {
      ok = false;
      return;
    }
    const prev = names.get(entry.name);
    if (prev !== undefined) {
      ok = false;
      if (entry.name === null) issues.add(ip, `only one storage entry may have no name (the root storage), as ${item(p, prev)} does`);
      else issues.add(at(ip, 'name'), `duplicate storage name ${entry.name} (also at ${item(p, prev)})`);
      return;
    }
    names.set(entry.name, i);
    out.push(entry);
  });
  return ok ? out : undefined;
}

function validateStorageEntry(v: unknown, p: string, issues: Issues): StorageEntry | undefined {
  const entry = mapping(v, p, issues, 'a mapping with size');
  if (!entry) return undefined;
  checkKeys(entry, p, issues, ['name', 'size', 'attributes']);
  let ok = true;

  let entryName: string | null = null;
  if (entry.name !== undefined) {
    if (typeof entry.name !== 'string') {
      issues.add(at(p, 'name'), `must be a string (got ${describe(entry.name)})`);
      ok = false;
    } else if (!checkName(entry.name, at(p, 'name'), issues, 'volume')) ok = false;
    else entryName = entry.name;
  }

  let sizeBytes: number | undefined;
  if (entry.size === undefined) {
    issues.add(at(p, 'size'), 'required: e.g. 1Gi');
    ok = false;
  } else {
    sizeBytes = size(entry.size, at(p, 'size'), issues);
    if (sizeBytes === undefined) ok = false;
  }

  let persistent = false;
  if (entry.attributes !== undefined) {
    const ap = at(p, 'attributes');
    const attributes = mapping(entry.attributes, ap, issues, 'a mapping with persistent and class');
    if (!attributes) ok = false;
    else {
      checkKeys(attributes, ap, issues, ['persistent', 'class']);
      if (attributes.persistent !== undefined) {
        const b = boolean(attributes.persistent, at(ap, 'persistent'), issues);
        if (b === undefined) ok = false;
        else persistent = b;
      }
      if (attributes.class !== undefined && (typeof attributes.class !== 'string' || attributes.class === '')) {
        issues.add(at(ap, 'class'), `must be a non-empty string (got ${describe(attributes.class)})`);
        ok = false;
      }
    }
  }
  if (persistent && entry.name === undefined) {
    issues.add(at(p, 'name'), 'required for persistent storage: services mount it by name');
    ok = false;
  }
  return ok ? { name: entryName, sizeBytes, persistent } : undefined;
}

// --- deployment -------------------------------------------------------------

/**
 * Finds each service's compute profile and checks its placement count.
 *
 * With a `deployment` section, every service needs exactly one placement
 * entry naming an existing compute profile. Without one (a lenient shorthand
 * for single-node SDLs), each service uses the compute profile that has its
 * own name: `profiles.compute.<service>`.
 *
 * A service maps to undefined when its profile is missing or broken (already
 * reported), so its volumes are not checked against it.
 */
function resolveProfiles(
  doc: Mapping,
  services: readonly ServiceDraft[],
  compute: Map<string, Profile | undefined> | undefined,
  issues: Issues,
): Map<string, Profile | undefined> {
  const out = new Map<string, Profile | undefined>();
  if (doc.deployment === undefined) {
    for (const svc of services) {
      if (compute === undefined) continue;
      if (!compute.has(svc.name)) {
        issues.add(
          at('profiles.compute', svc.name),
          `required: without a deployment section, service ${svc.name} uses the compute profile named after it`,
        );
      }
      out.set(svc.name, compute.get(svc.name));
    }
    return out;
  }

  const deployment = mapping(doc.deployment, 'deployment', issues, 'a mapping of service name to placement');
  if (!deployment) return out;
  const known = new Map(services.map((s) => [s.name, s]));
  for (const svcName of Object.keys(deployment)) {
    const p = at('deployment', svcName);
    const svc = known.get(svcName);
    if (!svc) {
      // A service that is present but broken has its own issues already.
      const declared = isMapping(doc.services) && Object.hasOwn(doc.services, svcName);
      if (!declared) issues.add(p, `no service named ${svcName} in services`);
      continue;
    }
    const placements = mapping(deployment[svcName], p, issues, 'a mapping of placement name to {profile, count}');
    if (!placements) continue;
    const keys = Object.keys(placements);
    if (keys.length !== 1) {
      issues.add(
        p,
        keys.length === 0
          ? 'must name one placement with its profile and count'
          : `must have exactly one placement: Kova runs each service once, on this node (got ${keys.length}: ${keys.join(', ')})`,
      );
      continue;
    }
    const placementName = keys[0] ?? '';
    const pp = at(p, placementName);
    const placement = mapping(placements[placementName], pp, issues, 'a mapping with profile and count');
    if (!placement) continue;
    checkKeys(placement, pp, issues, ['profile', 'count']);

    if (placement.count !== undefined && placement.count !== 1) {
      const why = svc.storage.length > 0 ? "persistent volumes can't be shared between replicas" : 'Kova runs one instance of each service';
      issues.add(at(pp, 'count'), `must be 1: ${why} (got ${describe(placement.count)})`);
    }

    const profileName = placement.profile;
    if (profileName === undefined) issues.add(at(pp, 'profile'), 'required: the name of a profile in profiles.compute');
    else if (typeof profileName !== 'string' || profileName === '') {
      issues.add(at(pp, 'profile'), `must be the name of a profile in profiles.compute (got ${describe(profileName)})`);
    } else if (compute !== undefined) {
      if (!compute.has(profileName)) issues.add(at(pp, 'profile'), `no compute profile named ${profileName} in profiles.compute`);
      out.set(svcName, compute.get(profileName));
    }
  }
  for (const svc of services) {
    if (!Object.hasOwn(deployment, svc.name)) {
      issues.add(at('deployment', svc.name), `missing: service ${svc.name} needs an entry naming its compute profile`);
    }
  }
  return out;
}

/** The persistent volumes a service mounts, matched to its profile's storage entries. */
function resolveVolumes(svc: ServiceDraft, profile: Profile, issues: Issues): VolumeManifest[] {
  const out: VolumeManifest[] = [];
  for (const param of svc.storage) {
    const entry = profile.storage.find((e) => e.name === param.name);
    if (!entry) {
      issues.add(param.path, `no storage named ${param.name} in ${at('profiles.compute', profile.name)}.resources.storage`);
    } else if (!entry.persistent) {
      issues.add(
        param.path,
        `storage ${param.name} of ${at('profiles.compute', profile.name)} is not persistent: only persistent storage (attributes.persistent: true) can be mounted and snapshotted`,
      );
    } else if (entry.sizeBytes !== undefined) {
      out.push({ name: param.name, mount: param.mount, sizeBytes: entry.sizeBytes, readOnly: param.readOnly });
    }
  }
  return out;
}
