/**
 * browse-api: the dashboard's client of the browse routes (docs/api.md,
 * "Browsing, downloading and comparing snapshots"): directory pages, diff
 * pages, and downloads.
 *
 * Paths are kept as components, each with its exact bytes when the name is
 * not UTF-8 (the API's `nameBase64`), so such names can be opened and
 * downloaded: a path with any such component is sent as `pathBase64`.
 *
 * Downloads are fetched with the bearer header (the API key never goes in a
 * URL, where it would end up in history and server logs) and saved from a
 * Blob, so a download is held in memory until it is complete.
 */
import { ApiError, type ChangeKind, type FileChange, type FileEntry, request, storedToken } from './api';

/** One component of a path inside a snapshot: its text, and its raw bytes (base64) when not UTF-8. */
export interface PathPart {
  readonly text: string;
  readonly base64: string | null;
}

export type BrowsePath = readonly PathPart[];

const utf8 = new TextEncoder();

function bytesOf(part: PathPart): Uint8Array {
  if (part.base64 === null) return utf8.encode(part.text);
  const bin = atob(part.base64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** pathQuery renders a path as the API's `path` or, when a name is not UTF-8, `pathBase64`. */
export function pathQuery(path: BrowsePath): Record<string, string> {
  if (path.every((p) => p.base64 === null)) return { path: path.map((p) => p.text).join('/') };
  const parts: number[] = [];
  path.forEach((p, i) => {
    if (i > 0) parts.push(0x2f);
    parts.push(...bytesOf(p));
  });
  return { pathBase64: toBase64(Uint8Array.from(parts)) };
}

/** showPath renders a path for people: "/" for the root, "app/data/x" otherwise. */
export function showPath(path: BrowsePath): string {
  return path.length === 0 ? '/' : path.map((p) => p.text).join('/');
}

function qs(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

const snapshotBase = (depId: string, snapId: string) => `/deployments/${encodeURIComponent(depId)}/snapshots/${encodeURIComponent(snapId)}`;

export interface Page<T> {
  readonly items: T[];
  readonly cursor: string | null;
}

export const browseApi = {
  /** listFiles returns one page of a directory, optionally only names containing `q`. */
  listFiles: async (
    depId: string,
    snapId: string,
    path: BrowsePath,
    opts: { cursor?: string | null; limit?: number; q?: string; signal?: AbortSignal } = {},
  ): Promise<Page<FileEntry>> => {
    const query = qs({ ...pathQuery(path), cursor: opts.cursor ?? undefined, limit: opts.limit, q: opts.q });
    const r = await request<{ entries: FileEntry[]; cursor: string | null }>('GET', `${snapshotBase(depId, snapId)}/files${query}`, {
      signal: opts.signal,
    });
    return { items: r.entries, cursor: r.cursor };
  },

  /** diff returns one page of the changes from `against` to `snapId` (against "live": from `snapId` to now). */
  diff: async (
    depId: string,
    snapId: string,
    against: string,
    opts: { cursor?: string | null; limit?: number; kinds?: readonly ChangeKind[]; signal?: AbortSignal } = {},
  ): Promise<Page<FileChange>> => {
    const query = qs({
      against,
      change: opts.kinds && opts.kinds.length > 0 ? opts.kinds.join(',') : undefined,
      cursor: opts.cursor ?? undefined,
      limit: opts.limit,
    });
    const r = await request<{ changes: FileChange[]; cursor: string | null }>('GET', `${snapshotBase(depId, snapId)}/diff${query}`, {
      signal: opts.signal,
    });
    return { items: r.changes, cursor: r.cursor };
  },
};

/** The name a Content-Disposition header gives (RFC 6266 filename*), or null. */
export function dispositionName(header: string | null): string | null {
  const m = header ? /filename\*=UTF-8''([^;]+)/i.exec(header) : null;
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return null;
  }
}

/**
 * download fetches a file (kind "file") or a directory as .tar.zst (kind
 * "archive") and hands it to the browser as a saved file named `fallback`
 * unless the server names it. Errors are ApiError with the API's code.
 */
export async function download(depId: string, snapId: string, path: BrowsePath, kind: 'file' | 'archive', fallback: string): Promise<void> {
  const url =
    kind === 'file'
      ? `/api/v1${snapshotBase(depId, snapId)}/files/content${qs(pathQuery(path))}`
      : `/api/v1${snapshotBase(depId, snapId)}/archive${qs({ ...pathQuery(path), format: 'tar.zst' })}`;
  const token = storedToken();
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch {
    throw new ApiError(0, 'NETWORK_ERROR', 'Could not reach the Kova server. Check your connection and try again.');
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    throw new ApiError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? `The server answered ${res.status}`);
  }
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = dispositionName(res.headers.get('content-disposition')) ?? fallback;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The click has started the save; the Blob can go once it has been read.
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
