/**
 * SnapshotsTab: advice, storage used, the snapshots (statuses update live),
 * where the checks of the stored data stand (with "Check now"), and create /
 * restore / clone / delete. While anything runs (a snapshot
 * creating or deleting, a restore) it polls every 1.5 s; with automatic
 * snapshots on it polls at about their interval; otherwise now and then.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, type Deployment, type Restore, type Snapshot } from '../api';
import { Callout } from '../components/Callout';
import { CloneDialog } from '../components/CloneDialog';
import { CreateSnapshotDialog } from '../components/CreateSnapshotDialog';
import { DeleteSnapshotDialog } from '../components/DeleteSnapshotDialog';
import { EmptyState } from '../components/EmptyState';
import { ErrorState } from '../components/ErrorState';
import { Icon } from '../components/Icon';
import { Link } from '../components/Link';
import { LoadingCard } from '../components/LoadingCard';
import { RelativeTime } from '../components/RelativeTime';
import { RestoreDialog } from '../components/RestoreDialog';
import { RestorePanel } from '../components/RestorePanel';
import { SnapshotTable } from '../components/SnapshotTable';
import { VerificationLine } from '../components/VerificationLine';
import { errorMessage } from '../api';
import { formatBytes } from '../format';
import { useResource } from '../hooks/useResource';
import { NODE_BANNER_ID, nodeUnavailable } from '../nodes';
import { navigate, paths } from '../router';
import { useToast } from '../toast';
import { parseDuration } from '../validate';
import { ClosedNotice } from './ClosedNotice';

type DialogState = { kind: 'create' } | { kind: 'restore' | 'delete' | 'clone'; snapshot: Snapshot } | null;

const BUSY_POLL_MS = 1500;
const IDLE_POLL_MS = 30_000;
/** A finished restore stays on the page this long after a reload. */
const RECENT_RESTORE_MS = 10 * 60_000;

const running = (r: Restore | null) => r !== null && r.status !== 'completed' && r.status !== 'failed';

export function SnapshotsTab({ deployment, onActivity }: { deployment: Deployment; onActivity: () => void }) {
  if (deployment.status !== 'active') return <ClosedNotice what="snapshots" />;
  return <ActiveSnapshots deployment={deployment} onActivity={onActivity} />;
}

