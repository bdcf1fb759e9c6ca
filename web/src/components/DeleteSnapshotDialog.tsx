/** DeleteSnapshotDialog: confirms deleting a snapshot (its space is reclaimed in the background). */
import { useState } from 'react';
import { api, errorMessage, type Snapshot } from '../api';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';
import { SnapshotName } from './SnapshotName';

export function DeleteSnapshotDialog({
  deploymentId,
  snapshot,
  onClose,
  onDeleted,
}: {
  deploymentId: string;
  snapshot: Snapshot;
  onClose: () => void;
  onDeleted: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.deleteSnapshot(deploymentId, snapshot.id);
      onDeleted();
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };
  return (
    <Dialog
      title="Delete this snapshot?"
      tone="danger"
      onClose={onClose}
      busy={busy}
      description={<p>You will no longer be able to restore or clone it. This cannot be undone.</p>}
    >
      <div className="dialog-body">
        <div className="restore-target">
          <SnapshotName snapshot={snapshot} />
          <span className="muted">{snapshot.size}</span>
        </div>
        {error && (
          <Callout tone="danger" role="alert">
            {error}
          </Callout>
        )}
      </div>
      <DialogActions
        busy={busy}
        onCancel={onClose}
        label="Delete snapshot"
        busyLabel="Deleting"
        tone="danger"
        onConfirm={() => void confirm()}
        autofocus="cancel"
      />
    </Dialog>
  );
}
