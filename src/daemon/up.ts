/**
 * `butter up`: the control plane and a local agent in one process, on one machine — the
 * embedded default. Logs the CLI in and provides the `tiny` image.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { saveConfig } from '../cli/config.ts';
import { Client, ButterError } from '../sdk/client.ts';
import { createControlPlane } from '../server/control-plane.ts';
import { ensureServerTls } from '../server/tls.ts';
import { buildAgent, type MeshOptions } from './agent-runtime.ts';
import type { Logger } from './logger.ts';
import { localNode } from './local-node.ts';
import { ensureTinyImage } from './tiny-image.ts';
import { privateUmask, tightenTree } from './private-files.ts';
import { serverTlsNames } from './tls-setup.ts';

export interface UpOptions {
  dataDir: string;
  host: string;
  port: number;
  driver: 'qemu' | 'sim';
  noEgress: boolean;
  tiny: boolean;
  metadataPort?: number;
  mesh: MeshOptions | false;
  log: Logger;
  /** The name a new local node is registered under; this host's name by default. */
  nodeName?: string;
}

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
  const names = serverTlsNames(o.host);
  const tls = await ensureServerTls(dataDir, names);
  const cp = createControlPlane({ dataDir, https: tls, tlsRenewal: { dataDir, names, log: o.log }, onServerError: (err, ctx) => o.log.error({ err, ...ctx }, 'internal error') });
  await cp.listen(o.host, o.port);
  const port = (cp.http.server.address() as { port: number }).port;
  const url = `https://${o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  const adminToken = readFileSync(cp.adminTokenPath, 'utf8').trim();
  if (cp.adminToken) o.log.info(`first start: admin token written to ${cp.adminTokenPath}`);
  const admin = new Client({ url, token: adminToken, ca: tls.ca });

  // The local agent uses the API with its own node token, like any other agent.
  const { name: node, token: nodeToken, tokenPath } = await localNode({ admin, url, ca: tls.ca, dataDir, hostName: o.nodeName ?? localNodeName(), log: o.log });
  const agent = await buildAgent({
    client: new Client({ url, token: nodeToken, ca: tls.ca }),
    url,
    node,
    rejectedHint: `remove ${tokenPath} and restart butter up: it registers the node afresh`,
    stateDir: join(dataDir, 'agent'),
    driver: o.driver,
    noEgress: o.noEgress,
    ...(o.metadataPort !== undefined ? { metadataPort: o.metadataPort } : {}),
    mesh: o.mesh,
    log: o.log,
  });
  await agent.start();
  const cfg = saveConfig({ url, token: adminToken, ca: tls.ca });
  o.log.info(`Butter is up at ${url} (node ${node}, CA ${tls.caHash}); the CLI is logged in (${cfg})`);
  if (o.tiny) {
    try {
      if (await ensureTinyImage(admin, join(dataDir, 'tiny-build'))) o.log.info('image tiny added');
    } catch (e) {
      o.log.error(`could not provide the tiny image: ${e instanceof ButterError || e instanceof Error ? e.message : String(e)}`);
    }
  }
  o.log.info('ready');
  return async () => {
    await agent.stop();
    await cp.close();
  };
}
