/** Which addresses webhooks may not reach by default (server-side request forgery). */
import { describe, expect, it } from 'vitest';
import { isPrivateAddress } from './address.js';

describe('isPrivateAddress', () => {
  it('refuses loopback, private, link-local, shared, reserved and multicast addresses, also inside IPv6', () => {
    for (const ip of [
      '127.0.0.1',
      '127.255.0.9',
      '0.0.0.0',
      '10.0.0.1',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      'fd00::1',
      'fe80::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      'not an address',
    ])
      expect(isPrivateAddress(ip), ip).toBe(true);
  });

  it('allows public addresses', () => {
    for (const ip of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:93.184.216.34'])
      expect(isPrivateAddress(ip), ip).toBe(false);
  });
});
