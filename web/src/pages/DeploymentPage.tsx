/** DeploymentPage: one deployment: its header and the Overview, Snapshots and Settings tabs. */
import { ApiError, api } from '../api';
import { CopyButton } from '../components/CopyButton';
import { EmptyState } from '../components/EmptyState';
import { ErrorState } from '../components/ErrorState';
import { Icon } from '../components/Icon';
import { Link } from '../components/Link';
import { LoadingCard } from '../components/LoadingCard';
import { NodeBadge } from '../components/NodeBadge';
import { NodeOfflineBanner } from '../components/NodeOfflineBanner';
import { RelativeTime } from '../components/RelativeTime';
import { Skeleton } from '../components/Skeleton';
import { SnapshotHealthBanner } from '../components/SnapshotHealthBanner';
import { StatusBadge } from '../components/StatusBadge';
import { TabNav } from '../components/TabNav';
import { operationLabel } from '../format';
import { useResource } from '../hooks/useResource';
import { paths } from '../router';
import { OverviewTab } from './OverviewTab';
import { SettingsTab } from './SettingsTab';
import { SnapshotsTab } from './SnapshotsTab';

export type DeploymentTab = 'overview' | 'snapshots' | 'settings';

const NODE_POLL_MS = 4000;

export function DeploymentPage({ id, tab }: { id: string; tab: DeploymentTab }) {
  const dep = useResource(
    (signal) => api.getDeployment(id, signal),
    [id],
    // A deployment on a node is polled more often: the node's going offline or coming back shows within seconds.
    (d) => (d?.operation ? (tab === 'overview' ? 2000 : 4000) : d?.node ? NODE_POLL_MS : 15_000),
  );
  const d = dep.data;

  const breadcrumb = (
    <nav className="breadcrumb" aria-label="Breadcrumb">
      <Link to={paths.deployments()}>
        <Icon name="arrowLeft" size={14} /> Deployments
      </Link>
    </nav>
  );

  if (!d) {
    const notFound = dep.error instanceof ApiError && dep.error.status === 404;
    return (
      <main className="page">
        {breadcrumb}
        {notFound ? (
          <div className="card">
            <EmptyState
              icon="box"
              title="Deployment not found"
              action={
                <Link to={paths.deployments()} className="btn btn-primary">
                  See your deployments
                </Link>
              }
            >
              There is no deployment {id} in your account. It may belong to someone else, or the link is wrong.
            </EmptyState>
          </div>
        ) : dep.error ? (
          <ErrorState error={dep.error} onRetry={dep.reload} title="Could not load this deployment" />
        ) : (
          <>
            <div className="page-head" aria-hidden="true">
              <div className="stack-sm">
                <Skeleton width={220} height={28} />
                <Skeleton width={300} />
              </div>
            </div>
            <LoadingCard rows={3} label="Loading deployment" />
          </>
        )}
      </main>
    );
  }

  const count = d.snapshots?.count ?? null;
  return (
    <main className="page">
      {breadcrumb}
      <div className="page-head">
        <div className="dep-title">
          <div className="title-row">
            <h1>{d.name}</h1>
            <StatusBadge status={d.status} />
            {d.operation && <StatusBadge status="pending" label={`${operationLabel(d.operation)}…`} />}
          </div>
          <div className="meta-row">
            <span className="meta">
              <code>{d.id}</code>
              <CopyButton value={d.id} label="Copy deployment id" />
            </span>
            <span className="meta">
              created <RelativeTime iso={d.createdAt} />
            </span>
            {d.node && (
              <span className="meta" data-testid="deployment-node">
                on node <NodeBadge node={d.node} />
              </span>
            )}
            {d.clonedFrom && (
              <span className="meta">
                cloned from snapshot <code>{d.clonedFrom}</code>
              </span>
            )}
          </div>
        </div>
      </div>
      <NodeOfflineBanner deployment={d} onChange={dep.set} />
      <SnapshotHealthBanner deployment={d} />
      <TabNav
        label="Deployment sections"
        current={tab}
        tabs={[
          { id: 'overview', label: 'Overview', href: paths.deployment(d.id) },
          { id: 'snapshots', label: 'Snapshots', href: paths.deployment(d.id, 'snapshots'), count: d.status === 'active' ? count : null },
          { id: 'settings', label: 'Settings', href: paths.deployment(d.id, 'settings') },
        ]}
      />
      {tab === 'overview' && <OverviewTab deployment={d} onChange={dep.set} />}
      {tab === 'snapshots' && <SnapshotsTab deployment={d} onActivity={dep.reload} />}
      {tab === 'settings' && <SettingsTab deployment={d} />}
    </main>
  );
}
