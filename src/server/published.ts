/**
 * Published service ports (issue 14): a path from a CIDR beyond its network publishes its
 * target on every node, like a NodePort. One publication per (service, proto, port range),
 * its sources the CIDRs of the paths that publish it, its backends the service's running
 * instances wherever they run. The same list goes to every node (desired-state.ts), so any
 * change of it, a path or an instance that starts or stops running, touches every node.
 */
import type { DesiredPublished } from '../api/schemas/desired.ts';
import type { PublishedEndpoint } from '../api/schemas/path.ts';
import type { Db } from './store/db.ts';
import { SERVING_SQL, type NodeRow, type PathRow } from './store/rows.ts';
import type { Tx } from './store/store.ts';

/** What the agents balance over: instances that run and are meant to, or sleep for idleness (as the DNS answer). */
const RUNNING = `${SERVING_SQL} AND v.ip IS NOT NULL`;

export function publishedState(db: Db, service?: string): DesiredPublished[] {
  const rows = (service === undefined
    ? db.prepare(`SELECT * FROM paths WHERE host_port_lo IS NOT NULL ORDER BY network, to_service, proto, port_lo, port_hi, from_cidr`).all()
    : db.prepare(`SELECT * FROM paths WHERE host_port_lo IS NOT NULL AND to_service = ? ORDER BY network, to_service, proto, port_lo, port_hi, from_cidr`).all(service)) as PathRow[];
  const out: DesiredPublished[] = [];
  const backends = new Map<string, { ip: string; node: string }[]>();
  const backendsOf = (svc: string) => {
    let b = backends.get(svc);
    if (!b) {
      b = db.prepare(`SELECT v.ip, v.node FROM vms v WHERE v.service = ? AND v.node IS NOT NULL AND ${RUNNING} ORDER BY v.service_index`).all(svc) as { ip: string; node: string }[];
      backends.set(svc, b);
    }
    return b;
  };
  for (const r of rows) {
    const last = out.at(-1);
    if (last && last.service === r.to_service && last.proto === r.proto && last.ports[0] === r.port_lo && last.ports[1] === r.port_hi) {
      last.sources.push(r.from_cidr!);
      continue;
    }
    out.push({
      network: r.network,
      service: r.to_service,
      proto: r.proto,
      ports: [r.port_lo, r.port_hi],
      hostPorts: [r.host_port_lo!, r.host_port_lo! + r.port_hi - r.port_lo],
      sources: [r.from_cidr!],
      backends: backendsOf(r.to_service).map((b) => ({ ...b })),
    });
  }
  return out;
}

/** A service's publications as `service show` lists them, with the nodes' addresses. */
export function publishedEndpoints(db: Db, service: string): PublishedEndpoint[] {
  const pubs = publishedState(db, service);
  if (pubs.length === 0) return [];
  const nodes = (db.prepare(`SELECT name, wg_endpoint, default_endpoint FROM nodes ORDER BY name`).all() as Pick<NodeRow, 'name' | 'wg_endpoint' | 'default_endpoint'>[]).map((n) => ({
    node: n.name,
    address: hostOf(n.wg_endpoint) ?? hostOf(n.default_endpoint),
  }));
  return pubs.map((p) => ({ proto: p.proto, ports: p.ports, hostPorts: p.hostPorts, sources: p.sources, nodes }));
}

/** `host` of `host:port` (`[v6]:port` too). */
function hostOf(endpoint: string | null): string | null {
  if (!endpoint) return null;
  const m = /^\[(.+)\]:\d+$/.exec(endpoint) ?? /^(.+):\d+$/.exec(endpoint);
  return m ? m[1]! : null;
}

/** Every node: the published list is the same on each, ready or not (one that comes back has it then). */
export function touchAllNodes(tx: Tx): void {
  for (const { name } of tx.db.prepare(`SELECT name FROM nodes`).all() as { name: string }[]) tx.touchNode(name);
}

/**
 * A service instance of `network` began or stopped running: when the network has a published
 * service, every node re-reads its backends. (Per network, not per service: one index probe.)
 */
export function touchPublishers(tx: Tx, network: string): void {
  if (tx.db.prepare(`SELECT 1 FROM paths WHERE network = ? AND host_port_lo IS NOT NULL LIMIT 1`).get(network)) touchAllNodes(tx);
}
