/**
 * router: client-side navigation over the History API. The server answers
 * every non-API path with index.html, so each view has its own URL.
 */
import { useSyncExternalStore } from 'react';

const NAVIGATE = 'kova:navigate';

function subscribe(onChange: () => void): () => void {
  window.addEventListener('popstate', onChange);
  window.addEventListener(NAVIGATE, onChange);
  return () => {
    window.removeEventListener('popstate', onChange);
    window.removeEventListener(NAVIGATE, onChange);
  };
}

const currentPath = () => window.location.pathname + window.location.search;

/** usePath is the current location's path; components re-render when it changes. */
export function usePath(): string {
  return useSyncExternalStore(subscribe, currentPath);
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === window.location.pathname + window.location.search) return;
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.scrollTo(0, 0);
  window.dispatchEvent(new Event(NAVIGATE));
}

export type Route =
  | { page: 'deployments' }
  | { page: 'new-deployment' }
  | { page: 'webhooks' }
  | { page: 'nodes' }
  | { page: 'deployment'; id: string; tab: 'overview' | 'snapshots' | 'settings' }
  | { page: 'snapshot'; id: string; snapshotId: string; view: 'files' | 'compare'; against: string | null }
  | { page: 'not-found' };

/** match maps a path to the view it shows. */
export function match(location: string): Route {
  const [path = '', search = ''] = location.split('?', 2);
  const clean = path.replace(/\/+$/, '') || '/';
  if (clean === '/' || clean === '/deployments') return { page: 'deployments' };
  if (clean === '/deployments/new') return { page: 'new-deployment' };
  if (clean === '/webhooks') return { page: 'webhooks' };
  if (clean === '/nodes') return { page: 'nodes' };
  const m = /^\/deployments\/([^/]+)(?:\/(snapshots|settings))?$/.exec(clean);
  if (m) return { page: 'deployment', id: decodeURIComponent(m[1]!), tab: (m[2] as 'snapshots' | 'settings' | undefined) ?? 'overview' };
  const s = /^\/deployments\/([^/]+)\/snapshots\/([^/]+)(?:\/(files|compare))?$/.exec(clean);
  if (s) {
    const against = new URLSearchParams(search).get('against');
    return {
      page: 'snapshot',
      id: decodeURIComponent(s[1]!),
      snapshotId: decodeURIComponent(s[2]!),
      view: s[3] === 'compare' ? 'compare' : 'files',
      against,
    };
  }
  return { page: 'not-found' };
}

export const paths = {
  deployments: () => '/deployments',
  newDeployment: () => '/deployments/new',
  webhooks: () => '/webhooks',
  nodes: () => '/nodes',
  deployment: (id: string, tab: 'overview' | 'snapshots' | 'settings' = 'overview') =>
    `/deployments/${encodeURIComponent(id)}${tab === 'overview' ? '' : `/${tab}`}`,
  snapshot: (id: string, snapshotId: string, view: 'files' | 'compare' = 'files', against?: string) =>
    `/deployments/${encodeURIComponent(id)}/snapshots/${encodeURIComponent(snapshotId)}${view === 'compare' ? `/compare?against=${encodeURIComponent(against ?? 'live')}` : ''}`,
};
