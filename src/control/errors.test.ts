/** errors: a node's failure becomes the all-in-one's error; the control plane's own errors say what happened. */
import { describe, expect, it } from 'vitest';
import { KovaError } from '../core/errors.js';
import { NodeUnavailableError, errorFromWire } from './errors.js';

describe('errorFromWire', () => {
  it('keeps code, status, message and details', () => {
    const e = errorFromWire({
      code: 'OPERATION_IN_PROGRESS',
      status: 409,
      message: 'another operation (snapshot) is in progress on deployment dep-1; try again when it has finished',
      details: { operation: 'snapshot' },
    });
    expect(e).toBeInstanceOf(KovaError);
    expect({ code: e.code, status: e.status, message: e.message, details: e.details }).toEqual({
      code: 'OPERATION_IN_PROGRESS',
      status: 409,
      message: 'another operation (snapshot) is in progress on deployment dep-1; try again when it has finished',
      details: { operation: 'snapshot' },
    });
  });

  it('gives an error without details empty details', () => {
    expect(errorFromWire({ code: 'SNAPSHOT_NOT_FOUND', status: 404, message: 'snapshot snap-1 not found' }).details).toEqual({});
  });

  it.each([
    ['a status below 400', { code: 'X', status: 200, message: 'm' }],
    ['a status above 599', { code: 'X', status: 600, message: 'm' }],
    ['a fractional status', { code: 'X', status: 404.5, message: 'm' }],
    ['a lower-case code', { code: 'not_found', status: 404, message: 'm' }],
    ['no message', { code: 'X', status: 404 }],
  ])('turns %s into 500 INTERNAL_ERROR', (_what, wire) => {
    const e = errorFromWire(wire as never);
    expect({ code: e.code, status: e.status }).toEqual({ code: 'INTERNAL_ERROR', status: 500 });
  });
});

describe('NodeUnavailableError.offline', () => {
  it('names the node and when it was last seen', () => {
    const e = NodeUnavailableError.offline({ id: 'node-1', name: 'edge-1', lastHeartbeatAt: Date.UTC(2026, 0, 1, 12) });
    expect({ code: e.code, status: e.status }).toEqual({ code: 'NODE_UNAVAILABLE', status: 503 });
    expect(e.message).toContain('edge-1');
    expect(e.message).toContain('2026-01-01T12:00:00.000Z');
  });

  it('says a node that never sent a heartbeat was never seen', () => {
    expect(NodeUnavailableError.offline({ id: 'node-1', name: 'edge-1', lastHeartbeatAt: null }).message).toContain('never been seen');
  });
});
