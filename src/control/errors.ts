/**
 * errors: what the control plane answers on its own, besides the errors its
 * nodes report (which it passes on unchanged, see dispatch.ts). The codes
 * are documented in docs/api.md.
 */
import { iso } from '../core/clock.js';
import { KovaError } from '../core/errors.js';
import type { WireError } from '../network/protocol.js';

/** The deployment's node is offline, or did not answer in time (HTTP 503). */
export class NodeUnavailableError extends KovaError {
  constructor(message: string, details: Readonly<Record<string, unknown>> = {}) {
    super('NODE_UNAVAILABLE', message, { status: 503, details });
  }

  /** offline: the node's last heartbeat is older than the node timeout; nothing was asked of it. */
  static offline(node: { id: string; name: string; lastHeartbeatAt: number | null }): NodeUnavailableError {
    const seen = node.lastHeartbeatAt === null ? 'has never been seen' : `was last seen at ${iso(node.lastHeartbeatAt)}`;
    return new NodeUnavailableError(`node ${node.name} is offline (it ${seen}); nothing was done, try again when it is back`, {
      nodeId: node.id,
      lastHeartbeatAt: node.lastHeartbeatAt,
    });
  }
}

/** No online node has room for a new deployment (HTTP 503). */
export class NoNodeAvailableError extends KovaError {
  constructor(message: string, details: Readonly<Record<string, unknown>> = {}) {
    super('NO_NODE_AVAILABLE', message, { status: 503, details });
  }
}

/** A route the control plane does not serve (browsing snapshots): HTTP 501. */
export class NotInNetworkModeError extends KovaError {
  constructor(what: string) {
    super('NOT_AVAILABLE_IN_NETWORK_MODE', `${what} is not available through the control plane yet`, { status: 501 });
  }
}

/** The caller is signed in but may not do this (HTTP 403). */
export class ForbiddenError extends KovaError {
  constructor(message: string) {
    super('FORBIDDEN', message, { status: 403 });
  }
}

const CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * errorFromWire turns a node's failure into the error the all-in-one would
 * have thrown: same code, status, message and details. A malformed one (a
 * status outside 400-599, a code that is not UPPER_SNAKE) is the node's bug:
 * 500 INTERNAL_ERROR, whose message the API does not show.
 */
export function errorFromWire(e: WireError): KovaError {
  const status = e?.status;
  const valid = Number.isInteger(status) && status >= 400 && status <= 599 && typeof e.code === 'string' && CODE_RE.test(e.code);
  if (!valid || typeof e.message !== 'string') {
    return new KovaError('INTERNAL_ERROR', `a node reported a malformed error: ${JSON.stringify(e)}`, { status: 500 });
  }
  const details = e.details !== null && typeof e.details === 'object' ? e.details : {};
  return new KovaError(e.code, e.message, { status, details });
}
