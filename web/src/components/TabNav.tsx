/** TabNav: the sections of a page as links, the current one marked. */
import { Link } from './Link';

export interface TabItem {
  id: string;
  label: string;
  href: string;
  count?: number | null;
}

export function TabNav({ tabs, current, label }: { tabs: readonly TabItem[]; current: string; label: string }) {
  return (
    <nav className="tabs" aria-label={label}>
      {tabs.map((t) => (
        <Link key={t.id} to={t.href} className="tab" aria-current={t.id === current ? 'page' : undefined}>
          {t.label}
          {t.count !== undefined && t.count !== null && <span className="tab-count">{t.count}</span>}
        </Link>
      ))}
    </nav>
  );
}
