/**
 * SnapshotHealthBanner: a deployment whose last automatic snapshot failed,
 * or whose automatic snapshot is overdue, says so above its tabs, with a
 * way to the Snapshots and Settings tabs.
 */
import type { Deployment } from '../api';
import { paths } from '../router';
import { Callout } from './Callout';
import { Link } from './Link';
import { RelativeTime } from './RelativeTime';

export function SnapshotHealthBanner({ deployment: d }: { deployment: Deployment }) {
  const h = d.snapshotHealth;
  if (!h || h.status === 'ok') return null;
  const overdue = h.status === 'overdue';
  return (
    <div className="health-banner" data-testid="snapshot-health-banner" data-status={h.status}>
      <Callout
        tone={overdue ? 'warning' : 'danger'}
        role="alert"
        title={overdue ? 'An automatic snapshot is overdue' : 'The last automatic snapshot failed'}
        action={
          <Link to={paths.deployment(d.id, overdue ? 'settings' : 'snapshots')} className="btn btn-secondary btn-sm">
            {overdue ? 'Check the schedule' : 'See snapshots'}
          </Link>
        }
      >
        {overdue ? (
          <>
            It was due {h.since && <RelativeTime iso={h.since} />} and has not started. It may be waiting behind another operation, or the
            server was down. Your data is not protected by a recent automatic snapshot until one is taken.
          </>
        ) : (
          <>
            Automatic snapshots have been failing
            {h.since && (
              <>
                {' '}
                since <RelativeTime iso={h.since} />
              </>
            )}
            {h.message ? (
              <>
                : <span className="health-message">{h.message}</span>
              </>
            ) : (
              '.'
            )}
          </>
        )}
      </Callout>
    </div>
  );
}