function ActiveSnapshots({ deployment, onActivity }: { deployment: Deployment; onActivity: () => void }) {
  const id = deployment.id;
  const toast = useToast();
  const [dialog, setDialog] = useState<DialogState>(null);
  const [restore, setRestore] = useState<Restore | null>(null);

  const settings = useResource(
    (signal) => api.getSettings(id, signal),
    [id],
    (s) => {
      const checking = s?.verification.lastVerification?.status;
      if (checking === 'queued' || checking === 'running') return BUSY_POLL_MS;
      return s?.enabled ? Math.max(IDLE_POLL_MS, parseDuration(s.interval) ?? 0) : IDLE_POLL_MS;
    },
  );
  const autoEvery = settings.data?.enabled ? parseDuration(settings.data.interval) : null;

  const list = useResource(
    (signal) => api.listSnapshots(id, signal),
    [id],
    (snaps) => {
      if (running(restore) || snaps?.some((s) => s.status === 'creating' || s.status === 'deleting')) return BUSY_POLL_MS;
      if (autoEvery !== null) return Math.min(Math.max(autoEvery, BUSY_POLL_MS), IDLE_POLL_MS);
      return IDLE_POLL_MS;
    },
  );

  // A restore started elsewhere (or before a reload) shows up here too.
  useEffect(() => {
    const ctl = new AbortController();
    api.listRestores(id, ctl.signal).then(
      (rs) => {
        const last = rs[0];
        if (last && (running(last) || (last.finishedAt && Date.now() - Date.parse(last.finishedAt) < RECENT_RESTORE_MS)))
          setRestore((cur) => cur ?? last);
      },
      () => undefined,
    );
    return () => ctl.abort();
  }, [id]);

  const { reload } = list;
  const onRestoreFinished = useCallback(
    (r: Restore) => {
      setRestore((cur) => (cur?.id === r.id ? r : cur));
      reload();
      onActivity();
    },
    [reload, onActivity],
  );

  const snapshots = list.data;
  const verification = settings.data?.verification ?? null;
  // When a snapshot appears, changes status or goes, the header (count, operation) follows.
  const signature = snapshots?.map((s) => `${s.id}:${s.status}`).join(',');
  const seenSignature = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (signature === undefined) return;
    if (seenSignature.current !== undefined && seenSignature.current !== signature) onActivity();
    seenSignature.current = signature;
  }, [signature, onActivity]);
  // A check that finishes may have marked snapshots damaged: the list follows.
  const checkState = verification?.lastVerification ? `${verification.lastVerification.id}:${verification.lastVerification.status}` : '';
  const seenCheck = useRef(checkState);
  useEffect(() => {
    if (seenCheck.current !== checkState) reload();
    seenCheck.current = checkState;
  }, [checkState, reload]);
  const stored = snapshots?.reduce((n, s) => n + (s.storedBytes ?? 0), 0) ?? 0;
  const manual = snapshots?.filter((s) => !s.automatic).length ?? 0;
  const automatic = snapshots?.filter((s) => s.automatic).length ?? 0;
  // Snapshots are taken, restored, cloned and deleted by the node: not while it is offline (the banner above says why).
  const noNode = nodeUnavailable(deployment);
  const createButton = (
    <button
      type="button"
      className="btn btn-primary"
      onClick={() => setDialog({ kind: 'create' })}
      disabled={noNode !== null}
      {...(noNode ? { title: noNode, 'aria-describedby': NODE_BANNER_ID } : {})}
    >
      <Icon name="camera" /> Create snapshot
    </button>
  );

  return (
    <div className="stack-lg">
      <Callout tone="info" title="Snapshot before risky changes" role="note">
        Take a snapshot before you update the SDL or run destructive operations such as schema migrations. If something goes wrong, restore
        it: the volumes go back to exactly that moment.
      </Callout>

      {restore && (
        <RestorePanel
          key={restore.id}
          deploymentId={id}
          initial={restore}
          snapshots={snapshots ?? []}
          onFinished={onRestoreFinished}
          onDismiss={() => setRestore(null)}
        />
      )}

      <div className="stats">
        <div className="stat">
          <span className="stat-label">Snapshots</span>
          <span className="stat-value">{snapshots ? snapshots.length : '—'}</span>
          <span className="stat-sub">
            {manual} manual · {automatic} automatic
          </span>
        </div>
        <div className="stat">
          <span className="stat-label">Storage used</span>
          <span className="stat-value" data-testid="snapshot-storage">
            {snapshots ? formatBytes(stored) : '—'}
          </span>
          <span className="stat-sub">after deduplication and compression</span>
        </div>
        <div className="stat">
          <span className="stat-label">Automatic snapshots</span>
          <span className="stat-value">{settings.data ? (settings.data.enabled ? `Every ${settings.data.interval}` : 'Off') : '—'}</span>
          <span className="stat-sub">
            {settings.data?.enabled ? (
              <>
                keep {settings.data.retention}
                {settings.data.nextRunAt && (
                  <>
                    {' '}
                    · next <RelativeTime iso={settings.data.nextRunAt} />
                  </>
                )}
              </>
            ) : (
              <Link to={paths.deployment(id, 'settings')}>Turn on in Settings</Link>
            )}
          </span>
        </div>
      </div>

      <section className="card card-flush" aria-labelledby="snap-list-title">
        <div className="card-head card-head-padded">
          <div>
            <h3 id="snap-list-title">Snapshots</h3>
            <p className="muted small">Newest first. Manual snapshots are never deleted automatically.</p>
          </div>
          {snapshots && snapshots.length > 0 && createButton}
        </div>
        {verification && snapshots && snapshots.length > 0 && (
          <VerificationLine
            deploymentId={id}
            summary={verification}
            onStarted={() => {
              settings.reload();
              list.reload();
            }}
          />
        )}
        {snapshots === undefined ? (
          list.error ? (
            <ErrorState error={list.error} onRetry={list.reload} title="Could not load the snapshots" />
          ) : (
            <LoadingCard rows={3} label="Loading snapshots" />
          )
        ) : snapshots.length === 0 ? (
          <EmptyState icon="camera" title="No snapshots yet" action={createButton}>
            A snapshot is a point-in-time copy of this deployment's volumes, kept on this node. Create one now, or turn on automatic
            snapshots in Settings.
          </EmptyState>
        ) : (
          <>
            {list.error !== null && (
              <div className="inline-error" role="alert">
                <Icon name="alert" size={14} /> Could not refresh: {errorMessage(list.error)}{' '}
                <button type="button" className="link-btn" onClick={list.reload}>
                  Retry
                </button>
              </div>
            )}
            <SnapshotTable
              snapshots={snapshots}
              actions={{
                deploymentId: id,
                restoreDisabled: running(restore),
                noNode,
                onRestore: (s) => setDialog({ kind: 'restore', snapshot: s }),
                onClone: (s) => setDialog({ kind: 'clone', snapshot: s }),
                onDelete: (s) => setDialog({ kind: 'delete', snapshot: s }),
              }}
            />
          </>
        )}
      </section>

      {dialog?.kind === 'create' && (
        <CreateSnapshotDialog
          deploymentId={id}
          onClose={() => setDialog(null)}
          onCreated={(s) => {
            setDialog(null);
            if (snapshots) list.set([s, ...snapshots.filter((x) => x.id !== s.id)]);
            list.reload();
            onActivity();
            toast(`Snapshot ${s.label ?? s.id} started.`, 'success');
          }}
        />
      )}
      {dialog?.kind === 'restore' && (
        <RestoreDialog
          deploymentId={id}
          snapshot={dialog.snapshot}
          onClose={() => setDialog(null)}
          onStarted={(r) => {
            setDialog(null);
            setRestore(r);
            list.reload();
            onActivity();
          }}
        />
      )}
      {dialog?.kind === 'delete' && (
        <DeleteSnapshotDialog
          deploymentId={id}
          snapshot={dialog.snapshot}
          onClose={() => setDialog(null)}
          onDeleted={() => {
            setDialog(null);
            list.reload();
            onActivity();
            toast('Snapshot deleted.', 'success');
          }}
        />
      )}
      {dialog?.kind === 'clone' && (
        <CloneDialog
          deploymentId={id}
          deploymentName={deployment.name}
          snapshot={dialog.snapshot}
          onClose={() => setDialog(null)}
          onCloned={(d) => {
            setDialog(null);
            toast(`Clone ${d.name} created; it starts with the snapshot's data.`, 'success');
            navigate(paths.deployment(d.id));
          }}
        />
      )}
    </div>
  );
}
