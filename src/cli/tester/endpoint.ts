/** Where a service's published port is reached: `http://NODEADDR:HOSTPORT`. */
import type { Butter } from '../../sdk/connect.ts';
import type { ServiceRef } from '../../sdk/services.ts';

export async function publishedEndpoint(_client: Butter, service: ServiceRef, port: number): Promise<string> {
  throw new Error(`${typeof service === 'string' ? service : service.name}:${port} is not published (this control plane has no paths)`);
}
