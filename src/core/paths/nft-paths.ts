/**
 * The nftables table a node loads to enforce paths: default deny for service instances.
 *
 * Guests' traffic within a network is bridged; with br_netfilter it passes the `inet` forward
 * hook with the bridge as both `iifname` and `oifname` (core/nft-rules.ts), and conntrack
 * works there (the bridge family has none here). Remote instances' traffic arrives on the
 * VXLAN port of the same bridge and VPN peers' through the router port, so both are bridged
 * too on the node of the destination. So one chain on the forward hook decides, for a packet
 * whose `oifname . ip daddr` is a service block (`@instances`):
 *   1. replies pass (`ct state established ct direction reply`), and related ICMP: allowed
 *      connections are stateful, and the gateway's DNS and metadata answers are replies. Only
 *      replies: the packets of an established connection toward the instance are checked
 *      against the paths again (step 3) every time, so removing a path cuts its open
 *      connections at the next packet, while those of paths that stay flow on;
 *   2. DHCP answers from the network's gateway pass (`@dhcp`: not replies to conntrack, as the
 *      request went to the broadcast address);
 *   3. a packet matching a path passes: `oifname . ip daddr . ip saddr . meta l4proto . th dport`
 *      in `@paths_N`, one interval element per path (bridge . destination block . source block
 *      or CIDR . proto . port range);
 *   4. the rest drops.
 * Traffic to anything else (VMs in no service, the gateway, the outside) is not this table's
 * business: its first rule accepts it, which leaves the verdict to `inet butter` as before.
 * A table of its own, on the same hook: a drop in either table is final, an accept in one only
 * passes the packet to the other, so the two compose without ordering.
 *
 * The bridge is part of every key because networks may share a CIDR on one node.
 * Sizes grow with services (one `@instances` element each) and paths (one element each), not
 * with instances or their pairs; the rules are a fixed handful. The kernel refuses two
 * elements of one interval set that overlap (pipapo: "File exists"), and paths may overlap
 * (a CIDR containing another, 80 and 80-90), so elements are spread over as few sets as keep
 * each set free of overlaps (`layers`), each looked up by one rule. Each layer is usually one.
 */
import { checkIpv4, intToIp, MESH_CIDR } from '../ipv4.ts';
import { cidrRange, findService, sourceRange, type PathModel, type Proto, type Range } from './model.ts';

export const PATHS_TABLE = 'inet butter_paths';

/** A network as the node has it. */
export interface PathsNetwork {
  name: string;
  bridge: string;
  /** The network's gateway address (its DHCP server, on every node). */
  gateway: string;
}

/**
 * A published port of a service (a path from a CIDR publishes it): connections an ingress node
 * forwarded over the mesh reach the instance from that node's mesh address, which only nodes
 * can send from, and are admitted to these ports only (core/paths/nft-publish.ts).
 */
export interface PublishedAdmission {
  network: string;
  service: string;
  proto: Proto;
  /** The instances' ports. */
  ports: readonly [number, number];
}

/** One element of a `@paths_N` set. */
export interface PathElement {
  bridge: string;
  dst: Range;
  src: Range;
  proto: Proto;
  ports: readonly [number, number];
}

export function renderPathsDelete(): string {
  return `table ${PATHS_TABLE}\ndelete table ${PATHS_TABLE}\n`;
}

/**
 * The whole table for a node hosting `networks`, from the control plane's model: declared,
 * deleted and declared again in one text, so `nft -f` replaces it atomically (as
 * core/nft-rules.ts does for its tables); conntrack entries survive the swap, and with them
 * the connections of paths that stay.
 */
