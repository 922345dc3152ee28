/**
 * Pure rendering of Butter's whole nftables ruleset, fed to `nft -f -` as one transaction.
 * Each table is declared, deleted and declared again in the same text: that replaces it
 * atomically whether or not it existed, so applying the same text twice is a no-op and no
 * packet ever sees a half-built ruleset. Tables of other software are never touched.
 *
 * - `inet butter`: the host's side of each network's gateway namespace (core/gateway-ns.ts):
 *   metadata from its uplink, NAT of its egress (nat=true); nothing from a network to the host
 *   or between networks; VPN peers to their own network only; VXLAN from the mesh only.
 * - `bridge butter`: per-port anti-spoofing (a VM's MAC and IP; 0.0.0.0 for DHCP only),
 *   stateless because the bridge family here has no conntrack; and on each VXLAN port, the
 *   host-local services stay local: every node answers for its network's gateway (same
 *   address and MAC everywhere), metadata and DHCP, so ARP for those, DHCP and the gateway's
 *   own frames never cross to other nodes.
 */

import { VXLAN_PORT } from './fdb-plan.ts';
import { checkIpv4, MESH_CIDR, splitCidr, UPLINK_CIDR } from './ipv4.ts';
import { gatewayMac } from './network-macs.ts';
import { PATHS_TABLE } from './paths/nft-paths.ts';
import { PUBLISH_TABLE, PUBLISHED_CT_MARK } from './paths/nft-publish.ts';

/** What the rules need of a network (a `LocalNetwork` fits). */
export interface NftNetwork {
  /** The network's name: its gateway's MAC is derived from it (core/network-macs.ts). */
  name: string;
  bridge: string;
  cidr: string;
  gateway: string;
  nat: boolean;
  ports: readonly NftPort[];
  /** The network's VXLAN port, when it spans nodes. */
  overlay?: { device: string } | undefined;
  /** Its namespace's dnsmasq forwards queries upstream (through the host). */
  dnsForward?: boolean;
  /** The host's link to the network's gateway namespace (core/gateway-ns.ts). */
  uplink: { device: string; root: string; ns: string };
  /** The network's VPN router, on its VPN gateway node (see agent/host/network.ts `LocalVpn`). */
  vpn?: { router: string; mesh: string; peers: readonly string[] } | undefined;
}

export interface NftPort {
  tap: string;
  mac: string;
  ip: string;
}

/** The tables `renderNftRuleset` makes. */
export const RULESET_TABLES = ['inet butter', 'bridge butter'] as const;
/**
 * Every table Butter makes on a host: those, and the paths' (core/paths/nft-paths.ts) and
 * published ports' (core/paths/nft-publish.ts), each loaded on its own. `butter down` and
 * teardown remove them all.
 */
export const NFT_TABLES = [...RULESET_TABLES, PATHS_TABLE, PUBLISH_TABLE] as const;

const METADATA = '169.254.169.254';

/** Text that removes our tables (all of NFT_TABLES, or those given) if present (and is fine if they are not). */
export function renderNftDelete(tables: readonly string[] = NFT_TABLES): string {
  return tables.map((t) => `table ${t}\ndelete table ${t}\n`).join('');
}

export interface NftOptions {
  /** Where the host's metadata server listens on each uplink. */
  metadataPort: number;
  /** The WireGuard mesh interface, when this node is in the mesh. */
  mesh?: string;
  /** The node publishes service ports (core/paths/nft-publish.ts): their marked connections are forwarded. */
  published?: boolean;
}

export function renderNftRuleset(networks: readonly NftNetwork[], o: NftOptions): string {
  for (const n of networks) validate(n, o);
  return [renderNftDelete(RULESET_TABLES), renderInet(networks, o), renderBridge(networks)].join('\n');
}

