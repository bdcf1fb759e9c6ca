/**
 * FileBrowser: a ready snapshot's files, read from the snapshot store
 * without restoring anything: a breadcrumb from the snapshot's root (its
 * services, then their volumes), one directory's entries page by page
 * ("Load more" follows the API's cursor), a name filter applied by the
 * server to the whole directory, and downloads of a file or of a directory
 * as .tar.zst. A table on wide screens, a list of cards on phones.
 *
 * Order: a page that answers after the path or filter changed is dropped
 * (each load has its own AbortController).
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { type FileEntry, errorMessage, isAbort } from '../api';
import { type BrowsePath, type PathPart, browseApi, download, showPath } from '../browse-api';
import { formatBytes, formatExact } from '../format';
import { useToast } from '../toast';
import { EmptyState } from './EmptyState';
import { ErrorState } from './ErrorState';
import { Icon, type IconName } from './Icon';
import { LoadingCard } from './LoadingCard';
import { Spinner } from './Spinner';

const PAGE = 100;
const SEARCH_DELAY_MS = 250;

const TYPE_CHAR: Record<FileEntry['type'], string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  fifo: 'p',
  chardev: 'c',
  blockdev: 'b',
  socket: 's',
};

const TYPE_LABEL: Record<FileEntry['type'], string> = {
  file: 'File',
  dir: 'Folder',
  symlink: 'Symlink',
  fifo: 'FIFO',
  chardev: 'Character device',
  blockdev: 'Block device',
  socket: 'Socket',
};

const TYPE_ICON: Record<FileEntry['type'], IconName> = {
  file: 'file',
  dir: 'folder',
  symlink: 'link',
  fifo: 'special',
  chardev: 'special',
  blockdev: 'special',
  socket: 'special',
};

/** modeString renders a type and permission bits as `ls -l` does: "drwxr-xr-x", "-rwsr-x--T". */
export function modeString(type: FileEntry['type'], mode: number): string {
  const bit = (mask: number, ch: string) => (mode & mask ? ch : '-');
  const special = (exec: boolean, set: boolean, on: string, off: string) => (set ? (exec ? on : off) : exec ? 'x' : '-');
  return (
    TYPE_CHAR[type] +
    bit(0o400, 'r') +
    bit(0o200, 'w') +
    special(!!(mode & 0o100), !!(mode & 0o4000), 's', 'S') +
    bit(0o040, 'r') +
    bit(0o020, 'w') +
    special(!!(mode & 0o010), !!(mode & 0o2000), 's', 'S') +
    bit(0o004, 'r') +
    bit(0o002, 'w') +
    special(!!(mode & 0o001), !!(mode & 0o1000), 't', 'T')
  );
}

/** The API's nanosecond times, to the millisecond a Date holds. */
const isoMs = (iso: string) => iso.replace(/\.(\d{3})\d*Z$/, '.$1Z');

