/**
 * App: the session (sign in, sign out, a 401 anywhere signs out with a
 * message), toasts, and which page the path shows.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, api, type Me, onUnauthorized, setToken, storedToken } from './api';
import { AppHeader } from './components/AppHeader';
import { ErrorState } from './components/ErrorState';
import { Spinner } from './components/Spinner';
import { Toaster } from './components/Toaster';
import { DeploymentPage } from './pages/DeploymentPage';
import { DeploymentsPage } from './pages/DeploymentsPage';
import { NewDeploymentPage } from './pages/NewDeploymentPage';
import { NodesPage } from './pages/NodesPage';
import { NotFoundPage } from './pages/NotFoundPage';
import { SnapshotPage } from './pages/SnapshotPage';
import { SignInPage } from './pages/SignInPage';
import { WebhooksPage } from './pages/WebhooksPage';
import { match, usePath } from './router';
import { type Session, SessionContext } from './session';
import { type Toast, ToastContext, type ToastTone } from './toast';

type Auth =
  | { state: 'checking' }
  | { state: 'unreachable'; error: unknown }
  | { state: 'signed-out'; message: string | null }
  | { state: 'signed-in'; me: Me };

const TOAST_MS = 4500;

export function App() {
  const path = usePath();
  const [auth, setAuth] = useState<Auth>(() => (storedToken() ? { state: 'checking' } : { state: 'signed-out', message: null }));
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextToast = useRef(1);
  const [attempt, setAttempt] = useState(0);

  const signOut = useCallback((message?: string) => {
    setToken(null);
    setAuth({ state: 'signed-out', message: message ?? null });
  }, []);

  useEffect(() => onUnauthorized((message) => signOut(message)), [signOut]);

  // A key kept from an earlier visit is checked once on load.
  useEffect(() => {
    if (!storedToken()) return;
    const ctl = new AbortController();
    api.me({ signal: ctl.signal }).then(
      (me) => setAuth({ state: 'signed-in', me: { user: me.user, server: me.server } }),
      (err: unknown) => {
        if (ctl.signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) return; // onUnauthorized signed out
        setAuth({ state: 'unreachable', error: err });
      },
    );
    return () => ctl.abort();
  }, [attempt]);

  const dismiss = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);
  const show = useCallback(
    (message: string, tone: ToastTone = 'info') => {
      const id = nextToast.current++;
      setToasts((ts) => [...ts.slice(-2), { id, message, tone }]);
      setTimeout(() => dismiss(id), TOAST_MS);
    },
    [dismiss],
  );

  const session = useMemo<Session | null>(() => (auth.state === 'signed-in' ? { me: auth.me, signOut } : null), [auth, signOut]);

  let body;
  if (auth.state === 'checking') {
    body = (
      <div className="center-screen">
        <Spinner label="Checking your API key" size={24} />
      </div>
    );
  } else if (auth.state === 'unreachable') {
    body = (
      <main className="page page-narrow">
        <ErrorState
          error={auth.error}
          title="Could not reach Kova"
          onRetry={() => {
            setAuth({ state: 'checking' });
            setAttempt((n) => n + 1);
          }}
        />
        <p className="center muted small">
          <button type="button" className="link-btn" onClick={() => signOut()}>
            Sign in with another key
          </button>
        </p>
      </main>
    );
  } else if (auth.state === 'signed-out' || !session) {
    body = (
      <SignInPage
        message={auth.state === 'signed-out' ? auth.message : null}
        onSignedIn={(key, me) => {
          setToken(key);
          setAuth({ state: 'signed-in', me });
        }}
      />
    );
  } else {
    const route = match(path);
    body = (
      <SessionContext.Provider value={session}>
        <a href="#content" className="skip-link">
          Skip to content
        </a>
        <AppHeader path={path} />
        <div id="content">
          {route.page === 'deployments' && <DeploymentsPage />}
          {route.page === 'new-deployment' && <NewDeploymentPage />}
          {route.page === 'deployment' && <DeploymentPage key={route.id} id={route.id} tab={route.tab} />}
          {route.page === 'snapshot' && (
            <SnapshotPage
              key={`${route.id}/${route.snapshotId}`}
              id={route.id}
              snapshotId={route.snapshotId}
              view={route.view}
              against={route.against}
            />
          )}
          {route.page === 'webhooks' && <WebhooksPage />}
          {route.page === 'nodes' && <NodesPage />}
          {route.page === 'not-found' && <NotFoundPage />}
        </div>
      </SessionContext.Provider>
    );
  }

  return (
    <ToastContext.Provider value={show}>
      {body}
      <Toaster toasts={toasts} onDismiss={dismiss} />
    </ToastContext.Provider>
  );
}
