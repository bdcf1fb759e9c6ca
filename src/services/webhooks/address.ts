/**
 * address: which webhook URLs the server may call. A hosting platform's
 * server sits inside its network, so by default a webhook may not point at
 * loopback, link-local, private, shared (CGNAT), multicast or reserved
 * addresses: a URL whose host is, or resolves to, any of them is refused
 * (server-side request forgery). The operator can allow them
 * (--webhooks-allow-private). The check runs when a webhook is created and
 * again before every attempt, since a name may resolve differently later.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ValidationError } from '../../core/errors.js';

/** resolves a host name to its addresses (injected by tests). */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address an IPv6 address embeds (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, compatible ::a.b.c.d), or null. */
function embeddedV4(ip: string): string | null {
  const m = /^(?:::ffff:|64:ff9b::|::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1]!;
  const hex = /^(::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (!hex) return null;
  const hi = parseInt(hex[2]!, 16);
  const lo = parseInt(hex[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** isPrivateAddress tells whether an IP address is one webhooks may not reach by default. */
export function isPrivateAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) return BLOCKED.check(ip, 'ipv4');
  if (v !== 6) return true;
  const v4 = embeddedV4(ip.toLowerCase());
  if (v4 !== null) return BLOCKED.check(v4, 'ipv4');
  return BLOCKED.check(ip, 'ipv6');
}

/** The host of a URL as an address or name (IPv6 literals without brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * checkPublicHost resolves the URL's host and throws WEBHOOK_URL_FORBIDDEN
 * when any of its addresses is not public, INVALID_WEBHOOK_URL when it
 * does not resolve.
 */
export async function checkPublicHost(url: URL, resolve: Resolver): Promise<void> {
  const host = hostOf(url);
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await resolve(host);
    } catch {
      throw new ValidationError('INVALID_WEBHOOK_URL', `the webhook's host ${host} does not resolve`);
    }
    if (addresses.length === 0) throw new ValidationError('INVALID_WEBHOOK_URL', `the webhook's host ${host} does not resolve`);
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad !== undefined) {
    throw new ValidationError(
      'WEBHOOK_URL_FORBIDDEN',
      `webhooks may not call ${bad === host ? host : `${host} (${bad})`}: it is a loopback, private, link-local or reserved address`,
    );
  }
}
