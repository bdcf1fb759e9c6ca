/** DeploymentRow: one deployment in the list: name, status, its node (network mode), services, volume usage, last snapshot. */
import type { Deployment } from '../api';
import { operationLabel } from '../format';
import { paths } from '../router';
import { Link } from './Link';
import { NodeBadge } from './NodeBadge';
import { RelativeTime } from './RelativeTime';
import { StatusBadge } from './StatusBadge';
import { UsageBar } from './UsageBar';

/** `showNode`: the list has a Node column (some deployment runs on a node). */
export function DeploymentRow({ deployment: d, showNode }: { deployment: Deployment; showNode: boolean }) {
  const volumes = d.services.flatMap((s) => s.volumes);
  const size = volumes.reduce((n, v) => n + v.sizeBytes, 0);
  const known = volumes.filter((v) => v.usedBytes !== null);
  const used = known.length === 0 ? null : known.reduce((n, v) => n + (v.usedBytes ?? 0), 0);
  const closed = d.status === 'closed';
  return (
    <tr className={closed ? 'is-closed' : undefined} data-deployment-id={d.id}>
      <td data-label="Deployment" className="cell-name">
        <Link to={paths.deployment(d.id)} className="row-link">
          {d.name}
        </Link>
        <code className="snap-id">{d.id}</code>
      </td>
      <td data-label="Status" className="cell-status">
        <StatusBadge status={d.status} />
        {d.operation && <span className="sub op">{operationLabel(d.operation)}…</span>}
      </td>
      {showNode && (
        <td data-label="Node" className="cell-node">
          {d.node ? <NodeBadge node={d.node} /> : <span className="muted">—</span>}
        </td>
      )}
      <td data-label="Services">
        <ul className="chips">
          {d.services.map((s) => (
            <li key={s.name} className={`chip chip-${closed ? 'removed' : s.state}`} title={`${s.name}: ${s.state}`}>
              <span className="chip-dot" aria-hidden="true" />
              {s.name}
            </li>
          ))}
        </ul>
      </td>
      <td data-label="Volumes" className="cell-usage">
        {closed ? (
          <span className="muted">deleted</span>
        ) : volumes.length === 0 ? (
          <span className="muted">none</span>
        ) : (
          <UsageBar used={used} size={size} />
        )}
      </td>
      <td data-label="Last snapshot">
        {d.snapshots?.lastSnapshotAt ? (
          <RelativeTime iso={d.snapshots.lastSnapshotAt} />
        ) : (
          <span className="muted">{closed ? '—' : 'never'}</span>
        )}
        {d.snapshots && d.snapshots.count > 0 && (
          <span className="sub">
            {d.snapshots.count} snapshot{d.snapshots.count === 1 ? '' : 's'}
          </span>
        )}
      </td>
    </tr>
  );
}
