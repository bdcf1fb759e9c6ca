/** StatusBadge: a status as a coloured pill with its name (colour never carries meaning alone). */

type Tone = 'green' | 'amber' | 'red' | 'blue' | 'grey';

const TONES: Record<string, Tone> = {
  active: 'green',
  running: 'green',
  ready: 'green',
  completed: 'green',
  delivered: 'green',
  creating: 'amber',
  pending: 'amber',
  restoring: 'amber',
  swapping: 'blue',
  paused: 'blue',
  deleting: 'grey',
  stopped: 'grey',
  closed: 'grey',
  removed: 'grey',
  unknown: 'grey',
  missing: 'red',
  failed: 'red',
  online: 'green',
  draining: 'amber',
  offline: 'red',
  damaged: 'red',
};

const BUSY = new Set(['creating', 'pending', 'restoring', 'swapping', 'deleting']);

export function StatusBadge({ status, label }: { status: string; label?: string }) {
  const tone = TONES[status] ?? 'grey';
  const text = label ?? status.charAt(0).toUpperCase() + status.slice(1);
  return (
    <span className={`badge badge-${tone}${BUSY.has(status) ? ' is-busy' : ''}`} data-status={status}>
      <span className="badge-dot" aria-hidden="true" />
      {text}
    </span>
  );
}