function renderInet(networks: readonly NftNetwork[], o: NftOptions): string {
  const input: string[] = [];
  const forward: string[] = [];
  const postrouting: string[] = [];
  const bridges = networks.map((n) => q(n.bridge));
  const uplinks = networks.map((n) => q(n.uplink.device));
  const routers = networks.flatMap((n) => (n.vpn ? [q(n.vpn.router)] : []));
  const ours = [...bridges, ...uplinks, ...routers];

  // VPN peers arrive on the mesh interface: only to their own network, by its router port
  // (DNS included: the gateway is in the network); never to the host, the mesh or another
  // network. The router port forwards only to its peers.
  for (const n of networks) {
    if (!n.vpn || n.vpn.peers.length === 0) continue;
    const mesh = q(n.vpn.mesh);
    const peers = `{ ${n.vpn.peers.join(', ')} }`;
    forward.push(`iifname ${mesh} ip saddr ${peers} oifname ${q(n.vpn.router)} ip daddr ${n.cidr} accept`, `iifname ${q(n.vpn.router)} oifname ${mesh} ip daddr ${peers} accept`);
  }
  // The mesh carries nodes' own traffic, from mesh addresses (WireGuard enforces each node's);
  // fenced whether or not VPN peers exist yet, so a peer is never unfenced for a moment.
  if (o.mesh) {
    input.push(`iifname ${q(o.mesh)} ip saddr != ${MESH_CIDR} drop`);
    forward.push(`iifname ${q(o.mesh)} ip saddr != ${MESH_CIDR} drop`);
  }
  // The kernel's VXLAN socket listens on every address, and what it takes goes straight onto a
  // network's bridge: only nodes may send to it, over the mesh, from mesh addresses. Anything
  // else to the port drops (a LAN host, another node's guests by the underlay, IPv6, VPN
  // peers), with or without a mesh or networks: the VXLAN device may come before or after.
  // Published ports: connections inet butter_publish DNATed (after checking their source) carry
  // its mark, in both directions, into a network's uplink or the mesh and back; before the drops.
  if (o.published) forward.push(`ct mark ${PUBLISHED_CT_MARK} accept`);
  if (o.mesh) input.push(`iifname ${q(o.mesh)} ip saddr ${MESH_CIDR} udp dport ${VXLAN_PORT} accept`);
  input.push(`udp dport ${VXLAN_PORT} drop`);

  for (const n of networks) {
    // From a gateway namespace, the host offers the metadata server on its end of the link.
    input.push(`iifname ${q(n.uplink.device)} ip daddr ${n.uplink.root} tcp dport ${o.metadataPort} accept`);
    // With br_netfilter loaded, bridged frames between the ports of one network show up here.
    forward.push(`iifname ${q(n.bridge)} oifname ${q(n.bridge)} accept`);
  }
  if (networks.length > 0) {
    const all = `{ ${ours.join(', ')} }`;
    // The host takes no part in any network: nothing from a bridge, a namespace or a router
    // reaches it but the metadata above and answers to its own connections (routeHost).
    input.push(`iifname { ${uplinks.join(', ')} } ct state established,related accept`, `iifname ${all} drop`);
    // Nothing is routed into a network (or between networks, or into the mesh) but answers;
    // these drops come before any egress accept.
    forward.push(`oifname { ${uplinks.join(', ')} } ct state established,related accept`, `oifname ${all} drop`, `iifname { ${uplinks.join(', ')} } ip daddr { ${MESH_CIDR}, ${UPLINK_CIDR} } drop`);
    if (o.mesh) forward.push(`iifname { ${uplinks.join(', ')} } oifname ${q(o.mesh)} drop`);
  }
  for (const n of networks) {
    const up = q(n.uplink.device);
    // Egress: everything with NAT; without, only the namespace's dnsmasq asking upstream.
    if (n.nat) forward.push(`iifname ${up} accept`);
    else if (n.dnsForward) forward.push(`iifname ${up} ip saddr ${n.uplink.ns} meta l4proto { tcp, udp } th dport 53 accept`);
    if (n.nat || n.dnsForward) postrouting.push(`ip saddr ${n.uplink.ns} oifname != ${up} masquerade`);
  }
  if (networks.length > 0) forward.push(`iifname { ${ours.join(', ')} } drop`);

  return [
    'table inet butter {',
    chain('input', 'type filter hook input priority filter; policy accept;', input),
    chain('forward', 'type filter hook forward priority filter; policy accept;', forward),
    chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', postrouting),
    '}',
    '',
  ].join('\n');
}

