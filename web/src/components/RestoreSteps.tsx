/** RestoreSteps: a restore's stages (queued → writing data → swapping → restarted), each done, current, upcoming or failed. */
import type { RestoreStatus } from '../api';
import { Icon } from './Icon';

const STEPS: { status: RestoreStatus; label: string; hint: string }[] = [
  { status: 'pending', label: 'Queued', hint: 'waiting to start; the safety snapshot is taken here' },
  { status: 'restoring', label: 'Writing data', hint: 'the snapshot is staged next to the live volume; services keep running' },
  { status: 'swapping', label: 'Swapping', hint: 'services stopped, the staged data replaces the volume' },
  { status: 'completed', label: 'Restarted', hint: 'services run with the restored data' },
];

export function RestoreSteps({ status, failedAt }: { status: RestoreStatus; failedAt: RestoreStatus | null }) {
  const reached = status === 'failed' ? (failedAt ?? 'pending') : status;
  const at = STEPS.findIndex((s) => s.status === reached);
  return (
    <ol className="steps">
      {STEPS.map((s, i) => {
        const state =
          status === 'failed' && i === at ? 'failed' : i < at || status === 'completed' ? 'done' : i === at ? 'current' : 'upcoming';
        return (
          <li key={s.status} className={`step is-${state}`} aria-current={state === 'current' ? 'step' : undefined} title={s.hint}>
            <span className="step-marker" aria-hidden="true">
              {state === 'done' ? <Icon name="check" size={12} /> : state === 'failed' ? <Icon name="x" size={12} /> : i + 1}
            </span>
            <span className="step-label">{s.label}</span>
            <span className="sr-only">({state})</span>
          </li>
        );
      })}
    </ol>
  );
}
