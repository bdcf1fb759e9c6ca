/** session: who is signed in, for every page below the app shell. */
import { createContext, useContext } from 'react';
import type { Me } from './api';

export interface Session {
  readonly me: Me;
  signOut(message?: string): void;
}

export const SessionContext = createContext<Session | null>(null);

/** seesNodes: whether the Nodes page is offered: to admins of a server with nodes (network mode). */
export const seesNodes = (me: Me): boolean => me.user.role === 'admin' && me.server.mode === 'network';

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}
