/**
 * The original Butter library's network verbs (`client.network.create/get/list/destroy`),
 * over the typed routes: names in, the API's objects out, errors as `ButterError`.
 */
import type { BodyOf, ResponseOf } from '../api/routes.ts';
import { ButterError, type Client } from './client.ts';

export type Network = ResponseOf<'getNetwork'>;
/** What `create` takes besides the name: the CIDR (default: a free 10.x.0.0/16) and NAT. */
export type NetworkOptions = Omit<BodyOf<'createNetwork'>, 'name'>;

export class NetworkVerbs {
  constructor(private readonly client: Client) {}

  /** Creates the network; `idempotencyKey` makes a retry of the same create safe (one is made per call otherwise). */
  create(name: string, opts: NetworkOptions = {}, idempotencyKey?: string): Promise<Network> {
    return this.client.call('createNetwork', { body: { name, ...opts }, ...(idempotencyKey ? { idempotencyKey } : {}) });
  }

  /** The network, or undefined when there is none of that name (as the original's None); other errors throw. */
  async get(name: string): Promise<Network | undefined> {
    try {
      return await this.client.call('getNetwork', { params: { name } });
    } catch (e) {
      if (e instanceof ButterError && e.status === 404) return undefined;
      throw e;
    }
  }

  async list(): Promise<Network[]> {
    return (await this.client.call('listNetworks', {})).items;
  }

  /** Removes it (refused while VMs or VPN peers are attached); takes a name or what `get` returned. */
  async destroy(network: string | { name: string }): Promise<void> {
    await this.client.call('deleteNetwork', { params: { name: typeof network === 'string' ? network : network.name } });
  }
}
