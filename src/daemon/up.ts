/**
 * `butter up`: the control plane and a local agent in one process, on one machine — the
 * embedded default. Logs the CLI in and provides the `tiny` image.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { saveConfig } from '../cli/config.ts';
import { Client, ButterError } from '../sdk/node-client.ts';
import { createControlPlane } from '../server/control-plane.ts';
import { ensureServerTls } from '../server/tls.ts';
import { parseMetricsListen, startAgentMetrics, type MetricsListen } from './agent-metrics.ts';
import { buildAgent, type MeshOptions } from './agent-runtime.ts';
import type { Logger } from './logger.ts';
import { localNode } from './local-node.ts';
import { ensureTinyImage, TINY, type TinyBuild } from './tiny-image.ts';
import { privateUmask, tightenTree } from './private-files.ts';
import { serverTlsNames } from './tls-setup.ts';
import { controlPlaneBounds, loadDaemonConfig } from './config.ts';
import { rotateStderr } from './log-rotation.ts';
import { claimUp, releaseUp } from './up-pidfile.ts';

export interface UpOptions {
  dataDir: string;
  host: string;
  port: number;
  driver: 'qemu' | 'sim';
  noEgress: boolean;
  tiny: boolean;
  metadataPort?: number;
  mesh: MeshOptions | false;
  /** The local agent's `--metrics-listen` (agent-metrics.ts); the defaults when absent. */
  metricsListen?: MetricsListen[];
  log: Logger;
  /** How the tiny image is built: images/tiny/build.sh unless a test holds it. */
  tinyBuild?: TinyBuild;
  /** The name a new local node is registered under; this host's name by default. */
  nodeName?: string;
}

/** How long, after the tiny image, `butter up` waits for the rest of readiness before saying it is not ready. */
const READY_WAIT_MS = 60_000;

/** This machine's name as a DNS label. */
export function localNodeName(): string {
  const n = hostname().toLowerCase().split('.')[0]!.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return n || 'local';
}

export async function runUp(o: UpOptions): Promise<() => Promise<void>> {
  privateUmask();
  const dataDir = resolve(o.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  tightenTree(dataDir);
  const config = loadDaemonConfig(dataDir);
  rotateStderr(config.log, (m) => o.log.warn(m));
  // Before anything listens or runs: `butter down` finds this process by it.
  claimUp(dataDir);
  const names = serverTlsNames(o.host);
  const tls = await ensureServerTls(dataDir, names);
  const cp = createControlPlane({ dataDir, ...controlPlaneBounds(config), https: tls, tlsRenewal: { dataDir, names, log: o.log }, onServerError: (err, ctx) => o.log.error({ err, ...ctx }, 'internal error'), log: o.log });
  // Readiness (/readyz) holds what this start promises, declared before the port opens: from the
  // first answer on, a missing tiny image reads "being built", never "not found".
  const { readiness, images } = cp.services;
  // Provisional: the node's name is settled by its token once the API answers (below).
  readiness.expectAgent(o.nodeName ?? localNodeName());
  if (o.tiny) {
    readiness.expectImage(TINY);
    if (!images.exists(TINY)) images.startBuilding(TINY, 'kernel');
  }
  await cp.listen(o.host, o.port);
  const port = (cp.http.server.address() as { port: number }).port;
  const url = `https://${o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  const adminToken = readFileSync(cp.adminTokenPath, 'utf8').trim();
  if (cp.adminToken) o.log.info(`first start: admin token written to ${cp.adminTokenPath}`);
  const admin = new Client({ url, token: adminToken, ca: tls.ca });

  // The local agent uses the API with its own node token, like any other agent.
  const { name: node, token: nodeToken, tokenPath } = await localNode({ admin, url, ca: tls.ca, dataDir, hostName: o.nodeName ?? localNodeName(), log: o.log });
  // The node is the one its token names (a renamed host keeps it): readiness waits for that one.
  readiness.expectAgent(node);
  const agentClient = new Client({ url, token: nodeToken, ca: tls.ca });
  const listens = o.metricsListen ?? parseMetricsListen([], o.mesh !== false);
  let meshAddress = (_a: string) => {};
  const agent = await buildAgent({
    client: agentClient,
    metrics: listens.length > 0,
    onMeshAddress: (a) => meshAddress(a),
    url,
    node,
    rejectedHint: `remove ${tokenPath} and restart butter up: it registers the node afresh`,
    stateDir: join(dataDir, 'agent'),
    driver: o.driver,
    noEgress: o.noEgress,
    ...(o.metadataPort !== undefined ? { metadataPort: o.metadataPort } : {}),
    mesh: o.mesh,
    log: o.log,
    config,
  });
  const metrics = await startAgentMetrics(agent, agentClient, listens, o.log);
  meshAddress = (a) => metrics.meshAddress(a);
  await agent.start();
  const cfg = saveConfig({ url, token: adminToken, ca: tls.ca });
  o.log.info(`Butter is up at ${url} (node ${node}, CA ${tls.caHash}); the CLI is logged in (${cfg})`);
  if (o.tiny) {
    try {
      if (await ensureTinyImage(admin, join(dataDir, 'tiny-build'), o.tinyBuild)) o.log.info('image tiny added');
      readiness.imageAdded(TINY);
    } catch (e) {
      images.abandonBuilding(TINY);
      readiness.imageFailed(TINY);
      o.log.error(`could not provide the tiny image: ${e instanceof ButterError || e instanceof Error ? e.message : String(e)}`);
    }
  }
  // "ready" in the log means what /readyz says (the local agent may not have reported yet).
  const end = Date.now() + READY_WAIT_MS;
  let r = readiness.check();
  while (!r.ready && !r.checks.some((c) => c.state === 'failed') && Date.now() < end) {
    await new Promise((res) => setTimeout(res, 100));
    r = readiness.check();
  }
  if (r.ready) o.log.info('ready');
  else o.log.warn({ checks: r.checks.filter((c) => c.state !== 'ok') }, `not ready: ${r.checks.filter((c) => c.state !== 'ok').map((c) => `${c.name} ${c.detail ?? c.state}`).join('; ')}`);
  return async () => {
    await agent.stop();
    await metrics.close();
    await cp.close();
    releaseUp(dataDir);
  };
}
