/** `butter server` and `butter agent` as long-running processes. */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Client } from '../sdk/client.ts';
import { createControlPlane } from '../server/control-plane.ts';
import { ensureServerTls } from '../server/tls.ts';
import { buildAgent, type MeshOptions } from './agent-runtime.ts';
import { joinCluster, loadCredential, type Credential } from './join.ts';
import type { Logger } from './logger.ts';
import { localNodeName } from './up.ts';
import { privateUmask, tightenTree } from './private-files.ts';
import { serverTlsNames } from './tls-setup.ts';
import { controlPlaneBounds, loadDaemonConfig } from './config.ts';
import { rotateStderr } from './log-rotation.ts';

export async function runServer(o: { dataDir: string; host: string; port: number; tls: boolean; sans: string[]; log: Logger }): Promise<() => Promise<void>> {
  privateUmask();
  const dataDir = resolve(o.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  tightenTree(dataDir);
  const config = loadDaemonConfig(dataDir);
  rotateStderr(config.log, (m) => o.log.warn(m));
  const names = serverTlsNames(o.host, o.sans);
  const tls = o.tls ? await ensureServerTls(dataDir, names) : undefined;
  const cp = createControlPlane({ dataDir, ...controlPlaneBounds(config), ...(tls ? { https: tls, tlsRenewal: { dataDir, names, log: o.log } } : {}), onServerError: (err, ctx) => o.log.error({ err, ...ctx }, 'internal error') });
  await cp.listen(o.host, o.port);
  if (cp.adminToken) o.log.info(`first start: admin token written to ${cp.adminTokenPath} (mode 0600)`);
  const url = `${tls ? 'https' : 'http'}://${o.host === '0.0.0.0' ? hostname() : o.host}:${o.port}`;
  o.log.info(`control plane listening on ${url}${tls ? `; CA ${tls.caHash} (valid until ${tls.caNotAfter}), server certificate valid until ${tls.certNotAfter} (renewed while running)` : ' (plain HTTP)'}`);
  if (tls) o.log.info(`log in with: butter login ${url} --token $(cat ${cp.adminTokenPath}) --ca-hash ${tls.caHash}`);
  return () => cp.close();
}

export interface AgentCommandOptions {
  stateDir: string;
  /** `--join URL --token bj_… --ca-hash …` */
  join?: { url: string; token: string; caHash: string; name?: string | undefined } | undefined;
  /** `--server URL --token bt_…` (a node token made with `POST /v1/nodes`) */
  server?: { url: string; token: string } | undefined;
  driver: 'qemu' | 'sim';
  noEgress: boolean;
  metadataPort?: number;
  mesh: MeshOptions | false;
  log: Logger;
}

async function credential(o: AgentCommandOptions): Promise<Credential> {
  const saved = loadCredential(o.stateDir);
  if (saved) return saved;
  if (o.join) {
    const cred = await joinCluster({ url: o.join.url, joinToken: o.join.token, caHash: o.join.caHash, name: o.join.name ?? localNodeName(), stateDir: o.stateDir });
    o.log.info(`joined ${cred.url} as node ${cred.node}; credential saved, the join token is no longer needed`);
    return cred;
  }
  if (o.server) {
    const token = o.server.token.startsWith('@') ? readFileSync(o.server.token.slice(1), 'utf8').trim() : o.server.token;
    const who = await new Client({ url: o.server.url, token }).call('whoami', {});
    if (who.role !== 'node' || !who.node) throw new Error('token: the agent needs a node token');
    return { url: o.server.url, node: who.node, token };
  }
  throw new Error('join: give --join URL --token TOKEN --ca-hash HASH (or --server URL --token NODE_TOKEN)');
}

export async function runAgent(o: AgentCommandOptions): Promise<() => Promise<void>> {
  privateUmask();
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(o.stateDir, 0o700);
  tightenTree(o.stateDir);
  const config = loadDaemonConfig(o.stateDir);
  rotateStderr(config.log, (m) => o.log.warn(m));
  const cred = await credential(o);
  const client = new Client({ url: cred.url, token: cred.token, ...(cred.ca ? { ca: cred.ca } : {}) });
  const agent = await buildAgent({ client, url: cred.url, node: cred.node, stateDir: o.stateDir, driver: o.driver, noEgress: o.noEgress, ...(o.metadataPort !== undefined ? { metadataPort: o.metadataPort } : {}), mesh: o.mesh, log: o.log, config });
  await agent.start();
  o.log.info(`agent for node ${cred.node} running against ${cred.url}`);
  return () => agent.stop();
}
