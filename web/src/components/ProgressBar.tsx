/** ProgressBar: done/total as a bar; indeterminate (animated) when the total is unknown. */
import { formatBytes, percent } from '../format';

export function ProgressBar({ done, total, label }: { done: number; total: number | null; label: string }) {
  const pct = percent(done, total);
  const text = total === null ? `${formatBytes(done)}` : `${formatBytes(done)} of ${formatBytes(total)}`;
  return (
    <div className="progress">
      <div
        className={`progress-track${pct === null ? ' is-indeterminate' : ''}`}
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct === null ? undefined : Math.round(pct)}
        aria-valuetext={text}
      >
        <div className="progress-fill" style={pct === null ? undefined : { width: `${pct}%` }} />
      </div>
      <span className="progress-text">{pct === null ? text : `${Math.round(pct)}% · ${text}`}</span>
    </div>
  );
}
