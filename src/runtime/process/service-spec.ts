/**
 * service-spec: how the process runtime reads a ServiceSpec: validation, the
 * command line it runs and the environment it gets.
 *
 * The program is command[0] (or args[0] when there is no command); the image
 * plays no part. Volumes are not mounted anywhere: each one's host directory
 * is passed as KOVA_VOLUME_<NAME> (upper-cased, '-' as '_'), and the first
 * one is the working directory.
 */
import { isValidName, validateSpec as validateSharedSpec } from '../spec.js';
import type { DeploymentSpec, ServiceSpec } from '../types.js';

/** validateSpec rejects what the process runtime cannot run (names end up in file paths). */
export function validateSpec(spec: DeploymentSpec): void {
  validateSharedSpec(spec, (svc, bad) => {
    if (svc.command.length === 0 && svc.args.length === 0) {
      bad(`service ${svc.name} has no command: the process runtime needs a command (or args) to run, it ignores the image`);
    }
    if (commandLine(svc)[0] === '') bad(`service ${svc.name}: the program name is empty`);
    const strings = [...commandLine(svc), ...Object.entries(svc.env).flat(), ...svc.volumes.map((v) => v.hostPath)];
    if (strings.some((x) => x.includes('\0'))) bad(`service ${svc.name}: NUL character in its command, environment or volume paths`);
    const vars = new Set<string>();
    for (const v of svc.volumes) {
      if (!isValidName(v.name)) bad(`service ${svc.name}: volume name "${v.name}" may only contain letters, digits, "_", "." and "-"`);
      if (vars.has(volumeEnvName(v.name))) bad(`service ${svc.name}: volumes clash on ${volumeEnvName(v.name)}`);
      vars.add(volumeEnvName(v.name));
      if (!v.hostPath.startsWith('/')) bad(`volume ${v.name}: "${v.hostPath}" must be an absolute path`);
    }
  });
}

/** commandLine is [program, ...arguments]: command then args, as an entrypoint and its arguments. */
export function commandLine(svc: ServiceSpec): string[] {
  return [...svc.command, ...svc.args];
}

export function volumeEnvName(volume: string): string {
  return `KOVA_VOLUME_${volume.toUpperCase().replaceAll('-', '_')}`;
}

/** serviceEnv is the whole environment of a service (nothing else is inherited from the server). */
export function serviceEnv(deploymentId: string, svc: ServiceSpec): Record<string, string> {
  const env: Record<string, string> = {};
  if (process.env.PATH !== undefined) env.PATH = process.env.PATH;
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME;
  Object.assign(env, svc.env);
  for (const v of svc.volumes) env[volumeEnvName(v.name)] = v.hostPath;
  env.KOVA_DEPLOYMENT = deploymentId;
  env.KOVA_SERVICE = svc.name;
  return env;
}
