/**
 * `butter sim --nodes N`: N simulated agents in one process, against the control plane the
 * CLI is logged into. Each registers and talks the same API as a real agent (its own node
 * token, long-polls, reports); only the driver is simulated. For demos and scale tests.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../agent/agent.ts';
import type { HostCapacity } from '../agent/capacity.ts';
import { SimDriver } from '../agent/host/sim-driver.ts';
import { ButterError, Client } from '../sdk/client.ts';
import type { Logger } from './logger.ts';

export interface SimOptions {
  admin: Client;
  nodes: number;
  prefix: string;
  zones: string[];
  capacity: HostCapacity;
  stateDir: string;
  log: Logger;
}

export async function runSim(o: SimOptions): Promise<() => Promise<void>> {
  const agents: Agent[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const name = `${o.prefix}-${i}`;
    const dir = join(o.stateDir, name);
    mkdirSync(dir, { recursive: true });
    const token = await nodeToken(o.admin, name, dir);
    const zone = o.zones[(i - 1) % o.zones.length]!;
    await o.admin.call('updateNode', { params: { name }, body: { zone } });
    const agent = new Agent({
      client: new Client({ url: o.admin.url, token }),
      node: name,
      stateDir: dir,
      driver: new SimDriver({ stateDir: dir }),
      accel: { accel: 'tcg', reason: 'simulated node' },
      capacity: o.capacity,
      // Simulated consoles only say when a VM started: no need to look often, with thousands of them.
      consoleShipMs: 2000,
    });
    await agent.start();
    agents.push(agent);
  }
  o.log.info(`${o.nodes} simulated nodes running (${o.prefix}-1 … ${o.prefix}-${o.nodes}); Ctrl-C stops them`);
  return async () => {
    await Promise.all(agents.map((a) => a.stop()));
  };
}

/** A simulated node keeps its token in its state dir, so a restarted sim resumes the same nodes. */
async function nodeToken(admin: Client, name: string, dir: string): Promise<string> {
  const file = join(dir, 'node.token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  try {
    const { token } = await admin.call('createNode', { body: { name } });
    writeFileSync(file, token + '\n', { mode: 0o600 });
    return token;
  } catch (e) {
    if (e instanceof ButterError && e.status === 409) throw new Error(`node ${name} already exists and its token is not in ${dir}: pick another --prefix or --state-dir`);
    throw e;
  }
}
