/** RestartDialog: confirms restarting the services (their volumes are kept). */
import { useState } from 'react';
import { api, errorMessage, type Deployment } from '../api';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';

export function RestartDialog({
  deployment,
  onClose,
  onRestarted,
}: {
  deployment: Deployment;
  onClose: () => void;
  onRestarted: (d: Deployment) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      onRestarted(await api.restartDeployment(deployment.id));
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };
  return (
    <Dialog
      title="Restart the services?"
      onClose={onClose}
      busy={busy}
      description={
        <p>
          Every service of <strong>{deployment.name}</strong> stops and starts again. Volume data is kept. Expect a few seconds of downtime.
        </p>
      }
    >
      {error && (
        <div className="dialog-body">
          <Callout tone="danger" role="alert">
            {error}
          </Callout>
        </div>
      )}
      <DialogActions
        busy={busy}
        onCancel={onClose}
        label="Restart"
        busyLabel="Restarting"
        onConfirm={() => void confirm()}
        autofocus="confirm"
      />
    </Dialog>
  );
}
