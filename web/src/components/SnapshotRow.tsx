/** SnapshotRow: one snapshot in the table: name, live status and off-node copy, size, trigger, age, consistency, actions. */
import type { Snapshot } from '../api';
import { formatBytes, triggerLabel } from '../format';
import { NODE_BANNER_ID } from '../nodes';
import { paths } from '../router';
import { Icon } from './Icon';
import { Link } from './Link';
import { ProgressBar } from './ProgressBar';
import { RelativeTime } from './RelativeTime';
import { SnapshotName } from './SnapshotName';
import { StatusBadge } from './StatusBadge';

export interface SnapshotActions {
  onRestore: (s: Snapshot) => void;
  onClone: (s: Snapshot) => void;
  onDelete: (s: Snapshot) => void;
  /** Restores are not offered while one runs. */
  restoreDisabled: boolean;
  /** Why restore, clone and delete cannot run now (the deployment's node is offline), or null. */
  noNode: string | null;
  /** The deployment, for the links to a snapshot's files and comparison. */
  deploymentId: string;
}

function consistencyText(s: Snapshot): { text: string; title: string } {
  if (s.consistency === 'frozen')
    return {
      text: s.freezeMs === null ? 'Frozen' : `Frozen · ${s.freezeMs} ms`,
      title: 'Services were paused briefly so every volume was captured at the same moment',
    };
  if (s.consistency === 'live') return { text: 'Live', title: 'Captured while the services kept writing (crash-consistent)' };
  return { text: '—', title: 'Known when the snapshot is ready' };
}

/** OffsiteBadge: where the snapshot's off-node copy stands (nothing when the server makes none). */
function OffsiteBadge({ snapshot: s }: { snapshot: Snapshot }) {
  const o = s.offsite;
  if (!o || s.status !== 'ready') return null;
  const text = o.status === 'copied' ? 'Offsite' : o.status === 'failed' ? 'Offsite failed' : 'Copying offsite';
  const title =
    o.status === 'copied'
      ? `Copied off the node${o.copiedAt ? ` at ${new Date(o.copiedAt).toLocaleString()}` : ''}`
      : o.status === 'failed'
        ? `The off-node copy failed and is retried: ${o.error ?? 'unknown error'}`
        : 'Being copied off the node';
  return (
    <span className={`badge badge-offsite offsite-${o.status}`} data-offsite={o.status} title={title}>
      {text}
    </span>
  );
}

export function SnapshotRow({ snapshot: s, actions }: { snapshot: Snapshot; actions: SnapshotActions }) {
  const c = consistencyText(s);
  const noNode = actions.noNode;
  const noNodeProps = noNode ? { 'aria-describedby': NODE_BANNER_ID } : {};
  // Network mode: a snapshot copied off-node can be cloned while its node is offline (onto another node).
  const fromCopy = s.offsite?.status === 'copied';
  return (
    <tr data-snapshot-id={s.id} data-status={s.status}>
      <td data-label="Snapshot" className="cell-name">
        <SnapshotName snapshot={s} />
      </td>
      <td data-label="Status" className="cell-status">
        <StatusBadge status={s.status} />
        <OffsiteBadge snapshot={s} />
        {s.damaged && (
          <span className="damaged-mark">
            <StatusBadge status="damaged" label="Damaged" />
            <p className="cell-error">A check found part of its data can no longer be read back intact; a restore may fail.</p>
          </span>
        )}
        {s.status === 'creating' && s.progress && (
          <ProgressBar done={s.progress.bytesDone} total={s.progress.bytesTotal} label={`Progress of ${s.label ?? s.id}`} />
        )}
        {s.status === 'failed' && s.error && <p className="cell-error">{s.error}</p>}
        {s.warning && <p className="cell-warning">{s.warning}</p>}
      </td>
      <td data-label="Size" className="cell-num">
        {s.status === 'creating' ? <span className="muted">—</span> : <span>{s.size}</span>}
        {s.storedBytes !== null && (
          <span className="sub" title="Bytes this snapshot added to the store, after deduplication and compression">
            +{formatBytes(s.storedBytes)} stored
          </span>
        )}
      </td>
      <td data-label="Type">
        <span className={`trigger trigger-${s.trigger}`}>{triggerLabel(s.trigger)}</span>
      </td>
      <td data-label="Created" className="cell-nowrap">
        <RelativeTime iso={s.createdAt} />
      </td>
      <td data-label="Consistency" className="cell-nowrap">
        <span title={c.title}>{c.text}</span>
      </td>
      <td className="cell-actions">
        <div className="row-actions">
          {s.status === 'ready' && (
            <>
              <button
                type="button"
                className="btn btn-secondary btn-sm"
                onClick={() => actions.onRestore(s)}
                disabled={actions.restoreDisabled || noNode !== null}
                title={noNode ?? (actions.restoreDisabled ? 'A restore is running' : undefined)}
                {...noNodeProps}
                aria-label={`Restore ${s.label ?? s.id}`}
              >
                <Icon name="restore" size={14} />
                Restore
              </button>
              <Link
                to={paths.snapshot(actions.deploymentId, s.id)}
                className="icon-btn"
                aria-label={`Browse the files of ${s.label ?? s.id}`}
                title="Browse files"
              >
                <Icon name="folder" />
              </Link>
              <Link
                to={paths.snapshot(actions.deploymentId, s.id, 'compare', 'live')}
                className="icon-btn"
                aria-label={`Compare ${s.label ?? s.id} with…`}
                title="Compare with the live volumes or another snapshot"
              >
                <Icon name="compare" />
              </Link>
              <button
                type="button"
                className="icon-btn"
                onClick={() => actions.onClone(s)}
                disabled={noNode !== null && !fromCopy}
                aria-label={`Clone ${s.label ?? s.id} into a new deployment`}
                title={
                  noNode === null ? 'Clone into a new deployment' : fromCopy ? 'Clone from the off-node copy onto another node' : noNode
                }
                {...(fromCopy ? {} : noNodeProps)}
              >
                <Icon name="copy" />
              </button>
            </>
          )}
          {(s.status === 'ready' || s.status === 'failed') && (
            <button
              type="button"
              className="icon-btn icon-btn-danger"
              onClick={() => actions.onDelete(s)}
              disabled={noNode !== null}
              aria-label={`Delete ${s.label ?? s.id}`}
              title={noNode ?? 'Delete'}
              {...noNodeProps}
            >
              <Icon name="trash" />
            </button>
          )}
        </div>
      </td>
    </tr>
  );
}
