/** NewDeploymentPage: a name and an SDL; the server's validation error is shown at the field it names. */
import { type FormEvent, useId, useState } from 'react';
import { ApiError, api, errorMessage } from '../api';
import { Callout } from '../components/Callout';
import { FieldError } from '../components/FieldError';
import { Icon } from '../components/Icon';
import { Link } from '../components/Link';
import { SdlEditor } from '../components/SdlEditor';
import { SdlError } from '../components/SdlError';
import { Spinner } from '../components/Spinner';
import { EXAMPLE_SDL, errorPath, sdlErrorLine } from '../sdl';
import { navigate, paths } from '../router';
import { useToast } from '../toast';

export function NewDeploymentPage() {
  const id = useId();
  const toast = useToast();
  const [name, setName] = useState('');
  const [sdl, setSdl] = useState(EXAMPLE_SDL);
  const [busy, setBusy] = useState(false);
  const [sdlError, setSdlError] = useState<string | null>(null);
  const [nameError, setNameError] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const path = sdlError ? errorPath(sdlError) : null;
  const line = path ? sdlErrorLine(sdl, path) : null;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSdlError(null);
    setNameError(null);
    setFormError(null);
    if (sdl.trim() === '') {
      setSdlError('invalid SDL: the SDL is empty');
      return;
    }
    setBusy(true);
    try {
      const d = await api.createDeployment(sdl, name.trim() === '' ? undefined : name.trim());
      toast(`Deployment ${d.name} created; its services are starting.`, 'success');
      navigate(paths.deployment(d.id));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'INVALID_SDL') setSdlError(err.message);
      else if (err instanceof ApiError && err.code === 'INVALID_NAME') setNameError(err.message);
      else setFormError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <main className="page">
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={paths.deployments()}>
          <Icon name="arrowLeft" size={14} /> Deployments
        </Link>
      </nav>
      <div className="page-head">
        <div>
          <h1>New deployment</h1>
          <p className="muted">Describe the services and their persistent volumes in SDL (version 2.0).</p>
        </div>
      </div>
      <div className="split">
        <form className="card stack" onSubmit={(e) => void submit(e)} noValidate aria-label="New deployment">
          <div className="field">
            <label htmlFor={`${id}-name`}>
              Name <span className="optional">optional</span>
            </label>
            <input
              id={`${id}-name`}
              className="input"
              value={name}
              onChange={(e) => {
                setName(e.target.value);
                setNameError(null);
              }}
              placeholder="defaults to the first service's name"
              autoComplete="off"
              spellCheck={false}
              aria-invalid={nameError ? true : undefined}
              aria-describedby={nameError ? `${id}-name-error` : undefined}
            />
            <FieldError id={`${id}-name-error`} message={nameError} />
          </div>
          <div className="field">
            <div className="field-label-row">
              <label htmlFor={`${id}-sdl`}>SDL</label>
              <button type="button" className="btn btn-ghost btn-sm" onClick={() => setSdl(EXAMPLE_SDL)} disabled={sdl === EXAMPLE_SDL}>
                Reset to example
              </button>
            </div>
            <SdlEditor
              id={`${id}-sdl`}
              value={sdl}
              onChange={(v) => {
                setSdl(v);
              }}
              errorLine={line}
              describedBy={sdlError ? `${id}-sdl-error` : undefined}
              minRows={20}
              maxRows={40}
            />
          </div>
          {sdlError && <SdlError id={`${id}-sdl-error`} message={sdlError} line={line} />}
          {formError && (
            <Callout tone="danger" role="alert">
              {formError}
            </Callout>
          )}
          <div className="form-actions">
            <Link to={paths.deployments()} className="btn btn-secondary">
              Cancel
            </Link>
            <button type="submit" className="btn btn-primary" disabled={busy}>
              {busy && <Spinner label="Creating" size={14} />}
              Create deployment
            </button>
          </div>
        </form>
        <aside className="card help-card" aria-label="SDL reference">
          <h3>What goes in the SDL</h3>
          <dl className="help-list">
            <dt>
              <code>services.&lt;name&gt;</code>
            </dt>
            <dd>
              Each service: <code>image</code>, and optionally <code>command</code>, <code>args</code>, <code>env</code>,{' '}
              <code>expose</code>.
            </dd>
            <dt>
              <code>params.storage.&lt;volume&gt;.mount</code>
            </dt>
            <dd>Where a volume is mounted in the service, e.g. /data.</dd>
            <dt>
              <code>profiles.compute.…storage</code>
            </dt>
            <dd>
              Each volume's <code>name</code> and <code>size</code>. Only volumes with <code>attributes.persistent: true</code> are kept and
              snapshotted.
            </dd>
            <dt>
              <code>params.snapshot.pre / post</code>
            </dt>
            <dd>Optional commands run in the service around each snapshot (e.g. a database checkpoint).</dd>
          </dl>
          <p className="muted small">Errors name the field they are about, like services.web.image, and the editor marks its line.</p>
        </aside>
      </div>
    </main>
  );
}
