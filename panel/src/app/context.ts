/** What every page gets: the API client, the signed-in role, live events. */
import { createContext } from 'preact';
import type { Client } from '../../../src/sdk/client.ts';
import type { EventHub, EventFilter, EventMessage } from './events.ts';
import type { UserRole } from './roles.ts';
import type { Route } from './router.ts';

export interface Panel {
  client: Client;
  role: UserRole;
  events: EventHub;
}

export const PanelContext = createContext<Panel>(undefined as unknown as Panel);

export interface PageProps {
  /** The SDK client: the session cookie and CSRF header are its business. */
  client: Client;
  role: UserRole;
  /** Whether the signed-in role may do what `need` may: render changing controls only if so. */
  can: (need: UserRole) => boolean;
  /** Live events matching `filter` while the page is shown (see events.ts). */
  useEvents: (filter: EventFilter, cb: (m: EventMessage) => void) => void;
  /** The rest of the route: `['web']` on `#/vms/web`. */
  route: Route;
}
