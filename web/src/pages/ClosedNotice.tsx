/** ClosedNotice: what a closed deployment no longer has. */
import { EmptyState } from '../components/EmptyState';
import { Link } from '../components/Link';
import { paths } from '../router';

export function ClosedNotice({ what }: { what: string }) {
  return (
    <div className="card">
      <EmptyState
        icon="database"
        title="This deployment is closed"
        action={
          <Link to={paths.newDeployment()} className="btn btn-secondary">
            New deployment
          </Link>
        }
      >
        Closing it deleted its volumes and snapshots, so there are no {what} any more.
      </EmptyState>
    </div>
  );
}
