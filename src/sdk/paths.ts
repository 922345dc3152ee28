/**
 * The original Butter library's path verbs (`client.paths.add(load_balancer, internal, 80)`,
 * `has_access`, `internet_accessible`) over the typed routes. Sources are services (objects
 * with a `name`, or names) or CIDRs; `INTERNET` is `0.0.0.0/0`. Ports are numbers or the
 * CLI's text (`8000-8100`, `53/udp`); `proto` appends `/udp` to a number.
 */
import type { ResponseOf } from '../api/routes.ts';
import type { Client } from './client.ts';

export type Path = ResponseOf<'createPath'>;
export type PathCheck = ResponseOf<'checkPath'>;

/** Every address: a path from it publishes the service on the nodes' own addresses. */
export const INTERNET = '0.0.0.0/0';

/** A service (or its name), or a CIDR. */
export type PathEnd = string | { name: string };
export type PortRef = number | string;

export interface PathAddOptions {
  proto?: 'tcp' | 'udp';
  /** Default: the network of `to`. */
  network?: string;
  /** For a path that publishes: the first host port (default: the port itself). */
  hostPort?: number;
  /** Makes a retry of the same add safe; one is made per call otherwise. */
  idempotencyKey?: string;
}

const nameOf = (x: PathEnd): string => (typeof x === 'string' ? x : x.name);
const portText = (port: PortRef, proto?: 'tcp' | 'udp'): string => `${port}${proto && !/\//.test(String(port)) ? `/${proto}` : ''}`;

export class PathVerbs {
  constructor(private readonly client: Client) {}

  /** Lets `from` reach `to`'s instances on `port`; from a CIDR beyond the network it publishes `to`. */
  add(from: PathEnd, to: PathEnd, port: PortRef, opts: PathAddOptions = {}): Promise<Path> {
    const body = { from: nameOf(from), to: nameOf(to), ports: portText(port, opts.proto), ...(opts.network !== undefined ? { network: opts.network } : {}), ...(opts.hostPort !== undefined ? { hostPort: opts.hostPort } : {}) };
    return this.client.call('createPath', { body, ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}) });
  }

  /** Removes a path: by its id (or the path as `add` or `list` returned it), or by what it says. */
  remove(path: string | { id: string }): Promise<Path>;
  remove(from: PathEnd, to: PathEnd, port: PortRef, opts?: { proto?: 'tcp' | 'udp'; network?: string }): Promise<Path>;
  remove(a: string | { id: string } | PathEnd, to?: PathEnd, port?: PortRef, opts: { proto?: 'tcp' | 'udp'; network?: string } = {}): Promise<Path> {
    if (to === undefined || port === undefined) return this.client.call('deletePath', { params: { id: typeof a === 'string' ? a : (a as { id: string }).id } });
    return this.client.call('removePathMatching', { query: { from: nameOf(a as PathEnd), to: nameOf(to), ports: portText(port, opts.proto), ...(opts.network !== undefined ? { network: opts.network } : {}) } });
  }

  /** Every path, or those of a network, or those from or to a service. */
  async list(opts: { network?: string; service?: PathEnd } = {}): Promise<Path[]> {
    const query = { ...(opts.network !== undefined ? { network: opts.network } : {}), ...(opts.service !== undefined ? { service: nameOf(opts.service) } : {}) };
    return (await this.client.call('listPaths', { query })).items;
  }

  /** The full answer: allowed or not, the path that allows it, or why not. */
  check(from: PathEnd, to: PathEnd, port: PortRef, proto?: 'tcp' | 'udp'): Promise<PathCheck> {
    return this.client.call('checkPath', { query: { from: nameOf(from), to: nameOf(to), port: portText(port, proto) } });
  }

  /** May every address of `from` reach `to` on `port`? (the original's `has_access`) */
  async hasAccess(from: PathEnd, to: PathEnd, port: PortRef, proto?: 'tcp' | 'udp'): Promise<boolean> {
    return (await this.check(from, to, port, proto)).allowed;
  }

  /** May the whole internet reach `service` on `port`? (the original's `internet_accessible`) */
  async internetAccessible(service: PathEnd, port: PortRef, proto?: 'tcp' | 'udp'): Promise<boolean> {
    return (await this.client.call('checkPath', { query: { internet: '1', to: nameOf(service), port: portText(port, proto) } })).allowed;
  }
}
