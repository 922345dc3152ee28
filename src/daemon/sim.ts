/**
 * `butter sim --nodes N`: N simulated agents in one process, against the control plane the
 * CLI is logged into. Each registers and talks the same API as a real agent (its own node
 * token, long-polls, reports); only the driver is simulated. For demos and scale tests.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../agent/agent.ts';
import type { HostCapacity } from '../agent/capacity.ts';
import { SimDriver } from '../agent/host/sim-driver.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { ButterError, Client } from '../sdk/client.ts';
import type { Logger } from './logger.ts';
import { privateUmask } from './private-files.ts';

export interface SimOptions {
  admin: Client;
  /** The control plane's CA (PEM) when it speaks HTTPS, as the CLI pinned it at login. */
  ca?: string | undefined;
  nodes: number;
  prefix: string;
  zones: string[];
  capacity: HostCapacity;
  stateDir: string;
  log: Logger;
}

export async function runSim(o: SimOptions): Promise<() => Promise<void>> {
  privateUmask();
  const agents: Agent[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const name = `${o.prefix}-${i}`;
    const dir = join(o.stateDir, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const zone = o.zones[(i - 1) % o.zones.length]!;
    const token = await nodeToken(o.admin, name, zone, dir, o.ca);
    const agent = new Agent({
      client: new Client({ url: o.admin.url, token, ...(o.ca ? { ca: o.ca } : {}) }),
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

/**
 * Joins like a real agent: a single-use join token (for its zone) traded through
 * `POST /v1/join` for the node's own token, kept in its state dir so a restarted sim resumes
 * the same nodes.
 */
async function nodeToken(admin: Client, name: string, zone: string, dir: string, ca: string | undefined): Promise<string> {
  const file = join(dir, 'node.token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const invite = await admin.call('createJoinToken', { body: { ttl: '10m', zone } });
  try {
    const { token } = await new Client({ url: admin.url, token: invite.token, ...(ca ? { ca } : {}) }).call('join', { body: { name } });
    writeFileAtomic(file, token + '\n', 0o600);
    return token;
  } catch (e) {
    if (e instanceof ButterError && e.status === 409) throw new Error(`node ${name} already exists and its token is not in ${dir}: pick another --prefix or --state-dir`);
    throw e;
  }
}
