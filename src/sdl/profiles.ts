/**
 * sdl/profiles: the `profiles` section: each compute profile's storage
 * entries (sizes, which are persistent) and its cpu and memory, which
 * become the limits of the services using it.
 */
import type { ServiceResources } from './types.js';
import { at, item } from './issues.js';
import type { Issues } from './issues.js';
import { boolean, checkKeys, checkName, describe, isMapping, mapping, size } from './fields.js';
import { MiB } from './sizes.js';

/** Smallest memory limit (Docker refuses less than 6 MiB). */
export const MIN_MEMORY_BYTES = 6 * MiB;

/** CPU limits: from one millicpu to what a single node can have. */
const MIN_CPUS = 0.001;

const MAX_CPUS = 1024;

export interface StorageEntry {
  readonly name: string | null;
  readonly sizeBytes: number | undefined;
  readonly persistent: boolean;
}

/** A compute profile: its storage, and the cpu and memory limits of the services using it. */
export interface Profile {
  readonly name: string;
  readonly storage: readonly StorageEntry[];
  readonly resources: ServiceResources;
}

/** Returns the compute profiles by name, or undefined when profiles.compute is unusable. */
export function validateProfiles(v: unknown, issues: Issues): Map<string, Profile | undefined> | undefined {
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
