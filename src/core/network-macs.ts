/**
 * MACs Butter derives instead of storing: the same on every host and across restarts, so
 * guests' ARP caches and other nodes' forwarding entries stay right. Locally administered,
 * unicast (`02:` first octet).
 */
import { createHash } from 'node:crypto';

function derived(salt: string, network: string): string {
  const h = createHash('sha256').update(`${salt}:${network}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The network's bridge (its distributed gateway) on every node. */
export function gatewayMac(network: string): string {
  return derived('butter-gateway', network);
}

/**
 * The network's VPN router port: lives on one node (the VPN gateway), so unlike the gateway
 * MAC it must differ from it: the other nodes forward frames for VPN peers to it over VXLAN.
 */
export function vpnRouterMac(network: string): string {
  return derived('butter-vpn-router', network);
}

/** The network's bridge on every node: any MAC but the gateway's, which belongs to its namespace's port. */
export function bridgeMac(network: string): string {
  return derived('butter-bridge', network);
}
