/**
 * relay-browse: the browse routes' interface (BrowseApi, src/api/deps.ts)
 * in network mode. Every call is answered by the deployment's node through
 * the relay (relay.ts), on the node's own BrowseService, so the routes
 * build the same headers and bodies, and throw the same errors, as the
 * all-in-one's.
 *
 * Before anything is asked of a node, `locate` checks what the catalogue
 * knows: the caller's deployment (404 otherwise, another user's included),
 * the snapshot (404, 409 not ready) and its node online (503
 * NODE_UNAVAILABLE at once). A file download asks twice: its size and
 * name first (the route needs them for its headers and the Range), then
 * its bytes; a snapshot never changes between the two.
 */
import { PassThrough, type Readable, pipeline } from 'node:stream';
import type { BrowseApi, BrowseReader } from '../api/deps.js';
import type { ReadPayload } from '../network/protocol.js';
import type { ChangeView, FileEntryView } from '../services/browse-service.js';
import type { CatalogueNode } from './catalogue.js';
import type { ReadRelay } from './relay.js';

/** Where a snapshot's reads go: the node of the caller's deployment, checked as the header says. */
export type Locate = (userId: string, depId: string, snapId: string) => Promise<CatalogueNode>;

const encodePath = (components: readonly Buffer[]): string[] => components.map((c) => c.toString('base64'));

export function relayBrowse(relay: ReadRelay, locate: Locate): BrowseApi {
  const open = async (userId: string, depId: string, snapId: string): Promise<BrowseReader> =>
    new RemoteReader(relay, await locate(userId, depId, snapId), userId, depId, snapId);
  return {
    open,
    async read(userId, depId, snapId, fn) {
      const r = await open(userId, depId, snapId);
      try {
        return await fn(r);
      } finally {
        await r.close();
      }
    },
    async diff(userId, depId, snapId, against, opts) {
      const node = await locate(userId, depId, snapId);
      return relay.json<{ changes: ChangeView[]; cursor: string | null }>(node, userId, depId, snapId, {
        kind: 'diff',
        against,
        ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
        ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        ...(opts.kinds !== undefined ? { kinds: [...opts.kinds] } : {}),
      });
    },
  };
}

/** A snapshot "held open" for one request: nothing is held; each call is one read on the node. */
class RemoteReader implements BrowseReader {
  /** Bodies being sent, ended by close(). */
  private readonly streams = new Set<Readable>();

  constructor(
    private readonly relay: ReadRelay,
    private readonly node: CatalogueNode,
    private readonly userId: string,
    private readonly depId: string,
    private readonly snapId: string,
  ) {}

  private json<T>(payload: ReadPayload): Promise<T> {
    return this.relay.json<T>(this.node, this.userId, this.depId, this.snapId, payload);
  }

  list(
    components: readonly Buffer[],
    opts: { cursor?: string | undefined; limit?: number | undefined; q?: string | undefined },
  ): Promise<{ entries: FileEntryView[]; cursor: string | null }> {
    return this.json({
      kind: 'list',
      path: encodePath(components),
      ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      ...(opts.q !== undefined ? { q: opts.q } : {}),
    });
  }

  async file(
    components: readonly Buffer[],
  ): Promise<{ node: { size: number }; name: string; stream(range: { start: number; end: number } | null): Readable }> {
    const path = encodePath(components);
    const stat = await this.json<{ size: number; name: string }>({ kind: 'stat', path });
    return {
      node: { size: stat.size },
      name: stat.name,
      stream: (range) => this.later({ kind: 'content', path, range }),
    };
  }

  async archive(components: readonly Buffer[], zstd: boolean): Promise<{ top: string; stream: Readable }> {
    const { meta, body } = await this.relay.ask(this.node, this.userId, this.depId, this.snapId, {
      kind: 'archive',
      path: encodePath(components),
      zstd,
    });
    this.track(body);
    return { top: typeof meta?.top === 'string' ? meta.top : '', stream: body };
  }

  /** later is a stream of a read asked now and answered later; destroying it ends the read. */
  private later(payload: ReadPayload): Readable {
    const out = new PassThrough();
    this.track(out);
    this.relay.ask(this.node, this.userId, this.depId, this.snapId, payload).then(
      ({ body }) => {
        if (out.destroyed) {
          body.destroy();
          return;
        }
        pipeline(body, out, () => undefined);
      },
      (err: unknown) => out.destroy(err as Error),
    );
    return out;
  }

  private track(s: Readable): void {
    this.streams.add(s);
    s.once('close', () => this.streams.delete(s));
  }

  close(): Promise<void> {
    for (const s of this.streams) s.destroy();
    return Promise.resolve();
  }
}