function renderBridge(networks: readonly NftNetwork[]): string {
  const ports = networks.flatMap((n) => n.ports);
  const dispatch: string[] = [];
  const portChains: string[] = [];
  if (ports.length > 0) {
    dispatch.push(`iifname vmap { ${ports.map((p) => `${q(p.tap)} : jump ${portChain(p.tap)}`).join(', ')} }`);
  }
  for (const p of ports) {
    const mac = p.mac.toLowerCase();
    portChains.push(
      chain(portChain(p.tap), undefined, [
        `ether saddr != ${mac} drop`,
        // Only IPv4 and ARP: anything else (IPv6, 802.1Q-tagged frames) would slip past the
        // address checks below, and Butter gives guests nothing else to speak.
        'ether type != { ip, arp } drop',
        // 0.0.0.0 is the DHCP client before it has its address, and only that: a positive match,
        // as a negative one (`udp dport != 67`) would not match ICMP or TCP, nor a later
        // fragment (no ports to read). `return`: the rest of this chain is for other frames.
        'ip saddr 0.0.0.0 udp sport 68 udp dport 67 return',
        `ip saddr != ${p.ip} drop`,
        `arp saddr ether != ${mac} drop`,
        // 0.0.0.0 is an ARP probe (RFC 5227 duplicate address detection).
        `arp saddr ip != { ${p.ip}, 0.0.0.0 } drop`,
      ]),
    );
  }
  const forward: string[] = [];
  for (const n of networks) {
    if (!n.overlay) continue;
    const vx = q(n.overlay.device);
    const local = `{ ${n.gateway}, ${METADATA} }`;
    // Nor does anything the gateway itself sends (its ARP requests for guests' addresses are
    // broadcasts, flooded to this port too): every node's gateway has the same MAC, so a frame of
    // another node's gateway would teach this bridge that the MAC lives behind the VXLAN port,
    // and this node's guests would lose their gateway (DNS, DHCP, metadata, egress) until its
    // own gateway spoke again. Dropped before the bridge learns from it.
    const gw = gatewayMac(n.name);
    dispatch.push(`iifname ${vx} ether saddr ${gw} drop`, `iifname ${vx} arp daddr ip ${local} drop`, `iifname ${vx} udp dport { 67, 68 } drop`);
    forward.push(`oifname ${vx} ether saddr ${gw} drop`, `oifname ${vx} arp daddr ip ${local} drop`, `oifname ${vx} udp dport { 67, 68 } drop`);
  }
  return [
    'table bridge butter {',
    // prerouting: frames are checked before they are forwarded to a port or delivered to the host.
    chain('prerouting', 'type filter hook prerouting priority filter; policy accept;', dispatch),
    ...(forward.length ? [chain('forward', 'type filter hook forward priority filter; policy accept;', forward)] : []),
    ...portChains,
    '}',
    '',
  ].join('\n');
}

function chain(name: string, hook: string | undefined, rules: readonly string[]): string {
  const body = [...(hook ? [hook] : []), ...rules].map((r) => `\t\t${r}`);
  return [`\tchain ${name} {`, ...body, '\t}'].join('\n');
}

/** Interface names are quoted so names such as "ip" or "drop" are never read as keywords. */
function q(ifname: string): string {
  return `"${ifname}"`;
}

/** Chain names are identifiers: the `port_` prefix keeps them clear of keywords, and every
 *  other character (`_` too) is escaped as `_<hex>`, so distinct taps never share a chain. */
function portChain(tap: string): string {
  return `port_${tap.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
}

function validate(n: NftNetwork, o: NftOptions): void {
  if (o.mesh) checkIfName(o.mesh);
  checkIfName(n.bridge);
  checkIfName(n.uplink.device);
  checkIpv4(n.uplink.root);
  checkIpv4(n.uplink.ns);
  if (n.overlay) checkIfName(n.overlay.device);
  if (n.vpn) {
    checkIfName(n.vpn.router);
    checkIfName(n.vpn.mesh);
    for (const p of n.vpn.peers) checkIpv4(p);
  }
  splitCidr(n.cidr);
  checkIpv4(n.gateway);
  for (const p of n.ports) {
    checkIfName(p.tap);
    checkIpv4(p.ip);
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(p.mac)) throw new Error(`bad MAC ${JSON.stringify(p.mac)}`);
  }
}

function checkIfName(s: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(s)) throw new Error(`bad interface name ${JSON.stringify(s)}`);
}
