/**
 * SdlUpdateCard: the deployment's SDL, read-only until Edit; saving updates
 * the deployment (services restart), by default after a before-update snapshot.
 */
import { type FormEvent, useId, useState } from 'react';
import { ApiError, api, errorMessage, type Deployment } from '../api';
import { NODE_BANNER_ID, nodeUnavailable } from '../nodes';
import { errorPath, sdlErrorLine } from '../sdl';
import { Callout } from './Callout';
import { Icon } from './Icon';
import { SdlEditor } from './SdlEditor';
import { SdlError } from './SdlError';
import { Spinner } from './Spinner';

export function SdlUpdateCard({ deployment, onUpdated }: { deployment: Deployment; onUpdated: (d: Deployment) => void }) {
  const id = useId();
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(deployment.sdl);
  const [snapshotFirst, setSnapshotFirst] = useState(true);
  const [busy, setBusy] = useState(false);
  const [sdlError, setSdlError] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const active = deployment.status === 'active';
  const noNode = nodeUnavailable(deployment);
  const noNodeProps = noNode ? { title: noNode, 'aria-describedby': NODE_BANNER_ID } : {};
  const path = sdlError ? errorPath(sdlError) : null;
  const line = path ? sdlErrorLine(text, path) : null;

  const start = () => {
    setText(deployment.sdl);
    setSdlError(null);
    setFormError(null);
    setEditing(true);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setSdlError(null);
    setFormError(null);
    try {
      onUpdated(await api.updateDeployment(deployment.id, text, snapshotFirst));
      setEditing(false);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'INVALID_SDL') setSdlError(err.message);
      else setFormError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-head">
        <div>
          <h3 id={`${id}-title`}>Configuration</h3>
          <p className="muted small">The SDL this deployment runs. Saving a change restarts the services.</p>
        </div>
        {active && !editing && (
          <button type="button" className="btn btn-secondary btn-sm" onClick={start} disabled={noNode !== null} {...noNodeProps}>
            <Icon name="edit" size={14} /> Update SDL
          </button>
        )}
      </div>
      {editing ? (
        <form onSubmit={(e) => void submit(e)} className="stack" noValidate>
          <Callout tone="info" title="Take a snapshot before you update">
            If the new version misbehaves or migrates data badly, restore the snapshot to get the volumes back as they are now.
          </Callout>
          <SdlEditor
            id={`${id}-sdl`}
            value={text}
            onChange={setText}
            errorLine={line}
            label="SDL"
            describedBy={sdlError ? `${id}-error` : undefined}
            minRows={12}
            maxRows={40}
          />
          {sdlError && <SdlError id={`${id}-error`} message={sdlError} line={line} />}
          <label className="check">
            <input type="checkbox" checked={snapshotFirst} onChange={(e) => setSnapshotFirst(e.target.checked)} />
            <span>
              <span className="check-label">Take a snapshot first</span>
              <span className="hint">A “before update” snapshot of the volumes, taken before the services restart.</span>
            </span>
          </label>
          {formError && (
            <Callout tone="danger" role="alert">
              {formError}
            </Callout>
          )}
          <div className="form-actions">
            <button type="button" className="btn btn-secondary" onClick={() => setEditing(false)} disabled={busy}>
              Cancel
            </button>
            <button
              type="submit"
              className="btn btn-primary"
              disabled={busy || text === deployment.sdl || noNode !== null}
              {...noNodeProps}
            >
              {busy && <Spinner label="Saving" size={14} />}
              Save and restart
            </button>
          </div>
        </form>
      ) : (
        <SdlEditor id={`${id}-view`} value={deployment.sdl} readOnly label="Current SDL" minRows={4} maxRows={14} />
      )}
    </section>
  );
}
