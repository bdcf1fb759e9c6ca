/**
 * sdl/parse-sdl: from SDL text (YAML, the Akash/Kova "version 2.0" shape) to
 * a validated Manifest, or to the list of everything wrong with it. The
 * steps live beside it: load-yaml.ts (text to data), fields.ts (reading one
 * field), services.ts and profiles.ts (the sections), resolve.ts (profiles
 * and volumes of each service), issues.ts (collecting problems).
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
import { Issues, SdlError } from './issues.js';
import { describe, checkKeys, mapping } from './fields.js';
import { parseYaml } from './load-yaml.js';
import { validateProfiles } from './profiles.js';
import { resolveProfiles, resolveVolumes } from './resolve.js';
import { validateServices } from './services.js';
import type { Manifest, SdlIssue, ServiceManifest } from './types.js';

export { SdlError } from './issues.js';
export { MAX_SDL_BYTES } from './load-yaml.js';
export { MAX_VOLUME_BYTES } from './fields.js';
export { MAX_SERVICES } from './services.js';
export { MIN_MEMORY_BYTES } from './profiles.js';
export { SYSTEM_PATHS, systemPathOf } from './mount-path.js';

export type ParseSdlResult = { ok: true; manifest: Manifest } | { ok: false; issues: SdlIssue[] };

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
