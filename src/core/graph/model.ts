/**
 * The graph of who may reach whom (issue 14, `butter graph`), the original library's shape:
 * one cluster per network holding its services (with their instance counts), one node for
 * the internet (`0.0.0.0/0`) and one per other CIDR a path admits, outside every network, and
 * one edge per path labelled `tcp:80`. Pure: the control plane hands in what it sees; dot.ts
 * renders it as DOT text. Everything is sorted, so one state always gives the same graph.
 */
import { ipToInt, splitCidr } from '../ipv4.ts';
import { isService, type Path, type Proto } from '../paths/model.ts';

export interface GraphNetworkInput {
  name: string;
  cidr: string;
}

export interface GraphServiceInput {
  name: string;
  network: string;
  /** Instances in state `running`, and all of them. */
  running: number;
  total: number;
  /** Instances asleep for idleness (scale to zero: a connection wakes them); absent: none. */
  suspended?: number;
}

export interface GraphInput {
  networks: readonly GraphNetworkInput[];
  services: readonly GraphServiceInput[];
  paths: readonly Path[];
}

export type GraphNodeKind = 'service' | 'internet' | 'cidr';

export interface GraphNode {
  /** `service:NAME`, `internet`, or `cidr:A.B.C.D/N`: unique in the graph. */
  id: string;
  kind: GraphNodeKind;
  label: string;
  /** A service's network (CIDR nodes belong to none: they are outside every network). */
  network: string | null;
  /** A CIDR node's CIDR (`0.0.0.0/0` for the internet). */
  cidr: string | null;
  /** A service's instances; null for a CIDR, and for a service a path names that is not there (any more). */
  instances: { running: number; total: number; suspended?: number } | null;
}

export interface GraphEdge {
  from: string;
  to: string;
  /** `tcp:80`, `udp:53`, `tcp:8000-8100`. */
  label: string;
  network: string;
  proto: Proto;
  ports: [number, number];
}

export interface GraphCluster {
  network: string;
  cidr: string;
  label: string;
  /** Ids of the service nodes inside, sorted. */
  nodes: string[];
}

export interface Graph {
  clusters: GraphCluster[];
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export const INTERNET = '0.0.0.0/0';

export const serviceNodeId = (name: string): string => `service:${name}`;

function cidrNodeId(cidr: string): string {
  return cidr === INTERNET ? 'internet' : `cidr:${cidr}`;
}

export function edgeLabel(proto: Proto, [lo, hi]: readonly [number, number]): string {
  return `${proto}:${lo === hi ? lo : `${lo}-${hi}`}`;
}

/** CIDRs by address, then the wider first; the internet (`0.0.0.0/0`) so comes first. */
function compareCidrs(a: string, b: string): number {
  const x = splitCidr(a);
  const y = splitCidr(b);
  return ipToInt(x.ip) - ipToInt(y.ip) || x.prefix - y.prefix;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The graph of `input`, or of one network's part of it (its cluster, its services, its paths
 * and the CIDRs they admit) when `network` is given. The caller checks that the network exists.
 */
export function buildGraph(input: GraphInput, network?: string): Graph {
  const wanted = (n: string) => network === undefined || n === network;
  const networks = input.networks.filter((n) => wanted(n.name)).sort((a, b) => byText(a.name, b.name));
  const services = input.services.filter((s) => wanted(s.network));
  const paths = input.paths.filter((p) => wanted(p.network));

  const nodes = new Map<string, GraphNode>();
  for (const s of services) {
    const asleep = s.suspended ?? 0;
    // Scaled to zero is not down: the next connection wakes it.
    const label = asleep > 0 && s.running === 0 ? `${s.name}\nsuspended (${asleep}/${s.total} asleep)` : `${s.name}\n${s.running}/${s.total} running${asleep > 0 ? `, ${asleep} suspended` : ''}`;
    nodes.set(serviceNodeId(s.name), { id: serviceNodeId(s.name), kind: 'service', label, network: s.network, cidr: null, instances: { running: s.running, total: s.total, ...(asleep > 0 ? { suspended: asleep } : {}) } });
  }
  // A path may still name a service the control plane no longer lists (one being deleted
  // with its paths): it stays drawn, marked, rather than the edge vanishing without a word.
  const serviceNode = (name: string, net: string): string => {
    const id = serviceNodeId(name);
    if (!nodes.has(id)) nodes.set(id, { id, kind: 'service', label: `${name}\n(no such service)`, network: net, cidr: null, instances: null });
    return id;
  };
  const cidrs = new Set<string>();
  const edges: GraphEdge[] = paths.map((p) => {
    let from: string;
    if (isService(p.from)) from = serviceNode(p.from.service, p.network);
    else {
      cidrs.add(p.from.cidr);
      from = cidrNodeId(p.from.cidr);
    }
    return { from, to: serviceNode(p.to, p.network), label: edgeLabel(p.proto, p.ports), network: p.network, proto: p.proto, ports: [p.ports[0], p.ports[1]] };
  });
  for (const c of cidrs) nodes.set(cidrNodeId(c), { id: cidrNodeId(c), kind: c === INTERNET ? 'internet' : 'cidr', label: c === INTERNET ? `internet\n${INTERNET}` : c, network: null, cidr: c, instances: null });

  const cidrOrder = (n: GraphNode) => n.cidr ?? '';
  const sortedNodes = [...nodes.values()].sort((a, b) => {
    // Outside nodes first (the internet, then CIDRs by address), then services by name.
    if ((a.kind === 'service') !== (b.kind === 'service')) return a.kind === 'service' ? 1 : -1;
    return a.kind === 'service' ? byText(a.id, b.id) : compareCidrs(cidrOrder(a), cidrOrder(b));
  });
  const rank = new Map(sortedNodes.map((n, i) => [n.id, i]));
  edges.sort((a, b) => byText(a.network, b.network) || rank.get(a.from)! - rank.get(b.from)! || rank.get(a.to)! - rank.get(b.to)! || byText(a.proto, b.proto) || a.ports[0] - b.ports[0] || a.ports[1] - b.ports[1]);

  const clusters: GraphCluster[] = networks.map((n) => ({
    network: n.name,
    cidr: n.cidr,
    label: `${n.name} (${n.cidr})`,
    nodes: sortedNodes.filter((x) => x.kind === 'service' && x.network === n.name).map((x) => x.id),
  }));
  return { clusters, nodes: sortedNodes, edges };
}
