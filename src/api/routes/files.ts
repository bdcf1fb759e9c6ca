/**
 * routes/files: browsing a ready snapshot without restoring it: directory
 * listings, one file's bytes (with Range), a directory as tar, and the
 * changes between two snapshots or from a snapshot to the live volumes. The streaming routes have no JSON schema
 * for their 200 answer; their errors are the usual envelope.
 */
import type { Readable } from 'node:stream';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ValidationError } from '../../core/errors.js';
import { BROWSE_LIMITS, type ChangeView, RangeNotSatisfiableError, parsePath, parseRange } from '../../services/browse-service.js';
import type { AppDeps, BrowseReader } from '../deps.js';
import { FileChange, FileEntry, errorResponses as errors, ok } from '../contract.js';
import { SnapshotParams } from '../schemas.js';

const PathQuery = {
  path: Type.Optional(Type.String({ maxLength: 4096, description: 'service/volume/... ("" or absent: the snapshot root)' })),
  pathBase64: Type.Optional(
    Type.String({ maxLength: 8192, description: 'The path as base64 of its raw bytes, for names that are not UTF-8' }),
  ),
};
const PageQuery = {
  cursor: Type.Optional(Type.String({ maxLength: 8192 })),
  limit: Type.Optional(Type.String({ maxLength: 12, description: `1 to ${BROWSE_LIMITS.maxPage}; default ${BROWSE_LIMITS.defaultPage}` })),
};
const FilesQuery = Type.Object(
  { ...PathQuery, ...PageQuery, q: Type.Optional(Type.String({ maxLength: 255 })) },
  { additionalProperties: false },
);
const ContentQuery = Type.Object(PathQuery, { additionalProperties: false });
const ArchiveQuery = Type.Object(
  { ...PathQuery, format: Type.Optional(Type.Union([Type.Literal('tar'), Type.Literal('tar.zst')])) },
  { additionalProperties: false },
);
const DiffQuery = Type.Object(
  {
    against: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Another snapshot (the before side), or "live": the volumes as they are now (the after side)',
    }),
    change: Type.Optional(
      Type.String({
        maxLength: 64,
        pattern: '^(added|removed|modified|type)(,(added|removed|modified|type))*$',
        description: 'Only these kinds of change, comma-separated (default: all)',
      }),
    ),
    ...PageQuery,
  },
  { additionalProperties: false },
);

function pageLimit(limit: string | undefined): number | undefined {
  if (limit === undefined) return undefined;
  const n = /^[0-9]+$/.test(limit) ? Number(limit) : NaN;
  if (!(n >= 1 && n <= BROWSE_LIMITS.maxPage)) throw new ValidationError('INVALID_LIMIT', `limit must be 1 to ${BROWSE_LIMITS.maxPage}`);
  return n;
}

/** contentDisposition names a download, any name safely (RFC 6266 / 8187). */
function contentDisposition(name: string): string {
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename*=UTF-8''${encoded}`;
}

/**
 * streamFrom sends `stream` and closes the reader once the response is done
 * or aborted (whichever comes first; close is idempotent).
 */
function streamFrom(reply: FastifyReply, reader: BrowseReader, stream: Readable): FastifyReply {
  const close = (): void => void reader.close().catch((err: unknown) => reply.log.warn({ err }, 'closing the snapshot reader failed'));
  stream.once('close', close);
  reply.raw.once('close', () => {
    if (!stream.destroyed) stream.destroy();
    close();
  });
  return reply.send(stream);
}

export function fileRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get<{ Params: Static<typeof SnapshotParams>; Querystring: Static<typeof FilesQuery> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId/files',
    {
      schema: {
        tags: ['browse'],
        summary: "One page of a snapshot directory's entries, in name order (the root lists services, a service its volumes)",
        params: SnapshotParams,
        querystring: FilesQuery,
        response: { 200: ok({ entries: Type.Array(FileEntry), cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query;
      const limit = pageLimit(q.limit);
      const components = parsePath(q.path, q.pathBase64);
      const page = await deps.browse.read(req.user.id, req.params.id, req.params.snapshotId, (r) =>
        r.list(components, { cursor: q.cursor, limit, q: q.q }),
      );
      return { success: true, ...page };
    },
  );

  app.get<{ Params: Static<typeof SnapshotParams>; Querystring: Static<typeof ContentQuery> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId/files/content',
    {
      schema: {
        tags: ['browse'],
        summary: 'Download one file of a snapshot (Range supported)',
        params: SnapshotParams,
        querystring: ContentQuery,
        response: errors,
      },
    },
    async (req, reply) => {
      const components = parsePath(req.query.path, req.query.pathBase64);
      const reader = await deps.browse.open(req.user.id, req.params.id, req.params.snapshotId);
      try {
        const file = await reader.file(components);
        const size = file.node.size;
        let range;
        try {
          range = parseRange(req.headers.range, size);
        } catch (err) {
          if (err instanceof RangeNotSatisfiableError) reply.header('content-range', `bytes */${size}`);
          throw err;
        }
        reply
          .header('accept-ranges', 'bytes')
          .header('content-type', 'application/octet-stream')
          .header('content-disposition', contentDisposition(file.name));
        if (range) {
          reply
            .status(206)
            .header('content-range', `bytes ${range.start}-${range.end - 1}/${size}`)
            .header('content-length', range.end - range.start);
        } else {
          reply.header('content-length', size);
        }
        return streamFrom(reply, reader, file.stream(range));
      } catch (err) {
        await reader.close();
        throw err;
      }
    },
  );

  app.get<{ Params: Static<typeof SnapshotParams>; Querystring: Static<typeof ArchiveQuery> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId/archive',
    {
      schema: {
        tags: ['browse'],
        summary: 'Download a directory of a snapshot as tar or tar.zst',
        params: SnapshotParams,
        querystring: ArchiveQuery,
        response: errors,
      },
    },
    async (req, reply) => {
      const format = req.query.format ?? 'tar';
      const components = parsePath(req.query.path, req.query.pathBase64);
      const reader = await deps.browse.open(req.user.id, req.params.id, req.params.snapshotId);
      try {
        const { top, stream } = await reader.archive(components, format === 'tar.zst');
        reply
          .header('content-type', format === 'tar' ? 'application/x-tar' : 'application/zstd')
          .header('content-disposition', contentDisposition(`${req.params.snapshotId}-${components.length === 0 ? 'all' : top}.${format}`));
        return streamFrom(reply, reader, stream);
      } catch (err) {
        await reader.close();
        throw err;
      }
    },
  );

  app.get<{ Params: Static<typeof SnapshotParams>; Querystring: Static<typeof DiffQuery> }>(
    '/api/v1/deployments/:id/snapshots/:snapshotId/diff',
    {
      schema: {
        tags: ['browse'],
        summary:
          'What changed from the snapshot `against` (before) to this one (after), or from this one to the live volumes, in path order',
        params: SnapshotParams,
        querystring: DiffQuery,
        response: { 200: ok({ changes: Type.Array(FileChange), cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await deps.browse.diff(req.user.id, req.params.id, req.params.snapshotId, q.against, {
        cursor: q.cursor,
        limit: pageLimit(q.limit),
        kinds: q.change === undefined ? undefined : new Set(q.change.split(',') as ChangeView['change'][]),
      });
      return { success: true, ...page };
    },
  );
}
