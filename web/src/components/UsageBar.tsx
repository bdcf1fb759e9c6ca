/** UsageBar: how much of a volume is used, as a thin bar and "used / size". */
import { formatBytes } from '../format';

export function UsageBar({ used, size }: { used: number | null; size: number }) {
  const pct = used === null || size <= 0 ? 0 : Math.min(100, (used / size) * 100);
  const tone = pct >= 90 ? ' is-danger' : pct >= 75 ? ' is-warning' : '';
  return (
    <div className="usage">
      <div className="usage-text">
        {used === null ? <span className="muted">usage unknown</span> : <span>{formatBytes(used)}</span>}
        <span className="muted"> / {formatBytes(size)}</span>
      </div>
      <div className={`usage-track${tone}`} aria-hidden="true">
        <div className="usage-fill" style={{ width: `${Math.max(pct, used ? 1 : 0)}%` }} />
      </div>
    </div>
  );
}
