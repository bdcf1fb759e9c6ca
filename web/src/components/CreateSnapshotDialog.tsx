/** CreateSnapshotDialog: asks for an optional label and starts a manual snapshot. */
import { type FormEvent, useId, useState } from 'react';
import { ApiError, api, errorMessage, type Snapshot } from '../api';
import { LABEL_MAX, labelError } from '../validate';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';
import { FieldError } from './FieldError';

export function CreateSnapshotDialog({
  deploymentId,
  onClose,
  onCreated,
}: {
  deploymentId: string;
  onClose: () => void;
  onCreated: (s: Snapshot) => void;
}) {
  const id = useId();
  const [label, setLabel] = useState('');
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const length = [...label].length;
  const localError = labelError(label);
  const shownError = localError ?? fieldError;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setFormError(null);
    if (localError) {
      setFieldError(localError);
      return;
    }
    setBusy(true);
    try {
      const trimmed = label.trim();
      onCreated(await api.createSnapshot(deploymentId, trimmed === '' ? null : trimmed));
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'INVALID_LABEL' || err.code === 'INVALID_REQUEST')) setFieldError(err.message);
      else setFormError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <Dialog
      title="Create snapshot"
      description="Capture the current state of every volume of this deployment. It runs in the background; the services keep running."
      onClose={onClose}
      busy={busy}
    >
      <form onSubmit={(e) => void submit(e)} noValidate>
        <div className="dialog-body">
          <div className="field">
            <div className="field-label-row">
              <label htmlFor={`${id}-label`}>
                Label <span className="optional">optional</span>
              </label>
              <span className={`char-count${length > LABEL_MAX ? ' is-over' : ''}`} aria-live="polite">
                {length}/{LABEL_MAX}
              </span>
            </div>
            <input
              id={`${id}-label`}
              className="input"
              value={label}
              onChange={(e) => {
                setLabel(e.target.value);
                setFieldError(null);
              }}
              placeholder="e.g. before-migration"
              autoComplete="off"
              spellCheck={false}
              aria-invalid={shownError ? true : undefined}
              aria-describedby={shownError ? `${id}-error` : `${id}-hint`}
              data-autofocus
            />
            {shownError ? (
              <FieldError id={`${id}-error`} message={shownError} />
            ) : (
              <p className="hint" id={`${id}-hint`}>
                Up to {LABEL_MAX} characters. Name the moment, so you can find it later.
              </p>
            )}
          </div>
          {formError && (
            <Callout tone="danger" role="alert">
              {formError}
            </Callout>
          )}
        </div>
        <DialogActions busy={busy} onCancel={onClose} label="Create snapshot" busyLabel="Creating" />
      </form>
    </Dialog>
  );
}
