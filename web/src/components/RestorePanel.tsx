/**
 * RestorePanel: a restore in progress or just finished: its steps, progress,
 * and its outcome (downtime) or error. It polls the restore until it ends.
 */
import { useEffect, useRef } from 'react';
import { api, type Restore, type RestoreStatus, type Snapshot } from '../api';
import { formatMs } from '../format';
import { useResource } from '../hooks/useResource';
import { Callout } from './Callout';
import { Icon } from './Icon';
import { ProgressBar } from './ProgressBar';
import { RestoreSteps } from './RestoreSteps';
import { StatusBadge } from './StatusBadge';

const FINAL: readonly RestoreStatus[] = ['completed', 'failed'];

export function RestorePanel({
  deploymentId,
  initial,
  snapshots,
  onFinished,
  onDismiss,
}: {
  deploymentId: string;
  initial: Restore;
  snapshots: readonly Snapshot[];
  onFinished: (r: Restore) => void;
  onDismiss: () => void;
}) {
  const res = useResource(
    (signal) => api.getRestore(deploymentId, initial.id, signal),
    [deploymentId, initial.id],
    (r) => (r && FINAL.includes(r.status) ? null : 1500),
  );
  const restore = res.data ?? initial;
  const lastActive = useRef<RestoreStatus>(initial.status);
  if (!FINAL.includes(restore.status)) lastActive.current = restore.status;
  const done = FINAL.includes(restore.status);

  const reported = useRef(FINAL.includes(initial.status));
  useEffect(() => {
    if (done && !reported.current) {
      reported.current = true;
      onFinished(restore);
    }
  }, [done, restore, onFinished]);

  const snap = snapshots.find((s) => s.id === restore.snapshotId);
  const name = snap?.label ?? restore.snapshotId;
  const safety = restore.safetySnapshotId ? snapshots.find((s) => s.id === restore.safetySnapshotId) : undefined;
  const total = restore.finishedAt ? Date.parse(restore.finishedAt) - Date.parse(restore.createdAt) : null;

  return (
    <section
      className={`card restore-panel is-${restore.status}`}
      aria-labelledby={`restore-${restore.id}`}
      data-testid="restore-panel"
      aria-live="polite"
    >
      <div className="restore-panel-head">
        <div>
          <h3 id={`restore-${restore.id}`}>
            {restore.status === 'completed' ? 'Restore completed' : restore.status === 'failed' ? 'Restore failed' : 'Restoring snapshot'}{' '}
            <span className="muted">{name}</span>
          </h3>
          <code className="snap-id">{restore.id}</code>
        </div>
        <div className="restore-panel-status">
          <StatusBadge status={restore.status} />
          {done && (
            <button type="button" className="icon-btn" aria-label="Dismiss" onClick={onDismiss}>
              <Icon name="x" />
            </button>
          )}
        </div>
      </div>
      <RestoreSteps status={restore.status} failedAt={restore.status === 'failed' ? lastActive.current : null} />
      {restore.status === 'restoring' && restore.progress && (
        <ProgressBar done={restore.progress.bytesDone} total={restore.progress.bytesTotal} label="Restore progress" />
      )}
      {restore.status === 'completed' && (
        <Callout tone="success" role="status">
          The volumes hold the snapshot's data and the services restarted. Downtime{' '}
          <strong data-testid="restore-downtime">{restore.downtimeMs === null ? 'unknown' : formatMs(restore.downtimeMs)}</strong>
          {total !== null && <> · whole restore {formatMs(total)}</>}
          {restore.safetySnapshotId && (
            <>
              {' '}
              · safety snapshot <code>{safety?.label ?? restore.safetySnapshotId}</code> holds the data from before
            </>
          )}
          .
          {restore.volumes?.some((p) => p.from !== p.to) && (
            <>
              {' '}
              Restored into renamed volumes:{' '}
              {restore.volumes
                .filter((p) => p.from !== p.to)
                .map((p) => `${p.from} → ${p.to}`)
                .join(', ')}
              .
            </>
          )}
          {restore.untouchedVolumes && restore.untouchedVolumes.length > 0 && (
            <> Not in the snapshot, kept as they were: {restore.untouchedVolumes.join(', ')}.</>
          )}
        </Callout>
      )}
      {restore.status === 'failed' && (
        <Callout tone="danger" role="alert" title="The restore did not complete">
          {restore.error ?? 'No reason was given.'}
        </Callout>
      )}
    </section>
  );
}
