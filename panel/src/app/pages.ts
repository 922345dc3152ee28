/** The panel's pages, in the navigation's order: one module per page under pages/. */
import type { FunctionComponent } from 'preact';
import type { PageProps } from './context.ts';
import { OverviewPage } from '../pages/overview.tsx';
import { VmsPage } from '../pages/vms.tsx';
import { ServicesPage } from '../pages/services.tsx';
import { NetworksPage } from '../pages/networks.tsx';
import { ImagesPage } from '../pages/images.tsx';
import { TokensPage } from '../pages/tokens.tsx';
import { AuditPage } from '../pages/audit.tsx';

export interface PageEntry {
  /** The route's first segment: `#/vms`. */
  id: string;
  title: string;
  component: FunctionComponent<PageProps>;
}

export const PAGES: PageEntry[] = [
  { id: 'overview', title: 'Overview', component: OverviewPage },
  { id: 'vms', title: 'VMs', component: VmsPage },
  { id: 'services', title: 'Services', component: ServicesPage },
  { id: 'networks', title: 'Networks', component: NetworksPage },
  { id: 'images', title: 'Images', component: ImagesPage },
  { id: 'tokens', title: 'Tokens', component: TokensPage },
  { id: 'audit', title: 'Audit', component: AuditPage },
];
