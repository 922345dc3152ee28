/**
 * `butter up`'s own node: which node the local agent is, and its token (`DATA/node.token`).
 *
 * The node's name is taken from its token, not from the host name at each start: a host
 * renamed after its first `up` keeps its node (and the VMs placed there) under the name it
 * registered, as a renamed machine keeps its disks; a log line says so. Renaming the node
 * would mean moving its VMs, which only drain/evacuate do. A token the control plane does not
 * know (its database was reset while node.token stayed) is replaced by registering afresh.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { ButterError, Client } from '../sdk/node-client.ts';
import { callFailure, describeFailure } from '../sdk/failure.ts';
import type { Logger } from './logger.ts';

export interface LocalNode {
  name: string;
  token: string;
  tokenPath: string;
}

export async function localNode(o: { admin: Client; url: string; ca: string; dataDir: string; hostName: string; log: Logger }): Promise<LocalNode> {
  const tokenPath = join(o.dataDir, 'node.token');
  if (existsSync(tokenPath)) {
    const token = readFileSync(tokenPath, 'utf8').trim();
    try {
      const who = await new Client({ url: o.url, token, ca: o.ca }).call('whoami', {});
      if (who.role === 'node' && who.node) {
        if (who.node !== o.hostName) o.log.info(`this host is now named ${o.hostName}; its node keeps the name ${who.node} it registered with (and its VMs)`);
        return { name: who.node, token, tokenPath };
      }
      o.log.warn(`${tokenPath} holds a ${who.role} token, not a node's; registering node ${o.hostName} afresh`);
    } catch (e) {
      if (callFailure(e) !== 'rejected') throw e;
      o.log.warn(`the control plane does not know the token in ${tokenPath} (${describeFailure(e)}); registering node ${o.hostName} afresh`);
    }
  }
  try {
    const { token } = await o.admin.call('createNode', { body: { name: o.hostName } });
    writeFileAtomic(tokenPath, token + '\n', 0o600);
    return { name: o.hostName, token, tokenPath };
  } catch (e) {
    if (e instanceof ButterError && e.status === 409) {
      throw new Error(`node ${o.hostName} exists but ${tokenPath} is not its token: delete the node (butter node delete ${o.hostName}) and start again`);
    }
    throw e;
  }
}