export function renderPathsRuleset(model: PathModel, networks: readonly PathsNetwork[], published: readonly PublishedAdmission[] = []): string {
  const instances: string[] = [];
  const dhcp: string[] = [];
  const elements: PathElement[] = [];
  for (const n of networks) {
    checkIfName(n.bridge);
    checkIpv4(n.gateway);
    dhcp.push(`${q(n.bridge)} . ${n.gateway}`);
    const services = model.services.filter((s) => s.network === n.name).map((s) => ({ name: s.name, range: cidrRange(s.block) }));
    services.sort((a, b) => a.range[0] - b.range[0]);
    for (let i = 1; i < services.length; i++) {
      if (services[i]!.range[0] <= services[i - 1]!.range[1]) throw new Error(`services ${services[i - 1]!.name} and ${services[i]!.name} of network ${n.name} have overlapping blocks`);
    }
    for (const s of services) instances.push(`${q(n.bridge)} . ${range(s.range)}`);
    for (const p of model.paths) {
      if (p.network !== n.name) continue;
      const to = findService(model, p.to);
      const src = sourceRange(model, p);
      // A path whose service went (or is in another network) admits nothing.
      if (!to || to.network !== n.name || !src) continue;
      elements.push({ bridge: n.bridge, dst: cidrRange(to.block), src, proto: p.proto, ports: p.ports });
    }
    // Published ports reached through another node arrive from its mesh address (core/paths/nft-publish.ts).
    for (const p of published) {
      if (p.network !== n.name) continue;
      const to = findService(model, p.service);
      if (!to || to.network !== n.name) continue;
      elements.push({ bridge: n.bridge, dst: cidrRange(to.block), src: cidrRange(MESH_CIDR), proto: p.proto, ports: p.ports });
    }
  }
  const sets = [set('instances', 'ifname . ipv4_addr', true, instances), set('dhcp', 'ifname . ipv4_addr', false, dhcp)];
  const layered = layers(elements);
  layered.forEach((l, i) => sets.push(set(`paths_${i}`, 'ifname . ipv4_addr . ipv4_addr . inet_proto . inet_service', true, l.map(element))));
  const rules = [
    'type filter hook forward priority filter; policy accept;',
    'oifname . ip daddr != @instances accept',
    'ct state established ct direction reply accept',
    'ct state related accept',
    'oifname . ip saddr @dhcp udp sport 67 udp dport 68 accept',
    ...layered.map((_, i) => `oifname . ip daddr . ip saddr . meta l4proto . th dport @paths_${i} accept`),
    'drop',
  ];
  return [renderPathsDelete(), `table ${PATHS_TABLE} {`, ...sets, ['\tchain forward {', ...rules.map((r) => `\t\t${r}`), '\t}'].join('\n'), '}', ''].join('\n');
}

/**
 * Elements spread over sets so that no two in one set overlap, first fit, in a stable order;
 * exact duplicates (two paths saying the same) are kept once. Always at least one set, so the
 * table's shape does not depend on whether any path exists. Only elements to the same bridge
 * and destination block can overlap (blocks of a network are disjoint), so each set is
 * checked per (bridge, destination) group.
 */
export function layers(elements: readonly PathElement[]): PathElement[][] {
  const sorted = [...elements].sort(compare);
  const out: PathElement[][] = [[]];
  const groups: Map<string, PathElement[]>[] = [new Map()];
  let last: PathElement | undefined;
  for (const e of sorted) {
    if (last && compare(last, e) === 0) continue;
    last = e;
    const g = `${e.bridge} ${e.dst[0]}`;
    let i = 0;
    while (i < out.length && (groups[i]!.get(g) ?? []).some((o) => overlap(o, e))) i++;
    if (i === out.length) {
      out.push([]);
      groups.push(new Map());
    }
    out[i]!.push(e);
    const list = groups[i]!.get(g);
    if (list) list.push(e);
    else groups[i]!.set(g, [e]);
  }
  return out;
}

function overlap(a: PathElement, b: PathElement): boolean {
  const meet = (x: readonly [number, number], y: readonly [number, number]) => x[0] <= y[1] && y[0] <= x[1];
  return a.bridge === b.bridge && a.proto === b.proto && meet(a.dst, b.dst) && meet(a.src, b.src) && meet(a.ports, b.ports);
}

function compare(a: PathElement, b: PathElement): number {
  return (
    (a.bridge < b.bridge ? -1 : a.bridge > b.bridge ? 1 : 0) ||
    a.dst[0] - b.dst[0] ||
    a.dst[1] - b.dst[1] ||
    a.src[0] - b.src[0] ||
    a.src[1] - b.src[1] ||
    (a.proto < b.proto ? -1 : a.proto > b.proto ? 1 : 0) ||
    a.ports[0] - b.ports[0] ||
    a.ports[1] - b.ports[1]
  );
}

function element(e: PathElement): string {
  const ports = e.ports[0] === e.ports[1] ? `${e.ports[0]}` : `${e.ports[0]}-${e.ports[1]}`;
  return `${q(e.bridge)} . ${range(e.dst)} . ${range(e.src)} . ${e.proto} . ${ports}`;
}

/** A CIDR range as nft writes it: a plain address for one address, else `a.b.c.d/p`. */
function range([lo, hi]: Range): string {
  const size = hi - lo + 1;
  const prefix = 32 - Math.log2(size);
  if (!Number.isInteger(prefix) || lo % size !== 0) throw new Error(`not a CIDR range: ${intToIp(lo)}-${intToIp(hi)}`);
  return prefix === 32 ? intToIp(lo) : `${intToIp(lo)}/${prefix}`;
}

function set(name: string, type: string, interval: boolean, elements: readonly string[]): string {
  return [
    `\tset ${name} {`,
    `\t\ttype ${type}`,
    ...(interval ? ['\t\tflags interval'] : []),
    ...(elements.length > 0 ? [`\t\telements = { ${elements.join(', ')} }`] : []),
    '\t}',
  ].join('\n');
}

function q(ifname: string): string {
  return `"${ifname}"`;
}

function checkIfName(s: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(s)) throw new Error(`bad interface name ${JSON.stringify(s)}`);
}
