/**
 * Pure rendering of Butter's whole nftables ruleset, fed to `nft -f -` as one transaction.
 * Each table is declared, deleted and declared again in the same text: that replaces it
 * atomically whether or not it existed, so applying the same text twice is a no-op and no
 * packet ever sees a half-built ruleset. Tables of other software are never touched.
 *
 * - `inet butter`: NAT for nat=true networks, guest→host filtering (only DHCP, DNS, metadata,
 *   ICMP), guest forwarding (egress only with nat=true, never between networks).
 * - `bridge butter`: per-port anti-spoofing, stateless because the bridge family here has
 *   no conntrack; and on each VXLAN port, the host-local services stay local: every node
 *   answers for its network's gateway (same address and MAC everywhere), metadata and DHCP,
 *   so ARP for those and DHCP never cross to other nodes.
 */

import { MESH_CIDR } from './ipv4.ts';

/** What the rules need of a network (a `LocalNetwork` fits). */
export interface NftNetwork {
  bridge: string;
  cidr: string;
  gateway: string;
  nat: boolean;
  ports: readonly NftPort[];
  /** The network's VXLAN port, when it spans nodes. */
  overlay?: { device: string } | undefined;
  /** The network's VPN router, on its VPN gateway node (see agent/host/network.ts `LocalVpn`). */
  vpn?: { router: string; mesh: string; peers: readonly string[] } | undefined;
}

export interface NftPort {
  tap: string;
  mac: string;
  ip: string;
}

export const NFT_TABLES = ['inet butter', 'bridge butter'] as const;

const METADATA = '169.254.169.254';

/** Text that removes our tables if present (and is fine if they are not). */
export function renderNftDelete(): string {
  return NFT_TABLES.map((t) => `table ${t}\ndelete table ${t}\n`).join('');
}

export function renderNftRuleset(networks: readonly NftNetwork[]): string {
  for (const n of networks) validate(n);
  return [renderNftDelete(), renderInet(networks), renderBridge(networks)].join('\n');
}

function renderInet(networks: readonly NftNetwork[]): string {
  const input: string[] = [];
  const forward: string[] = [];
  const postrouting: string[] = [];
  const bridges = networks.map((n) => q(n.bridge));

  // VPN peers arrive on the mesh interface: only to their own network's router port (and
  // the gateway's DNS), never to the host, the mesh or another network. Router and mesh are
  // not bridges, so these rules and the bridges' below never match the same packet.
  const meshes = new Set<string>();
  for (const n of networks) {
    if (!n.vpn || n.vpn.peers.length === 0) continue;
    const v = n.vpn;
    const mesh = q(v.mesh);
    const peers = `{ ${v.peers.join(', ')} }`;
    meshes.add(mesh);
    input.push(`iifname ${mesh} ip saddr ${peers} ip daddr ${n.gateway} meta l4proto { tcp, udp } th dport 53 accept`, `iifname ${mesh} ip saddr ${peers} ip daddr ${n.gateway} meta l4proto icmp accept`);
    forward.push(`iifname ${mesh} ip saddr ${peers} oifname ${q(v.router)} ip daddr ${n.cidr} accept`, `iifname ${q(v.router)} oifname ${mesh} ip daddr ${peers} accept`);
  }
  for (const n of networks) if (n.vpn) forward.push(`iifname ${q(n.vpn.router)} drop`);
  // Nodes' own traffic on the mesh comes from mesh addresses (WireGuard enforces each node's).
  for (const mesh of meshes) {
    input.push(`iifname ${mesh} ip saddr != ${MESH_CIDR} drop`);
    forward.push(`iifname ${mesh} ip saddr != ${MESH_CIDR} drop`);
  }

  for (const n of networks) {
    const br = q(n.bridge);
    // Only the services a guest needs from its host; everything else aimed at the host drops.
    input.push(
      `iifname ${br} udp dport 67 accept`,
      `iifname ${br} ip daddr ${n.gateway} meta l4proto { tcp, udp } th dport 53 accept`,
      `iifname ${br} ip daddr ${METADATA} tcp dport 80 accept`,
      `iifname ${br} drop`,
    );
    // With br_netfilter loaded, bridged frames between guests of one network show up here.
    forward.push(`iifname ${br} oifname ${br} accept`);
    // Not to its own CIDR: that is a VPN peer, reached through the mesh with the VM's own address.
    if (n.nat) postrouting.push(`ip saddr ${n.cidr} ip daddr != ${n.cidr} oifname != ${br} masquerade`);
  }
  if (bridges.length > 0) {
    const set = `{ ${bridges.join(', ')} }`;
    // Replies (and ICMP errors) for connections guests opened; nothing new inbound and
    // nothing from one network to another, even when both may egress.
    forward.push(`oifname ${set} ct state established,related accept`, `oifname ${set} drop`);
    for (const n of networks) {
      if (n.nat) forward.push(`iifname ${q(n.bridge)} ip saddr ${n.cidr} accept`);
    }
    forward.push(`iifname ${set} drop`);
    // Before the per-bridge drops: replies to the host's own traffic, and ping.
    input.unshift(`iifname ${set} ct state established,related accept`, `iifname ${set} meta l4proto icmp accept`);
  }

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
        // 0.0.0.0 is the DHCP discover before the guest has its address.
        `ip saddr != { ${p.ip}, 0.0.0.0 } drop`,
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
    dispatch.push(`iifname ${vx} arp daddr ip ${local} drop`, `iifname ${vx} udp dport { 67, 68 } drop`);
    forward.push(`oifname ${vx} arp daddr ip ${local} drop`, `oifname ${vx} udp dport { 67, 68 } drop`);
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

function validate(n: NftNetwork): void {
  checkIfName(n.bridge);
  if (n.overlay) checkIfName(n.overlay.device);
  if (n.vpn) {
    checkIfName(n.vpn.router);
    checkIfName(n.vpn.mesh);
    n.vpn.peers.forEach(checkIpv4);
  }
  const m = /^(.+)\/(\d{1,2})$/.exec(n.cidr);
  if (!m || Number(m[2]) > 32) throw new Error(`bad IPv4 CIDR ${JSON.stringify(n.cidr)}`);
  checkIpv4(m[1]!);
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

function checkIpv4(ip: string): void {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new Error(`bad IPv4 address ${JSON.stringify(ip)}`);
  }
}
