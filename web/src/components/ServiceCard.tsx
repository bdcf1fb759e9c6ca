/** ServiceCard: one service: its image, state, and volumes with mount, size and usage. */
import type { Service } from '../api';
import { RelativeTime } from './RelativeTime';
import { StatusBadge } from './StatusBadge';
import { UsageBar } from './UsageBar';

export function ServiceCard({ service, closed = false }: { service: Service; closed?: boolean }) {
  return (
    <article className="service" data-service={service.name}>
      <div className="service-head">
        <div>
          <h4>{service.name}</h4>
          <code className="muted-code">{service.image}</code>
        </div>
        <div className="service-state">
          <StatusBadge status={service.state} />
          {service.state === 'running' && service.startedAt && (
            <span className="sub">
              started <RelativeTime iso={service.startedAt} />
            </span>
          )}
        </div>
      </div>
      {service.volumes.length === 0 ? (
        <p className="muted small">No persistent volume: nothing of this service is snapshotted.</p>
      ) : (
        <ul className="volumes">
          {service.volumes.map((v) => (
            <li key={v.name} className="volume" data-volume={v.name}>
              <div className="volume-id">
                <span className="volume-name">{v.name}</span>
                <code className="muted-code">{v.mount}</code>
              </div>
              {closed ? (
                <span className="muted small">deleted with the deployment</span>
              ) : (
                <UsageBar used={v.usedBytes} size={v.sizeBytes} />
              )}
            </li>
          ))}
        </ul>
      )}
    </article>
  );
}
