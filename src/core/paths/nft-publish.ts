/**
 * Published ports (issue 14): the node's table `inet butter_publish`, and what a network's
 * gateway namespace adds for them (core/gateway-ns.ts `published`). Pure.
 *
 * A path from a CIDR to a service publishes it: every ready node accepts its host ports on its
 * own addresses from the paths' CIDRs (`sources`) and balances new connections over the
 * service's running instances, wherever they run. Two hops of NAT, each in another network
 * namespace, so no namespace sees one packet under two tuples (the host's conntrack would
 * refuse the bridged copy of a packet it had DNATed straight to the instance: a clash with its
 * own reply tuple):
 *
 *   1. The ingress node (host namespace, nat prerouting): a new connection from `sources` to
 *      a local address (`fib daddr type local`) on a host port, arriving on no interface of
 *      Butter's (not a bridge, uplink, VPN router or the mesh), is marked (`ct mark`
 *      PUBLISHED_CT_MARK) and DNATed, address only (the port stays the host port), by
 *      `numgen random` over one target per instance: the network's gateway namespace end of
 *      the uplink (`uplink.ns`) for a local instance, the instance's node's mesh address for a
 *      remote one (WireGuard's AllowedIPs carry only nodes' /32s, so a guest's address cannot
 *      cross the mesh as a destination). What leaves by the mesh is masqueraded to the
 *      node's own mesh address: the answer comes back to the ingress node, whose conntrack
 *      undoes both NATs; an asymmetric answer through another node's gateway could not work
 *      (every node's gateway has one MAC, kept off VXLAN ports: core/nft-rules.ts).
 *   2. A node that receives from the mesh, from a mesh address to its own mesh address on a
 *      host port, DNATs it (marked too) to the gateway namespace of its local instances. No
 *      `sources` check there: the ingress node did it, and only nodes send from mesh addresses
 *      (WireGuard, inet butter's mesh fence).
 *   3. The gateway namespace (core/gateway-ns.ts) DNATs `uplink.ns:hostPort + i` to an
 *      instance `ip:port + i`, by `numgen random` over its local instances, and forwards it to
 *      the bridge (`ct status dnat`); it keeps the client's source address. Its answer goes back
 *      up the uplink (the namespace's default route) and out the way it came.
 *
 * On the bridge, `inet butter_paths` (core/paths/nft-paths.ts) checks the packet as any other:
 * a client that came in directly has its own address, which the publishing path's CIDR covers;
 * one that came over the mesh has the ingress node's mesh address, admitted to the published
 * ports only (`publishedAdmissions`). Nothing else can put a mesh source on a bridge: inet butter
 * drops what is routed into a bridge or uplink unless its connection carries the mark, and the
 * gateway namespace forwards from its uplink only the host's own address or what it DNATed.
 * inet butter accepts forwarded packets of marked connections (both directions) before its
 * drops (core/nft-rules.ts): the mark is set only by the DNATs above, after their checks.
 */
import type { DesiredPublished } from '../../api/schemas/desired.ts';
import { checkIpv4, MESH_CIDR } from '../ipv4.ts';
import { cidrRange } from './model.ts';

export const PUBLISH_TABLE = 'inet butter_publish';
/** The conntrack mark of published connections on a node's host namespace (ASCII "bt" and 1). */
export const PUBLISHED_CT_MARK = '0x62740001';

export interface PublishNetwork {
  name: string;
  /** Interfaces of the network on this host: published traffic never comes in by them. */
  devices: readonly string[];
  /** The gateway namespace's end of the uplink: local instances are reached there (step 3). */
  uplinkNs: string;
}

export interface PublishInput {
  /** This node's name: backends on it are local. */
  node: string;
  /** Its mesh end, when it is in a mesh: remote backends are reached at their node's mesh address. */
  mesh?: { iface: string; address: string; peers: readonly { node: string; address: string }[] } | undefined;
  /** The networks on this host. */
  networks: readonly PublishNetwork[];
  published: readonly DesiredPublished[];
}

export function renderPublishDelete(): string {
  return `table ${PUBLISH_TABLE}\ndelete table ${PUBLISH_TABLE}\n`;
}

/** One DNAT target per instance, local ones first; an instance whose node is unknown is left out. */
export function publishTargets(p: DesiredPublished, input: PublishInput): string[] {
  const net = input.networks.find((n) => n.name === p.network);
  const local = p.backends.filter((b) => b.node === input.node);
  const remote = p.backends.filter((b) => b.node !== input.node);
  const out: string[] = [];
  if (net) for (const _ of local) out.push(net.uplinkNs);
  const peers = new Map((input.mesh?.peers ?? []).map((q) => [q.node, q.address]));
  for (const b of [...remote].sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0))) {
    const a = peers.get(b.node);
    if (a !== undefined) out.push(a);
  }
  return out;
}

/**
 * The node's whole table, declared, deleted and declared again in one text (as the other
 * tables are): `nft -f` swaps it atomically and conntrack keeps established connections on
 * the targets they got. Always the same chains, with no published port too.
 */
