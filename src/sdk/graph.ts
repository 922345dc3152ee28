/**
 * The original library's `client.graph()`: who may reach whom, as Graphviz DOT text by default
 * (what the original returned, for `dot`, `xdot` or any Graphviz tool), or as the API's Graph
 * object (`format: 'json'`), or drawn as SVG by the control plane (`format: 'svg'`).
 */
import type { ResponseOf } from '../api/routes.ts';
import type { Client } from './client.ts';

export type Graph = ResponseOf<'getGraph'>;

export interface GraphOptions {
  /** Only this network (its services, its paths and the CIDRs they admit). */
  network?: string;
}

export function graph(client: Client, opts: GraphOptions & { format: 'json' }): Promise<Graph>;
export function graph(client: Client, opts?: GraphOptions & { format?: 'dot' | 'svg' }): Promise<string>;
export function graph(client: Client, opts?: GraphOptions & { format?: 'json' | 'dot' | 'svg' }): Promise<Graph | string>;
export function graph(client: Client, opts: GraphOptions & { format?: 'json' | 'dot' | 'svg' } = {}): Promise<Graph | string> {
  const format = opts.format ?? 'dot';
  const query = { format, ...(opts.network !== undefined ? { network: opts.network } : {}) };
  return format === 'json' ? client.call('getGraph', { query }) : client.callText('getGraph', { query });
}
