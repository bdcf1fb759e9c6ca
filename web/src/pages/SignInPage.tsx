/** SignInPage: paste an API key; it is checked against the server, then kept in this browser. */
import { type FormEvent, useId, useState } from 'react';
import { ApiError, api, errorMessage, type Me } from '../api';
import { Callout } from '../components/Callout';
import { FieldError } from '../components/FieldError';
import { Spinner } from '../components/Spinner';

export function SignInPage({ message, onSignedIn }: { message: string | null; onSignedIn: (key: string, me: Me) => void }) {
  const id = useId();
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const token = key.trim();
    if (token === '') {
      setError('Paste your API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const me = await api.me({ token });
      onSignedIn(token, { user: me.user, server: me.server });
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'This API key was not accepted: it is unknown, malformed or revoked.'
          : errorMessage(err),
      );
      setBusy(false);
    }
  };

  return (
    <main className="signin">
      <div className="signin-card">
        <div className="signin-brand">
          <span className="brand-mark brand-mark-lg" aria-hidden="true">
            K
          </span>
          <h1>Sign in to Kova</h1>
          <p className="muted">Deployments and their volume snapshots on this node.</p>
        </div>
        {message && (
          <Callout tone="warning" role="alert">
            {message}
          </Callout>
        )}
        <form onSubmit={(e) => void submit(e)} className="stack" noValidate>
          <div className="field">
            <label htmlFor={`${id}-key`}>API key</label>
            <input
              id={`${id}-key`}
              className="input mono"
              type="password"
              value={key}
              onChange={(e) => {
                setKey(e.target.value);
                setError(null);
              }}
              placeholder="kova_…"
              autoComplete="off"
              spellCheck={false}
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? `${id}-error` : `${id}-hint`}
              autoFocus
            />
            {error ? (
              <FieldError id={`${id}-error`} message={error} />
            ) : (
              <p className="hint" id={`${id}-hint`}>
                Kept in this browser only, and sent only to this server.
              </p>
            )}
          </div>
          <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
            {busy && <Spinner label="Signing in" size={14} />}
            Sign in
          </button>
        </form>
        <p className="signin-help">
          No key yet? The operator's first key is in <code>admin.key</code> in the data directory. Create one for yourself with{' '}
          <code>kova keys create --user &lt;name&gt;</code>.
        </p>
      </div>
    </main>
  );
}
