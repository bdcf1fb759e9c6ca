/** LoadingCard: a card of skeleton lines shown while a page's data loads. */
import { Skeleton } from './Skeleton';

export function LoadingCard({ rows = 4, label = 'Loading' }: { rows?: number; label?: string }) {
  return (
    <div className="card loading-card" role="status" aria-label={label} aria-busy="true">
      <Skeleton width="30%" height={18} />
      {Array.from({ length: rows }, (_, i) => (
        <div className="skeleton-row" key={i}>
          <Skeleton width="22%" />
          <Skeleton width="14%" />
          <Skeleton width="18%" />
          <Skeleton width="12%" />
        </div>
      ))}
    </div>
  );
}
