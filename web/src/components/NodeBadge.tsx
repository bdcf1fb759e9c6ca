/** NodeBadge: the node a deployment runs on: its name and a status badge (online, offline, draining). */
import type { DeploymentNode } from '../api';
import { StatusBadge } from './StatusBadge';

export function NodeBadge({ node }: { node: DeploymentNode }) {
  return (
    <span className="node-ref" data-node={node.name} data-node-status={node.status}>
      <span className="node-name" title={node.id}>
        {node.name}
      </span>
      <StatusBadge status={node.status} />
    </span>
  );
}
