/** CloneDialog: names a new deployment whose volumes start from a snapshot, and creates it. */
import { type FormEvent, useId, useState } from 'react';
import { ApiError, api, errorMessage, type Deployment, type Snapshot } from '../api';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';
import { FieldError } from './FieldError';
import { SnapshotName } from './SnapshotName';

export function CloneDialog({
  deploymentId,
  deploymentName,
  snapshot,
  onClose,
  onCloned,
}: {
  deploymentId: string;
  deploymentName: string;
  snapshot: Snapshot;
  onClose: () => void;
  onCloned: (d: Deployment) => void;
}) {
  const id = useId();
  const [name, setName] = useState(`${deploymentName}-clone`);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setFormError(null);
    if (name.trim() === '') {
      setFieldError('Give the new deployment a name.');
      return;
    }
    setBusy(true);
    try {
      onCloned(await api.cloneSnapshot(deploymentId, snapshot.id, name.trim()));
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'INVALID_NAME' || err.code === 'INVALID_REQUEST')) setFieldError(err.message);
      else setFormError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <Dialog
      title="Clone into a new deployment"
      onClose={onClose}
      busy={busy}
      description={<p>A new deployment with the same SDL starts with this snapshot's data. The original deployment is not touched.</p>}
    >
      <form onSubmit={(e) => void submit(e)} noValidate>
        <div className="dialog-body">
          <div className="restore-target">
            <SnapshotName snapshot={snapshot} />
            <span className="muted">{snapshot.size}</span>
          </div>
          <div className="field">
            <label htmlFor={`${id}-name`}>Name of the new deployment</label>
            <input
              id={`${id}-name`}
              className="input"
              value={name}
              onChange={(e) => {
                setName(e.target.value);
                setFieldError(null);
              }}
              autoComplete="off"
              spellCheck={false}
              aria-invalid={fieldError ? true : undefined}
              aria-describedby={fieldError ? `${id}-error` : undefined}
              data-autofocus
            />
            <FieldError id={`${id}-error`} message={fieldError} />
          </div>
          {formError && (
            <Callout tone="danger" role="alert">
              {formError}
            </Callout>
          )}
        </div>
        <DialogActions busy={busy} onCancel={onClose} label="Create clone" busyLabel="Cloning" />
      </form>
    </Dialog>
  );
}
