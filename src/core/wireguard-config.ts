/**
 * The node mesh's WireGuard configuration, rendered for `wg syncconf` (which changes only what
 * differs, so live sessions survive an update). Pure: the agent writes the text and runs wg.
 */

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

export interface MeshInterface {
  privateKey: string;
  listenPort: number;
  peers: readonly MeshPeer[];
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
  for (const p of [...c.peers].sort((a, b) => a.node.localeCompare(b.node))) {
    if (!WG_KEY.test(p.publicKey)) throw new Error(`peer ${p.node}: public key is not a WireGuard key`);
    if (seen.has(p.publicKey)) throw new Error(`peer ${p.node}: public key used twice`);
    seen.add(p.publicKey);
    lines.push('', `# node ${p.node}`, '[Peer]', `PublicKey = ${p.publicKey}`, `AllowedIPs = ${p.address}/32`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    lines.push(`PersistentKeepalive = ${KEEPALIVE_S}`);
  }
  return `${lines.join('\n')}\n`;
}
