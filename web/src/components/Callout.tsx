/** Callout: a highlighted note: advice, a warning, an error or a success. */
import type { ReactNode } from 'react';
import { Icon, type IconName } from './Icon';

type Tone = 'info' | 'warning' | 'danger' | 'success';
const ICONS: Record<Tone, IconName> = { info: 'info', warning: 'alert', danger: 'alert', success: 'check' };

export function Callout({
  tone = 'info',
  title,
  children,
  action,
  role,
}: {
  tone?: Tone;
  title?: ReactNode;
  children?: ReactNode;
  action?: ReactNode;
  role?: 'alert' | 'status' | 'note';
}) {
  return (
    <div className={`callout callout-${tone}`} role={role}>
      <Icon name={ICONS[tone]} size={18} className="callout-icon" />
      <div className="callout-body">
        {title && <p className="callout-title">{title}</p>}
        {children && <div className="callout-text">{children}</div>}
      </div>
      {action && <div className="callout-action">{action}</div>}
    </div>
  );
}
