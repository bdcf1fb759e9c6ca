/** ErrorState: a load that failed, why, and a way to try again. */
import { errorMessage } from '../api';
import { Icon } from './Icon';

export function ErrorState({ error, onRetry, title = 'Something went wrong' }: { error: unknown; onRetry: () => void; title?: string }) {
  return (
    <div className="error-state" role="alert">
      <div className="empty-icon is-danger">
        <Icon name="alert" size={24} />
      </div>
      <h3>{title}</h3>
      <p>{errorMessage(error)}</p>
      <button type="button" className="btn btn-secondary" onClick={onRetry}>
        <Icon name="refresh" /> Try again
      </button>
    </div>
  );
}
