/**
 * `butter sim --nodes N`: N simulated agents in one process, against the control plane the
 * CLI is logged into. Each registers and talks the same API as a real agent (its own node
 * token, long-polls, reports); only the driver is simulated. For demos and scale tests.
 *
 * Their state is kept per control plane, `STATE/ca-<CA hash>/<node>/` (`STATE/url-<hash>/` for
 * plain HTTP): a reinstalled or second control plane gets nodes of its own, and going back to
 * the first finds its nodes' tokens again.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../agent/agent.ts';
import type { HostCapacity } from '../agent/capacity.ts';
import { SimDriver } from '../agent/host/sim-driver.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { ButterError, Client } from '../sdk/node-client.ts';
import { callFailure, describeFailure } from '../sdk/failure.ts';
import { caHashOfPem } from '../sdk/tls.ts';
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
  const scope = controlPlaneDir(o.stateDir, o.admin.url, o.ca);
  mkdirSync(scope, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(scope, 'control-plane.json'), JSON.stringify({ url: o.admin.url, ...(o.ca ? { caHash: caHashOfPem(o.ca) } : {}) }, null, 2) + '\n', 0o600);
  for (let i = 1; i <= o.nodes; i++) {
    const name = `${o.prefix}-${i}`;
    const dir = join(scope, name);
    const zone = o.zones[(i - 1) % o.zones.length]!;
    const { client } = await nodeToken(o, name, zone, dir);
    const agent = new Agent({
      client,
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

/** Where the simulated nodes of one control plane keep their state: by its CA's hash (by its URL over plain HTTP). */
export function controlPlaneDir(stateDir: string, url: string, ca: string | undefined): string {
  if (ca) return join(stateDir, `ca-${caHashOfPem(ca).slice('sha256:'.length)}`);
  return join(stateDir, `url-${createHash('sha256').update(url).digest('hex').slice(0, 32)}`);
}

/**
 * Joins like a real agent: a single-use join token (for its zone) traded through
 * `POST /v1/join` for the node's own token, kept in its state dir so a restarted sim resumes
 * the same nodes. A kept token the control plane no longer accepts (the node was deleted) is
 * answered with a fresh join: the simulated node's old state goes with it.
 */
async function nodeToken(o: SimOptions, name: string, zone: string, dir: string): Promise<{ token: string; client: Client }> {
  const file = join(dir, 'node.token');
  const clientFor = (token: string) => new Client({ url: o.admin.url, token, ...(o.ca ? { ca: o.ca } : {}) });
  if (!existsSync(file)) await adoptLegacy(o, name, dir, clientFor);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    const client = clientFor(token);
    const refusal = await refusalOf(client, name);
    if (!refusal) return { token, client };
    o.log.warn(`node ${name}: the control plane refuses the token in ${file} (${refusal}); joining it afresh`);
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const invite = await o.admin.call('createJoinToken', { body: { ttl: '10m', zone } });
  try {
    const { token } = await clientFor(invite.token).call('join', { body: { name } });
    writeFileAtomic(file, token + '\n', 0o600);
    return { token, client: clientFor(token) };
  } catch (e) {
    if (e instanceof ButterError && e.status === 409) {
      throw new Error(`node ${name} already exists on ${o.admin.url} and its token is not in ${dir}: pick another --prefix or --state-dir, or delete the node (butter node delete ${name})`);
    }
    throw e;
  }
}

/** Why the control plane does not accept `client`'s token as node `name`'s; undefined when it does. */
async function refusalOf(client: Client, name: string): Promise<string | undefined> {
  try {
    const who = await client.call('whoami', {});
    return who.role === 'node' && who.node === name ? undefined : `it is ${who.node ? `node ${who.node}'s` : `a ${who.role} token`}`;
  } catch (e) {
    if (callFailure(e) === 'rejected') return describeFailure(e);
    throw e;
  }
}

/**
 * Before state was kept per control plane, a node's was in `STATE/<node>/`: it moves to its
 * control plane's dir if that control plane accepts its token, and stays (someone else's) if not.
 */
async function adoptLegacy(o: SimOptions, name: string, dir: string, clientFor: (token: string) => Client): Promise<void> {
  const legacy = join(o.stateDir, name);
  const file = join(legacy, 'node.token');
  if (!existsSync(file)) return;
  if (await refusalOf(clientFor(readFileSync(file, 'utf8').trim()), name)) return;
  renameSync(legacy, dir);
  o.log.info(`node ${name}: state moved from ${legacy} to ${dir} (kept per control plane now)`);
}