export function renderPublishRuleset(input: PublishInput): string {
  const mesh = input.mesh;
  if (mesh) {
    checkIfName(mesh.iface);
    checkIpv4(mesh.address);
    for (const q of mesh.peers) checkIpv4(q.address);
  }
  for (const n of input.networks) {
    for (const d of n.devices) checkIfName(d);
    checkIpv4(n.uplinkNs);
  }
  const outside: string[] = [];
  const fromMesh: string[] = [];
  const mark = `ct mark set ${PUBLISHED_CT_MARK}`;
  for (const p of [...input.published].sort((a, b) => a.hostPorts[0] - b.hostPorts[0])) {
    const match = `${p.proto} dport ${ports(p.hostPorts)}`;
    const targets = publishTargets(p, input);
    const sources = disjoint(p.sources);
    // No instance to send to: dropped, so the host's own port of that number is never reached instead.
    outside.push(targets.length === 0 ? `ip saddr ${sources} ${match} drop` : `ip saddr ${sources} ${match} ${mark} dnat ip to ${pick(targets)}`);
    const net = input.networks.find((n) => n.name === p.network);
    if (mesh && net && p.backends.some((b) => b.node === input.node)) fromMesh.push(`${match} ${mark} dnat ip to ${net.uplinkNs}`);
  }
  const ours = [...new Set([...input.networks.flatMap((n) => n.devices), ...(mesh ? [mesh.iface] : [])])].sort();
  const prerouting = [
    'type nat hook prerouting priority dstnat; policy accept;',
    ...(mesh ? [`iifname ${q(mesh.iface)} ip saddr ${MESH_CIDR} ip daddr ${mesh.address} jump from_mesh`] : []),
    `${ours.length ? `iifname != { ${ours.map(q).join(', ')} } ` : ''}fib daddr type local jump from_outside`,
  ];
  const postrouting = ['type nat hook postrouting priority srcnat; policy accept;', ...(mesh ? [`oifname ${q(mesh.iface)} ct mark ${PUBLISHED_CT_MARK} masquerade`] : [])];
  return [
    renderPublishDelete(),
    `table ${PUBLISH_TABLE} {`,
    chain('prerouting', prerouting),
    chain('from_outside', outside),
    chain('from_mesh', fromMesh),
    chain('postrouting', postrouting),
    '}',
    '',
  ].join('\n');
}

/** What a network's gateway namespace DNATs for published ports: the local instances of each (step 3). */
export interface GatewayPublished {
  proto: 'tcp' | 'udp';
  hostPorts: readonly [number, number];
  ports: readonly [number, number];
  /** Local instances' addresses. */
  backends: readonly string[];
}

/** The published ports of `network` with instances on this node, for its gateway namespace. */
export function gatewayPublished(node: string, network: string, published: readonly DesiredPublished[]): GatewayPublished[] {
  return published
    .filter((p) => p.network === network)
    .map((p) => ({ proto: p.proto, hostPorts: p.hostPorts, ports: p.ports, backends: p.backends.filter((b) => b.node === node).map((b) => b.ip).sort() }))
    .filter((p) => p.backends.length > 0)
    .sort((a, b) => a.hostPorts[0] - b.hostPorts[0]);
}

/** The gateway namespace's DNAT rules (prerouting, after `iifname up0 ip daddr UPLINK_NS`): one per host port of a range. */
export function gatewayPublishRules(published: readonly GatewayPublished[]): string[] {
  const out: string[] = [];
  for (const p of published) {
    for (const b of p.backends) checkIpv4(b);
    const n = p.hostPorts[1] - p.hostPorts[0];
    if (n !== p.ports[1] - p.ports[0] || n < 0) throw new Error(`host ports ${ports(p.hostPorts)} and ports ${ports(p.ports)} differ in length`);
    for (let i = 0; i <= n; i++) out.push(`${p.proto} dport ${p.hostPorts[0] + i} dnat ip to ${pick(p.backends.map((b) => `${b} . ${p.ports[0] + i}`), (t) => t.replace(' . ', ':'))}`);
  }
  return out;
}

/** One target, or a random pick per new connection (conntrack keeps it for the connection's life). */
function pick(targets: readonly string[], one: (t: string) => string = (t) => t): string {
  if (new Set(targets).size === 1) return one(targets[0]!);
  return `numgen random mod ${targets.length} map { ${targets.map((t, i) => `${i} : ${t}`).join(', ')} }`;
}

/** Sources as nft takes them: a CIDR contained in another is left out (an anonymous set may not overlap). */
function disjoint(cidrs: readonly string[]): string {
  const ranges = [...new Set(cidrs)].map((c) => ({ c, r: cidrRange(c) }));
  const kept = ranges.filter((a) => !ranges.some((b) => b !== a && b.r[0] <= a.r[0] && a.r[1] <= b.r[1] && (b.r[0] !== a.r[0] || b.r[1] !== a.r[1] || b.c < a.c)));
  kept.sort((a, b) => a.r[0] - b.r[0]);
  return kept.length === 1 ? kept[0]!.c : `{ ${kept.map((k) => k.c).join(', ')} }`;
}

function ports([lo, hi]: readonly [number, number]): string {
  for (const p of [lo, hi]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`bad port ${p}`);
  return lo === hi ? `${lo}` : `${lo}-${hi}`;
}

function chain(name: string, rules: readonly string[]): string {
  return [`\tchain ${name} {`, ...rules.map((r) => `\t\t${r}`), '\t}'].join('\n');
}

function q(ifname: string): string {
  return `"${ifname}"`;
}

function checkIfName(s: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(s)) throw new Error(`bad interface name ${JSON.stringify(s)}`);
}
