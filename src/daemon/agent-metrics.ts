/**
 * The agent's `/metrics` listeners (agent/metrics-server.ts) for `butter agent` and `butter
 * up`: `--metrics-listen HOST:PORT`, repeatable; `mesh:PORT` is the node's mesh address, bound
 * once the mesh is up (WireGuard encrypts what crosses it) and moved when the address changes.
 * By default `127.0.0.1:7702` and, with a mesh, `mesh:7702`: never the LAN in clear. `none`
 * serves nothing. A port that cannot be bound (another agent on the host has it) is logged, and
 * the agent runs on without it.
 */
import type { Agent } from '../agent/agent.ts';
import { DEFAULT_METRICS_PORT, MetricsServer, whoisWith } from '../agent/metrics-server.ts';
import type { Client } from '../sdk/client.ts';
import { parseListen } from './listen.ts';
import type { Logger } from './logger.ts';

export type MetricsListen = { host: string; port: number } | { mesh: true; port: number };

/** `--metrics-listen` values (none given: the defaults); [] for `none`. */
export function parseMetricsListen(values: readonly string[], mesh: boolean): MetricsListen[] {
  if (values.length === 0) return [{ host: '127.0.0.1', port: DEFAULT_METRICS_PORT }, ...(mesh ? [{ mesh: true as const, port: DEFAULT_METRICS_PORT }] : [])];
  if (values.length === 1 && values[0] === 'none') return [];
  return values.map((v) => {
    if (v === 'none') throw new Error('metrics-listen: `none` cannot be combined with addresses');
    const m = /^mesh(?::(\d{1,5}))?$/.exec(v);
    if (m) {
      if (!mesh) throw new Error('metrics-listen: mesh:PORT needs the mesh (not --no-mesh)');
      const port = m[1] === undefined ? DEFAULT_METRICS_PORT : Number(m[1]);
      if (port < 1 || port > 65535) throw new Error(`metrics-listen: port ${port} out of range`);
      return { mesh: true as const, port };
    }
    return parseListen(v, DEFAULT_METRICS_PORT);
  });
}

export interface AgentMetricsListeners {
  /** Tell it the node's mesh address (the agent's `onMeshAddress`). */
  meshAddress(address: string): void;
  close(): Promise<void>;
}

/** Starts the listeners; scrapers' tokens are checked with the control plane over `client`'s connection. */
export async function startAgentMetrics(agent: Agent, client: Client, listens: readonly MetricsListen[], log: Logger): Promise<AgentMetricsListeners> {
  const metrics = agent.metrics;
  if (!metrics || listens.length === 0) return { meshAddress() {}, close: async () => {} };
  const server = new MetricsServer({ scrape: () => metrics.scrape(), whois: whoisWith(client), log: (m) => log.warn(m) });
  const bind = async (host: string, port: number) => {
    try {
      log.info(`agent metrics at ${await server.listen(host, port)}/metrics (a metrics or admin token)`);
    } catch (e) {
      log.warn(`agent metrics: cannot listen on ${host}:${port}: ${(e as Error).message}; serving them elsewhere only`);
    }
  };
  for (const l of listens) if ('host' in l) await bind(l.host, l.port);
  const onMesh = listens.filter((l) => 'mesh' in l);
  let meshAt: string | undefined;
  let moving = Promise.resolve();
  return {
    meshAddress(address) {
      if (onMesh.length === 0 || address === meshAt) return;
      const old = meshAt;
      meshAt = address;
      moving = moving.then(async () => {
        for (const l of onMesh) {
          if (old) await server.unlisten(old, l.port);
          await bind(address, l.port);
        }
      });
    },
    close: async () => {
      await moving;
      await server.close();
    },
  };
}
