/**
 * Each network's gateway lives in a network namespace of its own on every node that hosts the
 * network: its address, DHCP and DNS (dnsmasq), the metadata forward and NAT. The node's own
 * routing table then holds no network's routes, so networks may use the same CIDR and still
 * never meet. The namespace's `gw0` is a port of the network's bridge (which stays in the
 * host, with the VMs' taps and the VXLAN port); its `up0` is a point-to-point link to the
 * host, from UPLINK_CIDR, for metadata and egress.
 *
 * Pure: names, addresses, and the namespace's nftables ruleset.
 */
import { intToIp, parseRange, UPLINK_CIDR } from './ipv4.ts';
import { bridgeName } from './vm-spec.ts';
import { gatewayPublishRules, type GatewayPublished } from './paths/nft-publish.ts';

/** Inside every gateway namespace (names there are private to it). */
export const GATEWAY_IF = 'gw0';
export const UPLINK_IF = 'up0';

/** Routing tables for replies from the host to a network (metadata answers): this plus the VNI (< 2^24). */
export const UPLINK_TABLE_BASE = 0x20000000;

export interface UplinkAddresses {
  /** The host's end: the metadata server listens here, one per network. */
  root: string;
  /** The namespace's end: its default route, and the source of its NATed egress. */
  ns: string;
}

/**
 * A /30 per network, from its VNI: the same on every node, distinct for 16,384 networks
 * (VNIs are handed out upward from 100).
 */
export function uplinkOf(vni: number): UplinkAddresses {
  const base = parseRange(UPLINK_CIDR).network;
  const slot = uplinkSlot(vni);
  return { root: intToIp(base + slot * 4 + 1), ns: intToIp(base + slot * 4 + 2) };
}

/** How many /30s UPLINK_CIDR holds: two networks whose VNIs differ by a multiple of it share one. */
export const UPLINK_SLOTS = 16384;

/** Which /30 of UPLINK_CIDR a VNI's uplink is (see uplinkOf). */
export function uplinkSlot(vni: number): number {
  return (((vni - 100) % UPLINK_SLOTS) + UPLINK_SLOTS) % UPLINK_SLOTS;
}

export interface GatewayNftInput {
  gateway: string;
  nat: boolean;
  uplink: UplinkAddresses;
  /** Where the host's metadata server listens. */
  metadataPort: number;
  /** Published ports with instances on this node: DNATed from the uplink to them (core/paths/nft-publish.ts). */
  published?: readonly GatewayPublished[];
}

const METADATA = '169.254.169.254';

/**
 * How every reply to an EC2 token PUT begins (the metadata server writes the TTL header
 * first): the status line, then the header's name. The namespace finds it in a reply's first
 * data and limits that connection's replies to one hop (see renderGatewayNft).
 */
export const TOKEN_REPLY_PREFIX = 'HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds';

/** Conntrack marks of metadata connections, set by their first reply data. */
const CT_TOKEN = '0x1';
const CT_PLAIN = '0x2';

/**
 * The rules that give token replies IP TTL 1, so that a container behind a VM's own NAT gets
 * no token while the VM does (EC2's PUT response hop limit of 1). They run in the forward
 * hook, after the namespace's own TTL decrement, so the VM receives TTL 1 and cannot forward
 * it. nftables cannot follow a TCP stream, so the server helps (agent/metadata/ec2.ts): a
 * token reply is the first data of its connection and begins with TOKEN_REPLY_PREFIX. The
 * first reply packet with data decides for the whole connection, kept in its conntrack mark:
 * the marker (16 bytes of the header name, after the status line) makes it a token
 * connection; 33 bytes or more without it, not one; fewer (a peer advertising a tiny window
 * to have the reply cut short) cannot be told, so it counts as one. Every later reply packet
 * of a token connection has TTL 1 too, however the body is segmented.
 */
