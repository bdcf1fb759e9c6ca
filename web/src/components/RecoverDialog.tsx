/**
 * RecoverDialog: network mode, a deployment whose node is offline. Which
 * snapshot the deployment starts from again (only those copied off-node;
 * the newest by default), its date and size, that data written after it is
 * lost, that the deployment then runs on another node, and what happens to
 * the old node's copy if it comes back. Confirm asks the control plane to
 * recover it (POST …/recover); the page then shows the progress.
 */
import { useEffect, useId, useState } from 'react';
import { type Deployment, type Recovery, type Snapshot, api, errorMessage, isAbort } from '../api';
import { formatExact } from '../format';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';
import { RelativeTime } from './RelativeTime';
import { SnapshotName } from './SnapshotName';

/** The snapshots a deployment can be recovered from: ready, with a copy that reads copied; newest first. */
export function recoverable(snapshots: readonly Snapshot[]): Snapshot[] {
  return snapshots
    .filter((s) => s.status === 'ready' && s.offsite?.status === 'copied')
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
}

export function RecoverDialog({
  deployment: d,
  onClose,
  onStarted,
}: {
  deployment: Deployment;
  onClose: () => void;
  onStarted: (r: { deployment: Deployment; recovery: Recovery }) => void;
}) {
  const id = useId();
  const [choices, setChoices] = useState<Snapshot[] | null>(null);
  const [chosen, setChosen] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const node = d.node?.name ?? 'its node';

  useEffect(() => {
    const ctl = new AbortController();
    api.listSnapshots(d.id, ctl.signal).then(
      (all) => {
        const ok = recoverable(all);
        setChoices(ok);
        setChosen(ok[0]?.id ?? null);
      },
      (err: unknown) => {
        if (!isAbort(err)) setError(errorMessage(err));
      },
    );
    return () => ctl.abort();
  }, [d.id]);

  const confirm = async () => {
    if (!chosen) return;
    setBusy(true);
    setError(null);
    try {
      onStarted(await api.recoverDeployment(d.id, chosen));
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  const snapshot = choices?.find((s) => s.id === chosen) ?? null;
  return (
    <Dialog
      title="Recover on another node?"
      tone="danger"
      onClose={onClose}
      busy={busy}
      description={
        <p>
          The node <strong>{node}</strong> is offline. Kova can start this deployment again on another node, from a snapshot copied off the
          node.
        </p>
      }
    >
      <div className="dialog-body">
        {choices === null && !error && <p className="muted">Looking for snapshots copied off the node…</p>}
        {choices !== null && choices.length === 0 && (
          <Callout tone="danger" role="alert" title="No snapshot of this deployment was copied off the node">
            There is nothing to recover it from. It can only come back with its node.
          </Callout>
        )}
        {choices !== null && choices.length > 0 && (
          <fieldset className="choice-group">
            <legend>Start again from</legend>
            {choices.map((s, i) => (
              <label className="check" key={s.id}>
                <input type="radio" name={`${id}-snapshot`} checked={chosen === s.id} onChange={() => setChosen(s.id)} />
                <span>
                  <span className="check-label">
                    <SnapshotName snapshot={s} />
                  </span>
                  <span className="hint" title={formatExact(s.createdAt)}>
                    {i === 0 ? 'Newest copy · ' : ''}taken <RelativeTime iso={s.createdAt} /> · {formatExact(s.createdAt)} · {s.size}
                  </span>
                </span>
              </label>
            ))}
          </fieldset>
        )}
        {snapshot && (
          <Callout tone="warning" title="What happens">
            <ul className="plain-list" aria-label="What recovering does">
              <li>
                The volumes start from this snapshot, taken <RelativeTime iso={snapshot.createdAt} />. Data written after it is lost.
              </li>
              <li>The deployment runs on another node that Kova chooses, with the same id, SDL and settings.</li>
              <li>Its snapshots copied off the node are listed again and can be restored there.</li>
              <li>
                If <strong>{node}</strong> comes back, it stops this deployment and no longer runs it. The data it had stays on that node's
                disk until the operator removes it.
              </li>
            </ul>
          </Callout>
        )}
        {error && (
          <Callout tone="danger" role="alert">
            {error}
          </Callout>
        )}
      </div>
      <DialogActions
        busy={busy}
        onCancel={onClose}
        label="Recover on another node"
        busyLabel="Starting recovery"
        tone="danger"
        disabled={!snapshot}
        onConfirm={() => void confirm()}
        autofocus="cancel"
      />
    </Dialog>
  );
}
