/** RestoreDialog: the warning before a restore, the safety snapshot choice, and Confirm. */
import { useId, useState } from 'react';
import { api, errorMessage, type Restore, type Snapshot } from '../api';
import { formatExact } from '../format';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';
import { RelativeTime } from './RelativeTime';
import { SnapshotName } from './SnapshotName';

export function RestoreDialog({ deploymentId, snapshot, onClose, onStarted }: { deploymentId: string; snapshot: Snapshot; onClose: () => void; onStarted: (r: Restore) => void }) {
  const id = useId();
  const [safety, setSafety] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

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
    <Dialog title="Restore this snapshot?" tone="danger" onClose={onClose} busy={busy} description={<p>Restoring puts the deployment's volumes back to the moment this snapshot was taken.</p>}>
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
        <label className="check" htmlFor={`${id}-safety`}>
          <input id={`${id}-safety`} type="checkbox" checked={safety} onChange={(e) => setSafety(e.target.checked)} aria-describedby={`${id}-safety-hint`} />
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
      <DialogActions busy={busy} onCancel={onClose} label="Confirm restore" busyLabel="Starting restore" tone="danger" onConfirm={() => void confirm()} autofocus="cancel" />
    </Dialog>
  );
}
