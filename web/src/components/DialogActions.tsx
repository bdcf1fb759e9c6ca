// DialogActions: the footer every dialog shares: Cancel, and the action that
// shows a spinner while it runs. Without onConfirm the action submits the
// dialog's form.
import { Spinner } from './Spinner';

interface Props {
  busy: boolean;
  onCancel: () => void;
  label: string;
  /** What the spinner says while busy ("Creating"). */
  busyLabel: string;
  tone?: 'primary' | 'danger';
  disabled?: boolean;
  onConfirm?: () => void;
  /** Which button takes the focus when the dialog opens. */
  autofocus?: 'cancel' | 'confirm';
}

export function DialogActions({ busy, onCancel, label, busyLabel, tone = 'primary', disabled = false, onConfirm, autofocus }: Props) {
  return (
    <div className="dialog-footer">
      <button
        type="button"
        className="btn btn-secondary"
        onClick={onCancel}
        disabled={busy}
        data-autofocus={autofocus === 'cancel' ? true : undefined}
      >
        Cancel
      </button>
      <button
        type={onConfirm ? 'button' : 'submit'}
        className={`btn btn-${tone}`}
        onClick={onConfirm}
        disabled={disabled || busy}
        data-autofocus={autofocus === 'confirm' ? true : undefined}
      >
        {busy && <Spinner label={busyLabel} size={14} />}
        {label}
      </button>
    </div>
  );
}
