/**
 * The node mesh's WireGuard configuration, rendered for `wg syncconf` (which changes only what
 * differs, so live sessions survive an update). Pure: the agent writes the text and runs wg.
 */
import { byCodeUnit } from './code-unit-order.ts';

/** A WireGuard key: 32 bytes, base64. */
export const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export interface MeshPeer {
  node: string;
  publicKey: string;
  /** `host:port` (IPv6 hosts in brackets) where it listens; null until it has reported one. */
  endpoint: string | null;
  /** Its mesh address (one /32 per node): the only source WireGuard accepts from it. */
  address: string;
}

/** A VPN peer (a laptop) of a network this node is the VPN gateway of. */
export interface MeshClient {
  name: string;
  network: string;
  publicKey: string;
  /** Its address in the network: the only source accepted from it, and where replies go. */
  address: string;
}

export interface MeshInterface {
  privateKey: string;
  listenPort: number;
  peers: readonly MeshPeer[];
  clients?: readonly MeshClient[];
}

/**
 * Keepalives hold NAT and stateful-firewall mappings open so a peer can reach a node that has
 * not sent to it lately (WireGuard itself is silent when idle).
 */
export const KEEPALIVE_S = 25;

export function renderWgConf(c: MeshInterface): string {
  if (!WG_KEY.test(c.privateKey)) throw new Error('private key is not a WireGuard key');
  const lines = ['[Interface]', `PrivateKey = ${c.privateKey}`, `ListenPort = ${c.listenPort}`];
  const seen = new Set<string>();
  for (const p of [...c.peers].sort((a, b) => byCodeUnit(a.node, b.node))) {
    if (!WG_KEY.test(p.publicKey)) throw new Error(`peer ${p.node}: public key is not a WireGuard key`);
    if (seen.has(p.publicKey)) throw new Error(`peer ${p.node}: public key used twice`);
    seen.add(p.publicKey);
    lines.push('', `# node ${p.node}`, '[Peer]', `PublicKey = ${p.publicKey}`, `AllowedIPs = ${p.address}/32`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    lines.push(`PersistentKeepalive = ${KEEPALIVE_S}`);
  }
  // No endpoint and no keepalive: a laptop roams, and it keeps its own mapping open.
  for (const v of [...(c.clients ?? [])].sort((a, b) => byCodeUnit(a.network, b.network) || byCodeUnit(a.name, b.name))) {
    if (!WG_KEY.test(v.publicKey)) throw new Error(`VPN peer ${v.name}: public key is not a WireGuard key`);
    if (seen.has(v.publicKey)) throw new Error(`VPN peer ${v.name}: public key used twice`);
    seen.add(v.publicKey);
    lines.push('', `# VPN peer ${v.name} of network ${v.network}`, '[Peer]', `PublicKey = ${v.publicKey}`, `AllowedIPs = ${v.address}/32`);
  }
  return `${lines.join('\n')}\n`;
}

/** What a VPN peer's wg-quick configuration is made of (`VpnClientConfig` fits). */
export interface ClientConfig {
  address: string;
  dns: string;
  mtu: number;
  serverPublicKey: string;
  endpoint: string;
  allowedIps: readonly string[];
  persistentKeepalive: number;
}

/**
 * A ready wg-quick file for a VPN peer. Its private key is made where this runs (the CLI, on
 * the user's machine) and never sent anywhere; with a key the user keeps (`--public-key`),
 * the file has a placeholder for it.
 */
export function renderClientConf(c: ClientConfig, privateKey: string | undefined, title: string): string {
  if (privateKey !== undefined && !WG_KEY.test(privateKey)) throw new Error('private key is not a WireGuard key');
  return [
    `# ${title}`,
    '[Interface]',
    `PrivateKey = ${privateKey ?? '<your private key>'}`,
    `Address = ${c.address}`,
    `DNS = ${c.dns}`,
    `MTU = ${c.mtu}`,
    '',
    '[Peer]',
    `PublicKey = ${c.serverPublicKey}`,
    `Endpoint = ${c.endpoint}`,
    `AllowedIPs = ${c.allowedIps.join(', ')}`,
    `PersistentKeepalive = ${c.persistentKeepalive}`,
    '',
  ].join('\n');
}
