/**
 * RestoreDialog: the warning before a restore, where each of the snapshot's
 * volumes goes when the deployment's volumes changed since (or why it can't
 * be restored), the safety snapshot choice, and Confirm. "Selected files and
 * folders" restores only the paths chosen in RestorePathPicker, in place or
 * next to the live data under a new folder; the confirmation then lists
 * what happens to each path, from the restore plan.
 */
import { useEffect, useId, useState } from 'react';
import { api, errorMessage, isAbort, type Restore, type RestorePlan, type RestoreSelection, type Snapshot, type VolumePair } from '../api';
import { formatExact } from '../format';
import { Callout } from './Callout';
import { Dialog } from './Dialog';
import { DialogActions } from './DialogActions';
import { RelativeTime } from './RelativeTime';
import { RestorePathPicker } from './RestorePathPicker';
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

/** PathChanges lists exactly what a restore of selected paths does to each. */
function PathChanges({ plan }: { plan: RestorePlan }) {
  const paths = plan.paths ?? [];
  if (plan.mode === 'alongside') {
    return (
      <Callout tone="info" title="Restored next to the live data">
        <ul className="plain-list" aria-label="What is restored">
          {paths.map((p) => (
            <li key={p.path}>
              <code>{p.path}</code> → <code>{p.target}</code>
            </li>
          ))}
          <li>Nothing is replaced and the services keep running.</li>
        </ul>
      </Callout>
    );
  }
  return (
    <Callout tone="warning" title="This replaces the chosen paths with the snapshot's">
      <ul className="plain-list" aria-label="What is replaced">
        {paths.map((p) => (
          <li key={p.path}>
            <code>{p.target}</code>{' '}
            {p.action === 'create'
              ? 'is created (it is not there now)'
              : p.type === 'dir'
                ? "is replaced: the folder becomes exactly the snapshot's"
                : 'is replaced'}
            {(p.removed.length > 0 || p.removedMore) && (
              <ul className="plain-list removed-list">
                {p.removed.map((r) => (
                  <li key={r}>
                    removed, not in the snapshot: <code>{r}</code>
                  </li>
                ))}
                {p.removedMore && <li>… and more entries not in the snapshot</li>}
              </ul>
            )}
          </li>
        ))}
        <li>Everything else is left as it is.</li>
        <li>The container restarts with the restored data (a few seconds of downtime).</li>
      </ul>
    </Callout>
  );
}

const today = () => new Date().toISOString().slice(0, 10);

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
  const [scope, setScope] = useState<'all' | 'some'>('all');
  const [paths, setPaths] = useState<string[]>([]);
  const [mode, setMode] = useState<'replace' | 'alongside'>('replace');
  const [into, setInto] = useState(() => `restored-${today()}`);
  const [planError, setPlanError] = useState<string | null>(null);

  const selection: RestoreSelection | undefined =
    scope === 'some' && paths.length > 0 ? { paths, mode, ...(mode === 'alongside' ? { into } : {}) } : undefined;
  const selectionKey = JSON.stringify(selection ?? null);

  useEffect(() => {
    const ctl = new AbortController();
    setPlan(null);
    setPlanError(null);
    if (scope === 'some' && !selection) return () => ctl.abort();
    api.restorePlan(deploymentId, snapshot.id, ctl.signal, selection).then(
      (p) => {
        if (!ctl.signal.aborted) setPlan(p);
      },
      (err: unknown) => {
        // The restore itself answers with the same reasons: without a plan, Confirm still explains.
        // A superseded request (the selection changed) says nothing, whatever it failed with.
        if (isAbort(err) || ctl.signal.aborted) return;
        setPlan(null);
        if (selection) setPlanError(errorMessage(err));
      },
    );
    return () => ctl.abort();
  }, [deploymentId, snapshot.id, scope, selectionKey]);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      onStarted(await api.restoreSnapshot(deploymentId, snapshot.id, safety, selection));
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
        <fieldset className="choice-group">
          <legend>What to restore</legend>
          <label className="check">
            <input type="radio" name={`${id}-scope`} checked={scope === 'all'} onChange={() => setScope('all')} />
            <span className="check-label">Everything</span>
          </label>
          <label className="check">
            <input type="radio" name={`${id}-scope`} checked={scope === 'some'} onChange={() => setScope('some')} />
            <span className="check-label">Selected files and folders</span>
          </label>
        </fieldset>
        {scope === 'some' && (
          <>
            <RestorePathPicker deploymentId={deploymentId} snapshotId={snapshot.id} selected={paths} onChange={setPaths} />
            <fieldset className="choice-group">
              <legend>Where</legend>
              <label className="check">
                <input type="radio" name={`${id}-mode`} checked={mode === 'replace'} onChange={() => setMode('replace')} />
                <span className="check-label">Replace in place</span>
              </label>
              <label className="check">
                <input type="radio" name={`${id}-mode`} checked={mode === 'alongside'} onChange={() => setMode('alongside')} />
                <span className="check-label">Restore next to the live data into folder…</span>
              </label>
              {mode === 'alongside' && (
                <input
                  className="input"
                  aria-label="Folder to restore into, inside the volume"
                  value={into}
                  onChange={(e) => setInto(e.target.value)}
                />
              )}
            </fieldset>
          </>
        )}
        {scope === 'all' && (
          <Callout tone="warning" title="This replaces the current volume data">
            <ul className="plain-list">
              <li>All current data in the volumes is replaced by the snapshot's data.</li>
              <li>Data written since the snapshot was taken will be lost.</li>
              <li>The container restarts with the restored data (a few seconds of downtime).</li>
            </ul>
          </Callout>
        )}
        {plan && scope === 'some' && plan.paths && <PathChanges plan={plan} />}
        {planError && (
          <Callout tone="danger" role="alert">
            {planError}
          </Callout>
        )}
        {plan && <VolumeChanges plan={scope === 'some' ? { ...plan, untouchedVolumes: [] } : plan} />}
        {!(scope === 'some' && mode === 'alongside') && (
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
                {safety
                  ? 'Recommended: lets you undo this restore.'
                  : 'Without it, the current data cannot be recovered after the restore.'}
              </span>
            </span>
          </label>
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
        label="Confirm restore"
        busyLabel="Starting restore"
        tone="danger"
        disabled={plan?.refusal != null || (scope === 'some' && (!selection || planError !== null || plan === null))}
        onConfirm={() => void confirm()}
        autofocus="cancel"
      />
    </Dialog>
  );
}
