/**
 * errors: every error becomes the API's error body
 * {"success": false, "error": {"code", "message"}} with the right status.
 * Anything that is not a deliberate KovaError is logged with its request id
 * and answered as a bare 500: no stack, no host path, no internals. SQLite
 * unable to write (SQLITE_FULL, SQLITE_IOERR) is 503 STORAGE_UNAVAILABLE;
 * 501, 503 and 507 KovaErrors carry their message (space figures, node
 * names, no paths).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { KovaError, StorageUnavailableError, isDatabaseUnavailable } from '../core/errors.js';
import { tierMessage } from '../scheduler/retention.js';

export function errorBody(code: string, message: string): { success: false; error: { code: string; message: string } } {
  return { success: false, error: { code, message } };
}

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/**
 * Body fields whose schema failures have their own documented code (see
 * docs/api.md) rather than INVALID_REQUEST, keyed by the field's JSON pointer.
 */
const FIELD_CODES: Readonly<Record<string, { readonly code: string; readonly message: string }>> = {
  '/retention': { code: 'INVALID_RETENTION', message: 'retention must be an integer from 1 to 100' },
  '/keepHourly': { code: 'INVALID_RETENTION', message: tierMessage('keepHourly') },
  '/keepDaily': { code: 'INVALID_RETENTION', message: tierMessage('keepDaily') },
  '/keepWeekly': { code: 'INVALID_RETENTION', message: tierMessage('keepWeekly') },
  '/keepMonthly': { code: 'INVALID_RETENTION', message: tierMessage('keepMonthly') },
};

function describeValidation(context: string, issues: readonly ValidationIssue[]): string {
  const first = issues[0];
  if (!first) return 'invalid request';
  const where = `${context}${(first.instancePath ?? '').replace(/\//g, '.')}`;
  if (first.keyword === 'additionalProperties') return `${where}: unknown field "${String(first.params?.additionalProperty)}"`;
  if (first.keyword === 'required') return `${where}: missing field "${String(first.params?.missingProperty)}"`;
  return `${where} ${first.message ?? 'is invalid'}`;
}

/** Server-side statuses whose message is meant for the caller (no host path, no internals). */
const TOLD_STATUSES = new Set([501, 503, 507]);

export function handleError(err: FastifyError | KovaError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  // The state database cannot write (disk full, I/O error): nothing changed, retry later.
  if (isDatabaseUnavailable(err)) err = new StorageUnavailableError(err);
  if (err instanceof KovaError) {
    if (err.status < 500 || TOLD_STATUSES.has(err.status)) {
      if (err.status >= 500) req.log.error({ err }, 'request failed');
      return reply.status(err.status).send(errorBody(err.code, err.message));
    }
    // Server-side failures may describe host paths or internals: log them, don't send them.
    req.log.error({ err }, 'request failed');
    return reply.status(err.status).send(errorBody(err.code, `internal error (request ${req.id})`));
  }
  const fe = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (fe.validation) {
    const field = fe.validationContext === 'body' ? FIELD_CODES[fe.validation[0]?.instancePath ?? ''] : undefined;
    if (field) return reply.status(400).send(errorBody(field.code, field.message));
    return reply.status(400).send(errorBody('INVALID_REQUEST', describeValidation(fe.validationContext ?? 'body', fe.validation)));
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return reply.status(413).send(errorBody('PAYLOAD_TOO_LARGE', 'request body is larger than 1 MiB'));
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return reply.status(415).send(errorBody('UNSUPPORTED_MEDIA_TYPE', 'send JSON with Content-Type: application/json'));
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return reply.status(400).send(errorBody('INVALID_JSON', 'request body is not valid JSON'));
    default:
      break;
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return reply.status(fe.statusCode).send(errorBody('INVALID_REQUEST', fe.message));
  }
  req.log.error({ err }, 'internal error');
  return reply.status(500).send(errorBody('INTERNAL_ERROR', `internal error (request ${req.id})`));
}
