/** CloseDeploymentDialog: closing deletes volumes and snapshots, so the user types the name to confirm. */
import { type FormEvent, useId, useState } from 'react';
import { api, errorMessage, type Deployment } from '../api';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';

export function CloseDeploymentDialog({
  deployment,
  onClose,
  onClosed,
}: {
  deployment: Deployment;
  onClose: () => void;
  onClosed: (d: Deployment) => void;
}) {
  const id = useId();
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const matches = typed === deployment.name;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!matches) return;
    setBusy(true);
    setError(null);
    try {
      onClosed(await api.closeDeployment(deployment.id));
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <Dialog title="Close this deployment?" tone="danger" onClose={onClose} busy={busy}>
      <form onSubmit={(e) => void submit(e)} noValidate>
        <div className="dialog-body">
          <Callout tone="danger" title="This cannot be undone">
            The services stop, and every volume and every snapshot of <strong>{deployment.name}</strong> is deleted. Clone a snapshot first
            if you want to keep its data.
          </Callout>
          <div className="field">
            <label htmlFor={`${id}-name`}>
              Type <strong className="mono">{deployment.name}</strong> to confirm
            </label>
            <input
              id={`${id}-name`}
              className="input mono"
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
              autoComplete="off"
              spellCheck={false}
              data-autofocus
            />
          </div>
          {error && (
            <Callout tone="danger" role="alert">
              {error}
            </Callout>
          )}
        </div>
        <DialogActions busy={busy} onCancel={onClose} label="Close deployment" busyLabel="Closing" tone="danger" disabled={!matches} />
      </form>
    </Dialog>
  );
}
