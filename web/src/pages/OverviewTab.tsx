/** OverviewTab: status, services and volumes, the SDL, and the restart/update/close actions. */
import { useState } from 'react';
import type { Deployment } from '../api';
import { Callout } from '../components/Callout';
import { CloseDeploymentDialog } from '../components/CloseDeploymentDialog';
import { Icon } from '../components/Icon';
import { Link } from '../components/Link';
import { RelativeTime } from '../components/RelativeTime';
import { RestartDialog } from '../components/RestartDialog';
import { SdlUpdateCard } from '../components/SdlUpdateCard';
import { ServiceCard } from '../components/ServiceCard';
import { Spinner } from '../components/Spinner';
import { formatBytes, operationLabel } from '../format';
import { NODE_BANNER_ID, nodeUnavailable } from '../nodes';
import { paths } from '../router';
import { useToast } from '../toast';

export function OverviewTab({ deployment: d, onChange }: { deployment: Deployment; onChange: (d: Deployment) => void }) {
  const toast = useToast();
  const [dialog, setDialog] = useState<'restart' | 'close' | null>(null);
  const active = d.status === 'active';
  const snaps = d.snapshots;
  // Restart, update and close run on the node: not while it is offline (the banner above says why).
  const noNode = nodeUnavailable(d);
  const noNodeProps = noNode ? { title: noNode, 'aria-describedby': NODE_BANNER_ID } : {};

  return (
    <div className="stack-lg">
      {!active && (
        <Callout tone="info" title="This deployment is closed">
          Closed {d.closedAt ? <RelativeTime iso={d.closedAt} /> : ''}. Its services were stopped, and its volumes and snapshots deleted.
        </Callout>
      )}
      {d.operation && (
        <div className="callout callout-info" role="status">
          <Spinner label="In progress" />
          <div className="callout-body">
            <p className="callout-title">{operationLabel(d.operation)}…</p>
            <div className="callout-text">This page updates by itself when it is done.</div>
          </div>
        </div>
      )}
      <div className="overview-grid">
        <section className="card" aria-labelledby="services-title">
          <div className="card-head">
            <h3 id="services-title">Services</h3>
            {active && (
              <button
                type="button"
                className="btn btn-secondary btn-sm"
                onClick={() => setDialog('restart')}
                disabled={d.operation !== null || noNode !== null}
                {...noNodeProps}
              >
                <Icon name="refresh" size={14} /> Restart
              </button>
            )}
          </div>
          <div className="services">
            {d.services.map((s) => (
              <ServiceCard key={s.name} service={s} closed={!active} />
            ))}
          </div>
        </section>
        <section className="card" aria-labelledby="snapshots-title">
          <div className="card-head">
            <h3 id="snapshots-title">Snapshots</h3>
          </div>
          <dl className="facts">
            <div>
              <dt>Snapshots</dt>
              <dd>{snaps ? snaps.count : active ? '—' : 'deleted'}</dd>
            </div>
            <div>
              <dt>Last snapshot</dt>
              <dd>{snaps?.lastSnapshotAt ? <RelativeTime iso={snaps.lastSnapshotAt} /> : 'never'}</dd>
            </div>
            <div>
              <dt>Storage used</dt>
              <dd>{snaps ? formatBytes(snaps.storedBytes) : '—'}</dd>
            </div>
          </dl>
          {active && (
            <Link to={paths.deployment(d.id, 'snapshots')} className="btn btn-secondary btn-block">
              <Icon name="camera" size={15} /> Manage snapshots
            </Link>
          )}
        </section>
      </div>
      <SdlUpdateCard
        key={d.updatedAt}
        deployment={d}
        onUpdated={(next) => {
          onChange(next);
          toast('Update started: the services restart with the new SDL.', 'success');
        }}
      />
      {active && (
        <section className="card danger-zone" aria-labelledby="danger-title">
          <div className="danger-row">
            <div>
              <h3 id="danger-title">Close deployment</h3>
              <p className="muted small">Stops the services and deletes their volumes and every snapshot. This cannot be undone.</p>
            </div>
            <button
              type="button"
              className="btn btn-danger-outline"
              onClick={() => setDialog('close')}
              disabled={noNode !== null}
              {...noNodeProps}
            >
              <Icon name="power" size={15} /> Close deployment
            </button>
          </div>
        </section>
      )}
      {dialog === 'restart' && (
        <RestartDialog
          deployment={d}
          onClose={() => setDialog(null)}
          onRestarted={(next) => {
            setDialog(null);
            onChange(next);
            toast('Restart requested.', 'success');
          }}
        />
      )}
      {dialog === 'close' && (
        <CloseDeploymentDialog
          deployment={d}
          onClose={() => setDialog(null)}
          onClosed={(next) => {
            setDialog(null);
            onChange(next);
            toast(`${next.name} is closed.`, 'success');
          }}
        />
      )}
    </div>
  );
}
