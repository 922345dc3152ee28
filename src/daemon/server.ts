/** `butter server` and `butter agent` as long-running processes. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client } from '../sdk/client.ts';
import { createControlPlane } from '../server/control-plane.ts';
import { buildAgent } from './agent-runtime.ts';
import type { Logger } from './logger.ts';

export async function runServer(o: { dataDir: string; host: string; port: number; log: Logger }): Promise<() => Promise<void>> {
  const cp = createControlPlane({ dataDir: resolve(o.dataDir) });
  const addr = await cp.listen(o.host, o.port);
  if (cp.adminToken) o.log.info(`first start: admin token written to ${cp.adminTokenPath} (mode 0600)`);
  o.log.info(`control plane listening on ${addr}`);
  return () => cp.close();
}

export async function runAgent(o: { server: string; token: string; stateDir: string; driver: 'qemu' | 'sim'; noEgress: boolean; metadataPort?: number; log: Logger }): Promise<() => Promise<void>> {
  const token = o.token.startsWith('@') ? readFileSync(o.token.slice(1), 'utf8').trim() : o.token;
  const client = new Client({ url: o.server, token });
  const who = await client.call('whoami', {});
  if (who.role !== 'node' || !who.node) throw new Error('token: the agent needs a node token (from `POST /v1/nodes`)');
  const agent = await buildAgent({ client, node: who.node, stateDir: o.stateDir, driver: o.driver, noEgress: o.noEgress, ...(o.metadataPort !== undefined ? { metadataPort: o.metadataPort } : {}), log: o.log });
  await agent.start();
  o.log.info(`agent for node ${who.node} running against ${o.server}`);
  return () => agent.stop();
}
