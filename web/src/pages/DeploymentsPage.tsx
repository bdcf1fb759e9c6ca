/** DeploymentsPage: every deployment of the user, or what to do when there is none. */
import { api } from '../api';
import { DeploymentRow } from '../components/DeploymentRow';
import { EmptyState } from '../components/EmptyState';
import { ErrorState } from '../components/ErrorState';
import { Icon } from '../components/Icon';
import { Link } from '../components/Link';
import { LoadingCard } from '../components/LoadingCard';
import { useResource } from '../hooks/useResource';
import { paths } from '../router';

export function DeploymentsPage() {
  const list = useResource(
    (signal) => api.listDeployments(signal),
    [],
    (ds) => (ds?.some((d) => d.operation !== null) ? 2000 : 15_000),
  );
  const deployments = list.data ? [...list.data].sort((a, b) => Number(a.status === 'closed') - Number(b.status === 'closed')) : undefined;
  const withNodes = deployments?.some((d) => d.node !== null) ?? false;
  const newButton = (
    <Link to={paths.newDeployment()} className="btn btn-primary">
      <Icon name="plus" /> New deployment
    </Link>
  );

  return (
    <main className="page">
      <div className="page-head">
        <div>
          <h1>Deployments</h1>
          <p className="muted">
            {withNodes
              ? 'Services with persistent volumes, the node each runs on, and the snapshots that protect them.'
              : 'Services with persistent volumes on this node, and the snapshots that protect them.'}
          </p>
        </div>
        {deployments && deployments.length > 0 && newButton}
      </div>
      {deployments === undefined ? (
        list.error ? (
          <ErrorState error={list.error} onRetry={list.reload} title="Could not load your deployments" />
        ) : (
          <LoadingCard rows={3} label="Loading deployments" />
        )
      ) : deployments.length === 0 ? (
        <div className="card">
          <EmptyState icon="box" title="No deployments yet" action={newButton}>
            Create a deployment from an SDL file: its services start on this node, and every persistent volume can be snapshotted and
            restored from here.
          </EmptyState>
        </div>
      ) : (
        <div className="table-wrap card card-flush">
          <table className="table table-cards" aria-label="Deployments">
            <thead>
              <tr>
                <th scope="col">Deployment</th>
                <th scope="col">Status</th>
                {withNodes && <th scope="col">Node</th>}
                <th scope="col">Services</th>
                <th scope="col">Volume usage</th>
                <th scope="col">Last snapshot</th>
              </tr>
            </thead>
            <tbody>
              {deployments.map((d) => (
                <DeploymentRow key={d.id} deployment={d} showNode={withNodes} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}
