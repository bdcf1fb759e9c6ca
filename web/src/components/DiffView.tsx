/**
 * DiffView: what changed between a snapshot and another one, or the live
 * volumes. Two snapshots are always shown from the older to the newer; the
 * live volumes are always the newer side. Changes come page by page in path
 * order ("Load more"), filtered by kind on the server; the totals count the
 * changes loaded so far (and say so while more pages remain).
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { type ChangeKind, type FileChange, type Snapshot, errorMessage, isAbort } from '../api';
import { browseApi } from '../browse-api';
import { formatBytes } from '../format';
import { useToast } from '../toast';
import { EmptyState } from './EmptyState';
import { ErrorState } from './ErrorState';
import { LoadingCard } from './LoadingCard';
import { Spinner } from './Spinner';

const PAGE = 200;
export const LIVE = 'live';

const KINDS: ReadonlyArray<{ kind: ChangeKind; label: string }> = [
  { kind: 'added', label: 'Added' },
  { kind: 'removed', label: 'Removed' },
  { kind: 'modified', label: 'Modified' },
  { kind: 'type', label: 'Type changed' },
];

const KIND_LABEL: Record<ChangeKind, string> = { added: 'Added', removed: 'Removed', modified: 'Modified', type: 'Type changed' };

const snapName = (s: Pick<Snapshot, 'id' | 'label'>) => s.label ?? s.id;

/** The request that shows `a` against `b` older to newer: the newer is queried, against the older. */
function sides(current: Snapshot, other: Snapshot | null): { query: string; against: string; from: string; to: string } {
  if (other === null) return { query: current.id, against: LIVE, from: snapName(current), to: 'the live volumes' };
  const otherOlder = Date.parse(other.createdAt) < Date.parse(current.createdAt);
  const [older, newer] = otherOlder ? [other, current] : [current, other];
  return { query: newer.id, against: older.id, from: snapName(older), to: snapName(newer) };
}

function Size({ value }: { value: number | null }) {
  return value === null ? <span className="muted">—</span> : <>{formatBytes(value)}</>;
}

interface Loaded {
  changes: FileChange[];
  cursor: string | null;
}

