/**
 * SnapshotPage: one snapshot of a deployment, read without restoring it:
 * its files (FileBrowser) and what changed against another snapshot or the
 * live volumes (DiffView). `?against=` in the URL keeps the comparison.
 */
import { ApiError, api } from '../api';
import { DiffView, LIVE } from '../components/DiffView';
import { EmptyState } from '../components/EmptyState';
import { ErrorState } from '../components/ErrorState';
import { FileBrowser } from '../components/FileBrowser';
import { Icon } from '../components/Icon';
import { Link } from '../components/Link';
import { LoadingCard } from '../components/LoadingCard';
import { RelativeTime } from '../components/RelativeTime';
import { SnapshotName } from '../components/SnapshotName';
import { StatusBadge } from '../components/StatusBadge';
import { TabNav } from '../components/TabNav';
import { useResource } from '../hooks/useResource';
import { navigate, paths } from '../router';

export type SnapshotView = 'files' | 'compare';

export function SnapshotPage({
  id,
  snapshotId,
  view,
  against,
}: {
  id: string;
  snapshotId: string;
  view: SnapshotView;
  against: string | null;
}) {
  const dep = useResource((signal) => api.getDeployment(id, signal), [id]);
  const list = useResource((signal) => api.listSnapshots(id, signal), [id]);
  const snapshot = list.data?.find((s) => s.id === snapshotId);

  const breadcrumb = (
    <nav className="breadcrumb" aria-label="Breadcrumb">
      <Link to={paths.deployment(id, 'snapshots')}>
        <Icon name="arrowLeft" size={14} /> {dep.data ? `${dep.data.name} · Snapshots` : 'Snapshots'}
      </Link>
    </nav>
  );

  let body;
  const loadError = list.error ?? dep.error;
  if (loadError && !snapshot) {
    const notFound = loadError instanceof ApiError && loadError.status === 404;
    body = notFound ? (
      <div className="card">
        <EmptyState icon="box" title="Deployment not found">
          There is no deployment {id} in your account.
        </EmptyState>
      </div>
    ) : (
      <ErrorState error={loadError} onRetry={list.reload} title="Could not load this snapshot" />
    );
  } else if (!list.data) {
    body = <LoadingCard rows={3} label="Loading snapshot" />;
  } else if (!snapshot || snapshot.status !== 'ready') {
    body = (
      <div className="card">
        <EmptyState
          icon="camera"
          title={snapshot ? 'This snapshot is not ready' : 'Snapshot not found'}
          action={
            <Link to={paths.deployment(id, 'snapshots')} className="btn btn-primary">
              See the snapshots
            </Link>
          }
        >
          {snapshot
            ? `Snapshot ${snapshot.label ?? snapshot.id} is ${snapshot.status}; its files can be read once it is ready.`
            : `This deployment has no snapshot ${snapshotId}. It may have been deleted.`}
        </EmptyState>
      </div>
    );
  } else {
    body = (
      <>
        <TabNav
          label="Snapshot sections"
          current={view}
          tabs={[
            { id: 'files', label: 'Files', href: paths.snapshot(id, snapshotId) },
            { id: 'compare', label: 'Compare', href: paths.snapshot(id, snapshotId, 'compare', against ?? LIVE) },
          ]}
        />
        {view === 'files' ? (
          <FileBrowser key={snapshotId} deploymentId={id} snapshotId={snapshotId} />
        ) : (
          <DiffView
            deploymentId={id}
            snapshot={snapshot}
            snapshots={list.data}
            against={against ?? LIVE}
            onAgainst={(a) => navigate(paths.snapshot(id, snapshotId, 'compare', a), { replace: true })}
          />
        )}
      </>
    );
  }

  return (
    <main className="page">
      {breadcrumb}
      <div className="page-head">
        <div className="dep-title">
          <div className="title-row">
            <h1>{snapshot ? <SnapshotName snapshot={snapshot} showId={false} /> : 'Snapshot'}</h1>
            {snapshot && <StatusBadge status={snapshot.status} />}
          </div>
          <div className="meta-row">
            <span className="meta">
              <code>{snapshotId}</code>
            </span>
            {snapshot && (
              <span className="meta">
                taken <RelativeTime iso={snapshot.createdAt} /> · {snapshot.size}
              </span>
            )}
          </div>
        </div>
      </div>
      {body}
    </main>
  );
}
