/** AppHeader: the brand, the main navigation and who is signed in. */
import { seesNodes, useSession } from '../session';
import { Icon } from './Icon';
import { Link } from './Link';

export function AppHeader({ path }: { path: string }) {
  const { me, signOut } = useSession();
  const inDeployments = path === '/' || path.startsWith('/deployments');
  return (
    <header className="app-header">
      <div className="app-header-inner">
        <Link to="/deployments" className="brand" aria-label="Kova home">
          <span className="brand-mark" aria-hidden="true">
            K
          </span>
          <span className="brand-name">Kova</span>
        </Link>
        <nav className="main-nav" aria-label="Main">
          <Link to="/deployments" aria-current={inDeployments ? 'page' : undefined}>
            Deployments
          </Link>
          <Link to="/webhooks" aria-current={path.startsWith('/webhooks') ? 'page' : undefined}>
            Webhooks
          </Link>
          {seesNodes(me) && (
            <Link to="/nodes" aria-current={path.startsWith('/nodes') ? 'page' : undefined}>
              Nodes
            </Link>
          )}
        </nav>
        <div className="header-user">
          <span className="user-chip" title={`Signed in as ${me.user.name} · runtime ${me.server.runtime} · Kova ${me.server.version}`}>
            <span className="avatar" aria-hidden="true">
              {me.user.name.charAt(0).toUpperCase()}
            </span>
            <span className="user-name">{me.user.name}</span>
          </span>
          <button type="button" className="btn btn-ghost btn-sm" onClick={() => signOut()} aria-label="Sign out">
            <Icon name="logout" size={15} />
            <span>Sign out</span>
          </button>
        </div>
      </div>
    </header>
  );
}