function tokenHopLimitRules(): string[] {
  const offset = TOKEN_REPLY_PREFIX.indexOf('\r\n') + 2; // after the status line (ASCII: chars are bytes)
  const marker = Buffer.from(TOKEN_REPLY_PREFIX.slice(offset, offset + 16), 'latin1').toString('hex');
  const at = `@ih,${offset * 8},128`; // @ih: the TCP payload
  return [
    `ct mark 0x0 ${at} 0x${marker} ct mark set ${CT_TOKEN}`,
    `ct mark 0x0 ${at} != 0x${marker} ct mark set ${CT_PLAIN}`,
    // Any payload at all (a packet without one fails the load and does not match).
    `ct mark 0x0 @ih,0,8 0-255 ct mark set ${CT_TOKEN}`,
    `ct mark ${CT_TOKEN} ip ttl set 1`,
  ];
}

/**
 * The namespace's ruleset. From the guests (`gw0`): DHCP, DNS on the gateway, ping; metadata
 * is DNATed to the host's end of the uplink with the guest's address kept (the host's
 * metadata server tells VMs apart by it), and its token replies are limited to one hop
 * (tokenHopLimitRules). Egress (nat=true) leaves by `up0`, masqueraded to
 * the namespace's uplink address. From the host side only the host itself enters, and replies.
 */
export function renderGatewayNft(i: GatewayNftInput): string {
  const gw = `"${GATEWAY_IF}"`;
  const up = `"${UPLINK_IF}"`;
  const meta = `${i.uplink.root}:${i.metadataPort}`;
  const forward = [
    // Replies of metadata connections (before NAT restores 169.254.169.254:80 as their source):
    // every reply of the listener, however the connection was addressed.
    `iifname ${up} oifname ${gw} ip saddr ${i.uplink.root} tcp sport ${i.metadataPort} ct direction reply jump metadata_reply`,
    'ct state established,related accept',
    // Guests reach the listener only through 169.254.169.254 (the DNAT above); asked at its own
    // address, it would answer a container behind a VM's NAT around the hop limit. These two
    // come before the egress accept.
    `iifname ${gw} oifname ${up} ip daddr ${i.uplink.root} tcp dport ${i.metadataPort} ct status dnat accept`,
    `iifname ${gw} ip daddr ${i.uplink.root} drop`,
    // The host itself (its end of the link) may reach the guests, as a machine reaches its own VMs.
    `iifname ${up} ip saddr ${i.uplink.root} oifname ${gw} accept`,
  ];
  const published = gatewayPublishRules(i.published ?? []);
  // Published ports, DNATed below with the client's address kept: the paths table on the bridge checks it.
  if (published.length > 0) forward.push(`iifname ${up} oifname ${gw} ct status dnat accept`);
  if (i.nat) forward.push(`iifname ${gw} oifname ${up} accept`);
  return [
    'table inet butter',
    'delete table inet butter',
    'table inet butter {',
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    `\t\tiifname ${gw} ip daddr ${METADATA} tcp dport 80 dnat ip to ${meta}`,
    ...published.map((r) => `\t\tiifname ${up} ip daddr ${i.uplink.ns} ${r}`),
    '\t}',
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy drop;',
    '\t\tiif lo accept',
    '\t\tct state established,related accept',
    `\t\tiifname ${gw} udp dport 67 accept`,
    `\t\tiifname ${gw} ip daddr ${i.gateway} meta l4proto { tcp, udp } th dport 53 accept`,
    `\t\tiifname ${gw} meta l4proto icmp accept`,
    '\t}',
    '\tchain metadata_reply {',
    ...tokenHopLimitRules().map((r) => `\t\t${r}`),
    '\t}',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy drop;',
    ...forward.map((r) => `\t\t${r}`),
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    // Not the metadata forward: the host must see the guest's own address.
    ...(i.nat ? [`\t\toifname ${up} ip daddr != ${i.uplink.root} masquerade`] : []),
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** The host's devices of a network's gateway: its bridge port and its uplink, and the uplink's table. */
export function gatewayDevices(network: string, vni: number): { gatewayPort: string; uplink: UplinkAddresses & { device: string; table: number } } {
  const id = bridgeName(network).slice(3);
  return { gatewayPort: `btg${id}`, uplink: { device: `btu${id}`, ...uplinkOf(vni), table: UPLINK_TABLE_BASE + vni } };
}
