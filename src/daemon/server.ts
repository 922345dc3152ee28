/** `butter server` and `butter agent` as long-running processes. */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Client } from '../sdk/node-client.ts';
import { createControlPlane } from '../server/control-plane.ts';
import { ensureServerTls } from '../server/tls.ts';
import { parseMetricsListen, startAgentMetrics, type MetricsListen } from './agent-metrics.ts';
import { buildAgent, type MeshOptions } from './agent-runtime.ts';
import { credentialPath, joinCluster, loadCredential, type Credential } from './join.ts';
import { untilReachable } from './retry.ts';
import { callFailure, describeFailure } from '../sdk/failure.ts';
import { caHashOfPem } from '../sdk/tls.ts';
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
  const cp = createControlPlane({ dataDir, ...controlPlaneBounds(config), ...(tls ? { https: tls, tlsRenewal: { dataDir, names, log: o.log } } : {}), onServerError: (err, ctx) => o.log.error({ err, ...ctx }, 'internal error'), log: o.log });
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
  /** `--metrics-listen` (agent-metrics.ts); the defaults when absent. */
  metricsListen?: MetricsListen[];
  log: Logger;
}

async function credential(o: AgentCommandOptions): Promise<Credential> {
  const saved = loadCredential(o.stateDir);
  if (saved) return checkedCredential(saved, o);
  if (o.join) {
    const cred = await joinCluster({ url: o.join.url, joinToken: o.join.token, caHash: o.join.caHash, name: o.join.name ?? localNodeName(), stateDir: o.stateDir, log: o.log });
    o.log.info(`joined ${cred.url} as node ${cred.node}; credential saved, the join token is no longer needed`);
    return cred;
  }
  if (o.server) {
    const url = o.server.url;
    const token = o.server.token.startsWith('@') ? readFileSync(o.server.token.slice(1), 'utf8').trim() : o.server.token;
    const who = await untilReachable(url, o.log, () => new Client({ url, token }).call('whoami', {}));
    if (who.role !== 'node' || !who.node) throw new Error('token: the agent needs a node token');
    return { url, node: who.node, token };
  }
  throw new Error('join: give --join URL --token TOKEN --ca-hash HASH (or --server URL --token NODE_TOKEN)');
}

/**
 * A saved credential, checked with its control plane before use (waiting while that is
 * unreachable). One it no longer accepts (the node deleted, the control plane reinstalled)
 * is replaced by a fresh join when `--join` is given, else the agent stops saying what to do.
 * A `--join` for another control plane than the saved one is refused: this node's VMs belong
 * to the first, and the second, not knowing them, would have them destroyed.
 */
async function checkedCredential(saved: Credential, o: AgentCommandOptions): Promise<Credential> {
  const file = credentialPath(o.stateDir);
  const savedHash = saved.ca ? caHashOfPem(saved.ca) : undefined;
  if (o.join && savedHash && savedHash !== o.join.caHash.trim().toLowerCase()) {
    throw new Error(
      `${file} belongs to another control plane (${saved.url}, CA ${savedHash}) than --join names (${o.join.url}, CA ${o.join.caHash}). ` +
        `This node's VMs belong to the first; joining the second would destroy them. To keep them, start this agent without --join, or use another --state-dir for the new control plane; to move the node anyway, remove ${file} and start again with --join.`,
    );
  }
  let refusal: string;
  try {
    const who = await untilReachable(saved.url, o.log, () => new Client({ url: saved.url, token: saved.token, ...(saved.ca ? { ca: saved.ca } : {}) }).call('whoami', {}));
    if (who.role === 'node' && who.node === saved.node) return saved;
    refusal = `its token belongs to ${who.node ? `node ${who.node}` : `a ${who.role} token`}, not node ${saved.node}`;
  } catch (e) {
    const kind = callFailure(e);
    if (kind === 'answered') throw e;
    refusal = kind === 'untrusted' ? `its certificate is not signed by the CA saved in ${file} (${describeFailure(e)}): was the control plane reinstalled?` : `it does not accept this node's token (${describeFailure(e)}): the node was deleted there, or the control plane was reinstalled`;
  }
  if (o.join) {
    o.log.warn(`the control plane at ${saved.url} refused the saved credential (${refusal}); joining again with the given join token`);
    const cred = await joinCluster({ url: o.join.url, joinToken: o.join.token, caHash: o.join.caHash, name: o.join.name ?? saved.node, stateDir: o.stateDir, log: o.log });
    o.log.info(`joined ${cred.url} as node ${cred.node}; credential saved, the join token is no longer needed`);
    return cred;
  }
  throw new Error(`the control plane at ${saved.url} cannot be used with ${file}: ${refusal}. ${rejoinAdvice(saved.url, savedHash, file)}`);
}

/** What to do about a credential the control plane refuses: the file and the command. */
function rejoinAdvice(url: string, caHash: string | undefined, file: string): string {
  return `To join it again, make a join token there (butter node token create) and start the agent with --join ${url} --token <token> --ca-hash ${caHash ?? '<hash>'} (it replaces ${file}); to start over, remove ${file}`;
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
  const rejectedHint = rejoinAdvice(cred.url, cred.ca ? caHashOfPem(cred.ca) : undefined, credentialPath(o.stateDir));
  const listens = o.metricsListen ?? parseMetricsListen([], o.mesh !== false);
  let meshAddress = (_a: string) => {};
  const agent = await buildAgent({ client, url: cred.url, node: cred.node, stateDir: o.stateDir, rejectedHint, driver: o.driver, noEgress: o.noEgress, ...(o.metadataPort !== undefined ? { metadataPort: o.metadataPort } : {}), mesh: o.mesh, log: o.log, config, metrics: listens.length > 0, onMeshAddress: (a) => meshAddress(a) });
  const metrics = await startAgentMetrics(agent, client, listens, o.log);
  meshAddress = (a) => metrics.meshAddress(a);
  await agent.start();
  o.log.info(`agent for node ${cred.node} running against ${cred.url}`);
  return async () => {
    await agent.stop();
    await metrics.close();
  };
}