export function DiffView({
  deploymentId,
  snapshot,
  snapshots,
  against,
  onAgainst,
}: {
  deploymentId: string;
  snapshot: Snapshot;
  /** The deployment's snapshots (the ready ones other than `snapshot` are offered). */
  snapshots: readonly Snapshot[];
  /** Another snapshot's id, or LIVE. */
  against: string;
  onAgainst: (against: string) => void;
}) {
  const toast = useToast();
  const [kinds, setKinds] = useState<ChangeKind[]>([]);
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [tick, setTick] = useState(0);
  const ctlRef = useRef<AbortController | null>(null);

  const others = snapshots
    .filter((s) => s.status === 'ready' && s.id !== snapshot.id)
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const other = against === LIVE ? null : (others.find((s) => s.id === against) ?? null);
  const missing = against !== LIVE && other === null;
  const side = sides(snapshot, other);

  useEffect(() => {
    if (missing) return;
    const ctl = new AbortController();
    ctlRef.current = ctl;
    setLoaded(null);
    setError(null);
    browseApi.diff(deploymentId, side.query, side.against, { kinds, limit: PAGE, signal: ctl.signal }).then(
      (page) => {
        if (!ctl.signal.aborted) setLoaded({ changes: page.items, cursor: page.cursor });
      },
      (err: unknown) => {
        if (!ctl.signal.aborted && !isAbort(err)) setError(err);
      },
    );
    return () => ctl.abort();
  }, [deploymentId, side.query, side.against, kinds, missing, tick]);

  const loadMore = useCallback(() => {
    if (!loaded?.cursor || loadingMore) return;
    const ctl = ctlRef.current;
    setLoadingMore(true);
    browseApi.diff(deploymentId, side.query, side.against, { kinds, limit: PAGE, cursor: loaded.cursor, signal: ctl?.signal }).then(
      (page) => {
        if (ctl?.signal.aborted) return;
        setLoaded((cur) => (cur ? { changes: [...cur.changes, ...page.items], cursor: page.cursor } : cur));
        setLoadingMore(false);
      },
      (err: unknown) => {
        setLoadingMore(false);
        if (!isAbort(err)) toast(`Could not load more: ${errorMessage(err)}`, 'error');
      },
    );
  }, [deploymentId, side.query, side.against, kinds, loaded, loadingMore, toast]);

  const totals = useMemo(() => {
    const count: Record<ChangeKind, number> = { added: 0, removed: 0, modified: 0, type: 0 };
    let before = 0;
    let after = 0;
    for (const c of loaded?.changes ?? []) {
      count[c.change]++;
      before += c.sizeBefore ?? 0;
      after += c.sizeAfter ?? 0;
    }
    return { count, before, after };
  }, [loaded]);

  const toggle = (kind: ChangeKind) => setKinds((ks) => (ks.includes(kind) ? ks.filter((k) => k !== kind) : [...ks, kind]));
  const more = loaded?.cursor !== null && loaded?.cursor !== undefined;

  return (
    <section className="card card-flush diff-view" aria-labelledby="diff-title">
      <div className="card-head card-head-padded diff-head">
        <div>
          <h3 id="diff-title">Compare</h3>
          <p className="muted small" data-testid="diff-sides">
            Changes from <strong>{side.from}</strong> to <strong>{side.to}</strong>
            {other === null && !missing && ' (files compared by size and modification time)'}
          </p>
        </div>
        <label className="field compare-field">
          <span className="setting-label">Compare with</span>
          <select className="input" value={missing ? '' : against} onChange={(e) => onAgainst(e.target.value)}>
            {missing && <option value="">Choose…</option>}
            <option value={LIVE}>The live volumes (now)</option>
            {others.map((s) => (
              <option key={s.id} value={s.id}>
                {snapName(s)} · {new Date(s.createdAt).toLocaleString()}
              </option>
            ))}
          </select>
        </label>
      </div>

      <div className="diff-filters" role="group" aria-label="Show changes of kind">
        {KINDS.map(({ kind, label }) => (
          <button
            key={kind}
            type="button"
            className={`filter-chip chip-${kind}`}
            aria-pressed={kinds.includes(kind)}
            onClick={() => toggle(kind)}
          >
            {label}
            {loaded && kinds.length === 0 && <span className="chip-count">{totals.count[kind]}</span>}
          </button>
        ))}
        {kinds.length > 0 && (
          <button type="button" className="link-btn" onClick={() => setKinds([])}>
            Show all
          </button>
        )}
      </div>

      {missing ? (
        <EmptyState icon="compare" title="Choose what to compare with">
          That snapshot is not among this deployment's ready snapshots. Pick another one, or the live volumes.
        </EmptyState>
      ) : error !== null ? (
        <ErrorState error={error} onRetry={() => setTick((t) => t + 1)} title="Could not compare" />
      ) : loaded === null ? (
        <LoadingCard rows={3} label="Comparing" />
      ) : loaded.changes.length === 0 ? (
        <EmptyState icon="check" title={kinds.length > 0 ? 'No changes of these kinds' : 'No changes'}>
          {kinds.length > 0
            ? 'Nothing of the kinds selected changed. Show all kinds to see the rest.'
            : `The files are the same in ${side.from} and ${side.to}.`}
        </EmptyState>
      ) : (
        <>
          <p className="diff-totals" role="status" data-testid="diff-totals">
            <strong>
              {loaded.changes.length}
              {more ? '+' : ''}
            </strong>{' '}
            {loaded.changes.length === 1 && !more ? 'change' : 'changes'}
            {more ? ' (totals of those loaded so far)' : ''} · {formatBytes(totals.before)} before → {formatBytes(totals.after)} after
          </p>
          <div className="table-wrap">
            <table className="table table-cards diff-table" aria-label="Changes">
              <thead>
                <tr>
                  <th scope="col">Path</th>
                  <th scope="col">Change</th>
                  <th scope="col">Size before</th>
                  <th scope="col">Size after</th>
                </tr>
              </thead>
              <tbody>
                {loaded.changes.map((c) => (
                  <tr key={c.pathBase64 ?? c.path} data-path={c.path} data-change={c.change}>
                    <td className="cell-name diff-path">
                      <code>{c.path}</code>
                      {c.pathBase64 !== null && (
                        <span className="name-raw" title="This path is not UTF-8; unreadable bytes are shown as �">
                          not UTF-8
                        </span>
                      )}
                    </td>
                    <td data-label="Change">
                      <span className={`change-badge change-${c.change}`}>{KIND_LABEL[c.change]}</span>
                    </td>
                    <td data-label="Before" className="cell-num">
                      <Size value={c.sizeBefore} />
                    </td>
                    <td data-label="After" className="cell-num">
                      <Size value={c.sizeAfter} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {(more || other === null) && (
            <div className="list-foot">
              <span className="muted small">{other === null ? 'The live volumes are read as they are now, each page afresh.' : ''}</span>
              {more && (
                <button type="button" className="btn btn-secondary btn-sm" onClick={loadMore} disabled={loadingMore}>
                  {loadingMore && <Spinner />} Load more
                </button>
              )}
            </div>
          )}
        </>
      )}
    </section>
  );
}
