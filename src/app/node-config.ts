/**
 * node-config: the settings of `kova node`. The runtime, data directory and
 * job settings are those of `kova serve` (config.ts, same flags, same
 * environment variables, same defaults); what the node adds is where the
 * control plane is and how the node proves who it is. Each comes from a
 * flag, else an environment variable, else its default.
 */
import path from 'node:path';
import { ValidationError } from '../core/errors.js';
import { NODE_TOKEN_PREFIX } from '../network/protocol.js';
import { type ConfigInput, type ServerConfig, loadConfig } from './config.js';

export interface NodeConfig {
  /** Runtime, data directory, jobs, logging: as `kova serve` (host, port and rate limits are unused). */
  readonly server: ServerConfig;
  /** Control-plane replica URLs (http or https), tried in this order. */
  readonly controlPlanes: readonly string[];
  /** The node's token (`kova_node_…`). */
  readonly token: string;
  /** PEM file of a certificate to trust for https URLs (a self-signed control plane); null: the system's. */
  readonly caFile: string | null;
}

export interface NodeConfigInput extends ConfigInput {
  readonly controlPlane?: string;
  readonly token?: string;
  readonly ca?: string;
}

export const NODE_ENV = { controlPlane: 'KOVA_CONTROL_PLANE', token: 'KOVA_NODE_TOKEN', ca: 'KOVA_CONTROL_PLANE_CA' } as const;

export function loadNodeConfig(flags: NodeConfigInput = {}, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const get = (k: keyof typeof NODE_ENV): string | undefined => {
    const f = flags[k];
    if (f !== undefined && f !== '') return f;
    const e = env[NODE_ENV[k]];
    return e !== undefined && e !== '' ? e : undefined;
  };
  const list = get('controlPlane');
  if (!list)
    throw new ValidationError('INVALID_CONFIG', `--control-plane (or ${NODE_ENV.controlPlane}) is required: the control plane's URL(s)`);
  const controlPlanes = list
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '')
    .map((u) => {
      let url: URL;
      try {
        url = new URL(u);
      } catch {
        throw new ValidationError('INVALID_CONFIG', `control-plane URL "${u}" is not a URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new ValidationError('INVALID_CONFIG', `control-plane URL "${u}" must start with http:// or https://`);
      return url.origin;
    });
  if (controlPlanes.length === 0) throw new ValidationError('INVALID_CONFIG', 'no control-plane URL given');
  const token = get('token');
  if (!token) throw new ValidationError('INVALID_CONFIG', `--token (or ${NODE_ENV.token}) is required: the node's token`);
  if (!token.startsWith(NODE_TOKEN_PREFIX) || /\s/.test(token))
    throw new ValidationError('INVALID_CONFIG', `the node token must start with ${NODE_TOKEN_PREFIX} and hold no spaces`);
  const ca = get('ca');
  return { server: loadConfig(flags, env), controlPlanes, token, caFile: ca ? path.resolve(ca) : null };
}
