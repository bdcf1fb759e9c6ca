/** agent: the parts that need no control plane (the integration suite test/node-agent.test.ts drives the rest). */
import { describe, expect, it } from 'vitest';
import type { HelloReply } from '../network/protocol.js';
import { heartbeatInterval } from './agent.js';

const reply = (heartbeatIntervalMs: unknown): HelloReply =>
  ({ protocol: 1, nodeId: 'node-1', name: 'n', heartbeatIntervalMs, nodeTimeoutMs: 30_000 }) as HelloReply;

describe('heartbeatInterval', () => {
  it('takes the control plane’s interval, bounded, and a default when it gives none', () => {
    expect(heartbeatInterval(reply(5_000))).toBe(5_000);
    expect(heartbeatInterval(reply(0))).toBe(100);
    expect(heartbeatInterval(reply(-1))).toBe(100);
    expect(heartbeatInterval(reply(Number.MAX_SAFE_INTEGER))).toBe(600_000);
    expect(heartbeatInterval(reply(undefined))).toBe(10_000);
    expect(heartbeatInterval(reply('5000'))).toBe(10_000);
  });
});
