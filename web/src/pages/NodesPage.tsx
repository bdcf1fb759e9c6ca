/**
 * NodesPage: the nodes a control plane places deployments on (admins, in
 * network mode): status, last heartbeat, disk, volumes, running services
 * and deployments of each, refreshed every few seconds.
 */
import { ApiError, type NodeSummary, api, errorMessage } from '../api';
import { EmptyState } from '../components/EmptyState';
import { ErrorState } from '../components/ErrorState';
import { Icon } from '../components/Icon';
import { LoadingCard } from '../components/LoadingCard';
import { RelativeTime } from '../components/RelativeTime';
import { StatusBadge } from '../components/StatusBadge';
import { UsageBar } from '../components/UsageBar';
import { formatBytes } from '../format';
import { useResource } from '../hooks/useResource';

/** How often the page asks again: about a heartbeat's pace, so a node going or coming back shows within seconds. */
const POLL_MS = 3000;

export function NodesPage() {
  const nodes = useResource(
    (signal) => api.listNodes(signal),
    [],
    () => POLL_MS,
  );
  const list = nodes.data ? [...nodes.data].sort((a, b) => a.name.localeCompare(b.name)) : undefined;
  const refused = nodes.error instanceof ApiError && (nodes.error.status === 403 || nodes.error.status === 404) ? nodes.error : null;
  const count = (status: string) => list?.filter((n) => n.status === status).length ?? 0;

  return (
    <main className="page">
      <div className="page-head">
        <div>
          <h1>Nodes</h1>
          <p className="muted">
            The machines deployments run on. A node that misses its heartbeats is offline: its deployments stay listed, but nothing can be
            done to them until it returns.
          </p>
        </div>
      </div>
      {list === undefined ? (
        refused ? (
          <div className="card">
            <EmptyState icon="server" title={refused.status === 403 ? 'Only admins see the nodes' : 'This server has no nodes'}>
              {refused.status === 403
                ? 'Ask an administrator of this Kova control plane if you need to know where deployments run.'
                : 'It runs deployments itself (kova serve): there is no node to list.'}
            </EmptyState>
          </div>
        ) : nodes.error ? (
          <ErrorState error={nodes.error} onRetry={nodes.reload} title="Could not load the nodes" />
        ) : (
          <LoadingCard rows={3} label="Loading nodes" />
        )
      ) : list.length === 0 ? (
        <div className="card">
          <EmptyState icon="server" title="No nodes yet">
            Add one with <code>kova nodes add NAME --database …</code> and start <code>kova node</code> on it with the token it prints.
          </EmptyState>
        </div>
      ) : (
        <>
          <p className="node-summary" data-testid="node-summary">
            {list.length} node{list.length === 1 ? '' : 's'} · {count('online')} online
            {count('draining') > 0 && <> · {count('draining')} draining</>}
            {count('offline') > 0 && <> · {count('offline')} offline</>}
          </p>
          {nodes.error !== null && (
            <div className="inline-error" role="alert">
              <Icon name="alert" size={14} /> Could not refresh: {errorMessage(nodes.error)}
            </div>
          )}
          <div className="table-wrap card card-flush">
            <table className="table table-cards" aria-label="Nodes">
              <thead>
                <tr>
                  <th scope="col">Node</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last heartbeat</th>
                  <th scope="col">Disk</th>
                  <th scope="col">Volumes</th>
                  <th scope="col" className="cell-num">
                    Running services
                  </th>
                  <th scope="col" className="cell-num">
                    Deployments
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((n) => (
                  <NodeRow key={n.id} node={n} />
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </main>
  );
}

function NodeRow({ node: n }: { node: NodeSummary }) {
  const c = n.capacity;
  return (
    <tr data-node={n.name} data-status={n.status}>
      <td data-label="Node" className="cell-name">
        <span className="node-row-name">{n.name}</span>
        <code className="snap-id">{n.id}</code>
      </td>
      <td data-label="Status" className="cell-status">
        <StatusBadge status={n.status} />
        {c?.health === 'degraded' && <span className="sub cell-warning">disk degraded</span>}
      </td>
      <td data-label="Last heartbeat" className="cell-nowrap">
        {n.lastHeartbeatAt ? <RelativeTime iso={n.lastHeartbeatAt} past /> : <span className="muted">never</span>}
      </td>
      <td data-label="Disk" className="cell-usage">
        {c ? (
          <>
            <UsageBar used={c.diskTotalBytes - c.diskFreeBytes} size={c.diskTotalBytes} />
            <span className="sub" data-testid="disk-free">
              {formatBytes(c.diskFreeBytes)} free
            </span>
          </>
        ) : (
          <span className="muted">not reported</span>
        )}
      </td>
      <td data-label="Volumes" className="cell-usage" title="Bytes in use in the volumes / the sum of their SDL sizes">
        {c ? <UsageBar used={c.volumeUsedBytes} size={c.volumeReservedBytes} /> : <span className="muted">not reported</span>}
      </td>
      <td data-label="Running services" className="cell-num" data-testid="running-services">
        {c ? c.runningServices : '—'}
      </td>
      <td data-label="Deployments" className="cell-num" data-testid="deployments">
        {n.deployments}
      </td>
    </tr>
  );
}
