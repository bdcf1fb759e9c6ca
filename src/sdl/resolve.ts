/**
 * sdl/resolve: tying the sections together: which compute profile each
 * service uses (the `deployment` section, or the profile named after the
 * service) and which of that profile's storage entries each mounted volume
 * is.
 */
import type { VolumeManifest } from './types.js';
import { at } from './issues.js';
import type { Issues } from './issues.js';
import { type Mapping, checkKeys, describe, isMapping, mapping } from './fields.js';
import type { Profile } from './profiles.js';
import type { ServiceDraft } from './services.js';

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
export function resolveProfiles(
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
export function resolveVolumes(svc: ServiceDraft, profile: Profile, issues: Issues): VolumeManifest[] {
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
