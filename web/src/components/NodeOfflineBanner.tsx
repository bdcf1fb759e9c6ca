/**
 * NodeOfflineBanner: a deployment whose node is offline says so above its
 * tabs: what is still shown (from the catalogue) and what waits for the node,
 * with "Recover on another node" (RecoverDialog). While a recovery runs, it
 * says where and what is happening instead, until the services run.
 */
import { useState } from 'react';
import type { Deployment } from '../api';
import { formatClock } from '../format';
import { useNow } from '../hooks/useNow';
import { NODE_BANNER_ID, nodeUnavailable } from '../nodes';
import { useToast } from '../toast';
import { Callout } from './Callout';
import { RecoverDialog } from './RecoverDialog';
import { RelativeTime } from './RelativeTime';
import { Spinner } from './Spinner';

export function NodeOfflineBanner({ deployment: d, onChange }: { deployment: Deployment; onChange?: (d: Deployment) => void }) {
  const now = useNow(10_000);
  const toast = useToast();
  const [recovering, setRecovering] = useState(false);
  if (d.node && d.status === 'active' && d.operation === 'recover') {
    return (
      <div className="health-banner" data-testid="recovery-banner">
        <Callout tone="info" role="status" title={`Recovering on node ${d.node.name}`}>
          <Spinner size={14} label="Recovering" /> Pulling the snapshots from the off-node copy, restoring the volumes and starting the
          services.
        </Callout>
      </div>
    );
  }
  if (!d.node || nodeUnavailable(d) === null) return null;
  const seen = d.node.lastHeartbeatAt;
  return (
    <div className="health-banner" id={NODE_BANNER_ID} data-testid="node-offline-banner">
      <Callout
        tone="warning"
        role="status"
        title={`The node ${d.node.name} is offline`}
        action={
          onChange && (
            <button type="button" className="btn btn-secondary" onClick={() => setRecovering(true)}>
              Recover on another node
            </button>
          )
        }
      >
        The node <strong>{d.node.name}</strong>{' '}
        {seen ? (
          <>
            has not been seen since {formatClock(seen, now)} (<RelativeTime iso={seen} past />)
          </>
        ) : (
          'has not been seen yet'
        )}
        ; its snapshots are listed from the catalogue, but operations that need the node are unavailable until it returns.
      </Callout>
      {recovering && onChange && (
        <RecoverDialog
          deployment={d}
          onClose={() => setRecovering(false)}
          onStarted={(r) => {
            setRecovering(false);
            onChange(r.deployment);
            toast(`Recovery started on node ${r.recovery.toNode.name}.`, 'success');
          }}
        />
      )}
    </div>
  );
}
