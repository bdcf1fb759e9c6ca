/**
 * RestoreDialog: the warning before a restore, where each of the snapshot's
 * volumes goes when the deployment's volumes changed since (or why it can't
 * be restored), the safety snapshot choice, and Confirm.
 */
import { useEffect, useId, useState } from 'react';
import { api, errorMessage, isAbort, type Restore, type RestorePlan, type Snapshot, type VolumePair } from '../api';
import { formatExact } from '../format';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';
import { RelativeTime } from './RelativeTime';
import { SnapshotName } from './SnapshotName';

const HOW: Record<VolumePair['match'], string> = { name: 'same name', mount: 'same mount path', position: 'same place in the SDL' };

/** VolumeChanges lists the plan when it is not simply "every volume into itself". */
function VolumeChanges({ plan }: { plan: RestorePlan }) {
  if (plan.refusal) {
    return (
      <Callout tone="danger" role="alert" title="This snapshot can't be restored into the deployment as it is now">
        <p>{plan.refusal.message}</p>
      </Callout>
    );
  }
  const moved = plan.volumes.filter((p) => p.from !== p.to);
  if (moved.length === 0 && plan.untouchedVolumes.length === 0) return null;
  return (
    <Callout tone="info" title="The deployment's volumes changed since this snapshot">
      <ul className="plain-list" aria-label="Volume mapping">
        {plan.volumes.map((p) => (
          <li key={p.to}>
            {p.from === p.to ? (
              <>
                <code>{p.to}</code> is restored
              </>
            ) : (
              <>
                <code>{p.from}</code> is restored into <code>{p.to}</code> ({HOW[p.match]})
              </>
            )}
          </li>
        ))}
        {plan.untouchedVolumes.map((v) => (
          <li key={v}>
            <code>{v}</code> is not in the snapshot: it keeps its current data
          </li>
        ))}
      </ul>
    </Callout>
  );
}

export function RestoreDialog({
  deploymentId,
  snapshot,
  onClose,
  onStarted,
}: {
  deploymentId: string;
  snapshot: Snapshot;
  onClose: () => void;
  onStarted: (r: Restore) => void;
}) {
  const id = useId();
  const [safety, setSafety] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [plan, setPlan] = useState<RestorePlan | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    api.restorePlan(deploymentId, snapshot.id, ctl.signal).then(setPlan, (err: unknown) => {
      // The restore itself answers with the same reasons: without a plan, Confirm still explains.
      if (!isAbort(err)) setPlan(null);
    });
    return () => ctl.abort();
  }, [deploymentId, snapshot.id]);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      onStarted(await api.restoreSnapshot(deploymentId, snapshot.id, safety));
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <Dialog
      title="Restore this snapshot?"
      tone="danger"
      onClose={onClose}
      busy={busy}
      description={<p>Restoring puts the deployment's volumes back to the moment this snapshot was taken.</p>}
    >
      <div className="dialog-body">
        <div className="restore-target">
          <SnapshotName snapshot={snapshot} />
          <span className="muted" title={formatExact(snapshot.createdAt)}>
            taken <RelativeTime iso={snapshot.createdAt} /> · {snapshot.size}
          </span>
        </div>
        <Callout tone="warning" title="This replaces the current volume data">
          <ul className="plain-list">
            <li>All current data in the volumes is replaced by the snapshot's data.</li>
            <li>Data written since the snapshot was taken will be lost.</li>
            <li>The container restarts with the restored data (a few seconds of downtime).</li>
          </ul>
        </Callout>
        {plan && <VolumeChanges plan={plan} />}
        <label className="check" htmlFor={`${id}-safety`}>
          <input
            id={`${id}-safety`}
            type="checkbox"
            checked={safety}
            onChange={(e) => setSafety(e.target.checked)}
            aria-describedby={`${id}-safety-hint`}
          />
          <span>
            <span className="check-label">Take a safety snapshot of the current state first</span>
            <span className="hint" id={`${id}-safety-hint`}>
              {safety ? 'Recommended: lets you undo this restore.' : 'Without it, the current data cannot be recovered after the restore.'}
            </span>
          </span>
        </label>
        {error && (
          <Callout tone="danger" role="alert">
            {error}
          </Callout>
        )}
      </div>
      <DialogActions
        busy={busy}
        onCancel={onClose}
        label="Confirm restore"
        busyLabel="Starting restore"
        tone="danger"
        disabled={plan?.refusal != null}
        onConfirm={() => void confirm()}
        autofocus="cancel"
      />
    </Dialog>
  );
}
