/**
 * NodeOfflineBanner: a deployment whose node is offline says so above its
 * tabs: what is still shown (from the catalogue) and what waits for the node.
 */
import type { Deployment } from '../api';
import { formatClock } from '../format';
import { useNow } from '../hooks/useNow';
import { NODE_BANNER_ID, nodeUnavailable } from '../nodes';
import { Callout } from './Callout';
import { RelativeTime } from './RelativeTime';

export function NodeOfflineBanner({ deployment: d }: { deployment: Deployment }) {
  const now = useNow(10_000);
  if (!d.node || nodeUnavailable(d) === null) return null;
  const seen = d.node.lastHeartbeatAt;
  return (
    <div className="health-banner" id={NODE_BANNER_ID} data-testid="node-offline-banner">
      <Callout tone="warning" role="status" title={`The node ${d.node.name} is offline`}>
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
    </div>
  );
}
