/** NotFoundPage: a path the dashboard does not know. */
import { EmptyState } from '../components/EmptyState';
import { Link } from '../components/Link';
import { paths } from '../router';

export function NotFoundPage() {
  return (
    <main className="page">
      <div className="card">
        <EmptyState
          icon="alert"
          title="Page not found"
          action={
            <Link to={paths.deployments()} className="btn btn-primary">
              Go to deployments
            </Link>
          }
        >
          There is nothing at this address.
        </EmptyState>
      </div>
    </main>
  );
}