function formatTime(iso: string): string {
  const t = Date.parse(isoMs(iso));
  if (Number.isNaN(t)) return iso;
  return new Date(t).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** NameText shows a name; one that is not UTF-8 is marked, with its bytes in the tooltip. */
function NameText({ part }: { part: PathPart }) {
  if (part.base64 === null) return <>{part.text}</>;
  const hex = Array.from(atob(part.base64), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
  return (
    <>
      {part.text}{' '}
      <span className="name-raw" title={`Not UTF-8. Bytes: ${hex}`}>
        not UTF-8
      </span>
    </>
  );
}

const partOf = (e: FileEntry): PathPart => ({ text: e.name, base64: e.nameBase64 });

function levelName(depth: number): string {
  return depth === 0 ? 'service' : depth === 1 ? 'volume' : 'folder';
}

interface Listing {
  entries: FileEntry[];
  cursor: string | null;
}

export function FileBrowser({ deploymentId, snapshotId }: { deploymentId: string; snapshotId: string }) {
  const toast = useToast();
  const [path, setPath] = useState<BrowsePath>([]);
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [tick, setTick] = useState(0);
  const [downloading, setDownloading] = useState<string | null>(null);
  const loadCtl = useRef<AbortController | null>(null);

  // The search box filters after a short pause in typing.
  useEffect(() => {
    const t = setTimeout(() => setQ(search.trim()), SEARCH_DELAY_MS);
    return () => clearTimeout(t);
  }, [search]);

  useEffect(() => {
    const ctl = new AbortController();
    loadCtl.current?.abort();
    loadCtl.current = ctl;
    setListing(null);
    setError(null);
    browseApi.listFiles(deploymentId, snapshotId, path, { limit: PAGE, q, signal: ctl.signal }).then(
      (page) => {
        if (!ctl.signal.aborted) setListing({ entries: page.items, cursor: page.cursor });
      },
      (err: unknown) => {
        if (!ctl.signal.aborted && !isAbort(err)) setError(err);
      },
    );
    return () => ctl.abort();
  }, [deploymentId, snapshotId, path, q, tick]);

  const loadMore = useCallback(() => {
    if (!listing?.cursor || loadingMore) return;
    const ctl = loadCtl.current;
    setLoadingMore(true);
    browseApi.listFiles(deploymentId, snapshotId, path, { limit: PAGE, q, cursor: listing.cursor, signal: ctl?.signal }).then(
      (page) => {
        if (ctl?.signal.aborted) return;
        setListing((cur) => (cur ? { entries: [...cur.entries, ...page.items], cursor: page.cursor } : cur));
        setLoadingMore(false);
      },
      (err: unknown) => {
        setLoadingMore(false);
        if (!isAbort(err)) toast(`Could not load more: ${errorMessage(err)}`, 'error');
      },
    );
  }, [deploymentId, snapshotId, path, q, listing, loadingMore, toast]);

  const open = (next: BrowsePath) => {
    setPath(next);
    setSearch('');
    setQ('');
  };

  const save = async (target: BrowsePath, kind: 'file' | 'archive') => {
    const key = `${kind}:${showPath(target)}`;
    setDownloading(key);
    try {
      const last = target[target.length - 1]?.text ?? snapshotId;
      await download(deploymentId, snapshotId, target, kind, kind === 'file' ? last : `${snapshotId}-${last}.tar.zst`);
    } catch (err) {
      toast(`Download failed: ${errorMessage(err)}`, 'error');
    } finally {
      setDownloading((cur) => (cur === key ? null : cur));
    }
  };

  const depth = path.length;
  const here = depth === 0 ? 'All services' : path[depth - 1]!.text;
  const archiveKey = `archive:${showPath(path)}`;

  return (
    <section className="card card-flush file-browser" aria-labelledby="files-title">
      <div className="card-head card-head-padded browser-head">
        <div className="browser-title">
          <h3 id="files-title">Files</h3>
          <nav className="path-crumbs" aria-label="Folder path">
            <ol>
              <li>
                {depth === 0 ? (
                  <span aria-current="location">Snapshot root</span>
                ) : (
                  <button type="button" className="link-btn" onClick={() => open([])}>
                    Snapshot root
                  </button>
                )}
              </li>
              {path.map((part, i) => (
                <li key={i}>
                  {i === depth - 1 ? (
                    <span aria-current="location">
                      <NameText part={part} />
                    </span>
                  ) : (
                    <button type="button" className="link-btn" onClick={() => open(path.slice(0, i + 1))}>
                      <NameText part={part} />
                    </button>
                  )}
                </li>
              ))}
            </ol>
          </nav>
        </div>
        <div className="browser-tools">
          <label className="search-box">
            <Icon name="search" size={14} />
            <span className="sr-only">Filter this folder by name</span>
            <input
              className="input"
              type="search"
              placeholder="Filter by name"
              value={search}
              onChange={(e) => setSearch(e.target.value)}
            />
          </label>
          <button
            type="button"
            className="btn btn-secondary btn-sm"
            onClick={() => void save(path, 'archive')}
            disabled={downloading === archiveKey}
            aria-label={`Download ${here} as .tar.zst`}
          >
            {downloading === archiveKey ? <Spinner /> : <Icon name="download" size={14} />}
            <span>Download folder</span>
          </button>
        </div>
      </div>

      {error !== null ? (
        <ErrorState error={error} onRetry={() => setTick((t) => t + 1)} title="Could not list this folder" />
      ) : listing === null ? (
        <LoadingCard rows={3} label="Loading files" />
      ) : listing.entries.length === 0 ? (
        <EmptyState icon={q ? 'search' : 'folder'} title={q ? 'No names match' : 'This folder is empty'}>
          {q ? `Nothing in ${here} has "${q}" in its name.` : `The snapshot holds nothing in ${here}.`}
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table table-cards file-table" aria-label={`Contents of ${showPath(path)}`}>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Size</th>
                  <th scope="col">Mode</th>
                  <th scope="col">Owner</th>
                  <th scope="col">Modified</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {listing.entries.map((e) => {
                  const part = partOf(e);
                  const target = [...path, part];
                  const key = `${e.type === 'file' ? 'file' : 'archive'}:${showPath(target)}`;
                  return (
                    <tr key={e.nameBase64 ?? e.name} data-entry={e.name} data-type={e.type}>
                      <td className="cell-name file-name">
                        <span className="file-icon" title={TYPE_LABEL[e.type]}>
                          <Icon name={TYPE_ICON[e.type]} size={16} />
                          <span className="sr-only">{TYPE_LABEL[e.type]}</span>
                        </span>
                        <span className="file-name-text">
                          {e.type === 'dir' ? (
                            <button
                              type="button"
                              className="link-btn entry-link"
                              onClick={() => open(target)}
                              aria-label={`Open ${levelName(depth)} ${e.name}`}
                            >
                              <NameText part={part} />
                            </button>
                          ) : (
                            <span className="entry-name">
                              <NameText part={part} />
                            </span>
                          )}
                          {e.type === 'symlink' && (
                            <span className="sub link-target">
                              → <NameText part={{ text: e.target ?? '', base64: e.targetBase64 }} />
                            </span>
                          )}
                        </span>
                      </td>
                      <td data-label="Size" className={e.type === 'file' ? 'cell-num' : 'cell-num is-empty'}>
                        {e.type === 'file' ? formatBytes(e.size) : <span className="muted">—</span>}
                      </td>
                      <td data-label="Mode" className="cell-nowrap">
                        <code className="mode" title={`0${(e.mode & 0o7777).toString(8).padStart(3, '0')}`}>
                          {modeString(e.type, e.mode)}
                        </code>
                      </td>
                      <td data-label="Owner" className="cell-nowrap">
                        <code>
                          {e.uid}:{e.gid}
                        </code>
                      </td>
                      <td data-label="Modified" className="cell-nowrap">
                        <time dateTime={e.mtime} title={`${formatExact(isoMs(e.mtime))} (${e.mtime})`}>
                          {formatTime(e.mtime)}
                        </time>
                      </td>
                      <td className="cell-actions">
                        {(e.type === 'file' || e.type === 'dir') && (
                          <button
                            type="button"
                            className="icon-btn"
                            onClick={() => void save(target, e.type === 'file' ? 'file' : 'archive')}
                            disabled={downloading === key}
                            aria-label={e.type === 'file' ? `Download ${e.name}` : `Download ${e.name} as .tar.zst`}
                            title={e.type === 'file' ? 'Download' : 'Download as .tar.zst'}
                          >
                            {downloading === key ? <Spinner /> : <Icon name="download" />}
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <div className="list-foot">
            <span className="muted small" role="status">
              {listing.entries.length} {listing.entries.length === 1 ? 'entry' : 'entries'}
              {listing.cursor ? ' shown, more in this folder' : q ? ' match' : ''}
            </span>
            {listing.cursor && (
              <button type="button" className="btn btn-secondary btn-sm" onClick={loadMore} disabled={loadingMore}>
                {loadingMore && <Spinner />} Load more
              </button>
            )}
          </div>
        </>
      )}
    </section>
  );
}
