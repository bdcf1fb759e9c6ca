/**
 * relay-routes: where a node uploads its answer to a relayed read
 * (relay.ts): `POST /node/v1/reads/:id/response`, the body streamed as
 * `application/octet-stream`, the status and meta the user sees in the
 * READ_HEADERS. Registered inside the node routes, so the node's token is
 * checked first and a node can only answer reads addressed to it.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import { ValidationError } from '../core/errors.js';
import { READ_HEADERS } from '../network/protocol.js';
import type { ReadRelay } from './relay.js';

const ReadParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** parseHead reads the status and meta headers of an upload (400 INVALID_READ_ANSWER when malformed). */
export function parseHead(headers: Record<string, string | string[] | undefined>): {
  status: number;
  meta: Record<string, unknown> | null;
} {
  const rawStatus = headers[READ_HEADERS.status];
  const status = typeof rawStatus === 'string' && /^[1-5][0-9]{2}$/.test(rawStatus) ? Number(rawStatus) : NaN;
  if (!(status >= 200 && status <= 599)) {
    throw new ValidationError('INVALID_READ_ANSWER', `${READ_HEADERS.status} must be an HTTP status from 200 to 599`);
  }
  const rawMeta = headers[READ_HEADERS.meta];
  if (rawMeta === undefined) return { status, meta: null };
  try {
    const meta = JSON.parse(Buffer.from(String(rawMeta), 'base64url').toString('utf8')) as unknown;
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new Error('not an object');
    return { status, meta: meta as Record<string, unknown> };
  } catch {
    throw new ValidationError('INVALID_READ_ANSWER', `${READ_HEADERS.meta} must be base64url of a JSON object`);
  }
}

export function relayRoutes(node: FastifyInstance, relay: ReadRelay): void {
  // The body is passed on as it arrives, never parsed nor held whole.
  node.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  node.post<{ Params: Static<typeof ReadParams> }>('/node/v1/reads/:id/response', { schema: { params: ReadParams } }, async (req) => {
    const { status, meta } = parseHead(req.headers);
    await relay.receive(req.node.id, req.params.id, status, meta, req.body as Readable);
    return { success: true };
  });
}
