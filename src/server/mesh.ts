/**
 * The node mesh as the control plane sees it: each node's WireGuard public key, the endpoint
 * the others send to, and its mesh address. A change to any node's end wakes every node's
 * desired-state watch, so the peers converge as fast as the watches answer.
 */
import { ApiError } from '../api/errors.ts';
import type { DesiredMesh } from '../api/schemas/desired.ts';
import type { MeshReport } from '../api/schemas/node.ts';
import { allocateIp, MESH_CIDR, parseRange } from '../core/ipv4.ts';
import { DEFAULT_UNDERLAY_MTU, wireguardMtu } from '../core/mtu.ts';
import { vpnRouterMac } from '../core/network-macs.ts';
import { touchPublishers } from './published.ts';
import type { NetworkRow, NodeRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';
import { byCodeUnit } from '../core/code-unit-order.ts';

export interface MeshEnd {
  publicKey: string;
  endpoint: string | null;
  underlayMtu: number | null;
  /** `host:port` on the node's default route: only a VPN peer's fallback (see `vpnEndpoint`). */
  defaultEndpoint: string | null;
}

/**
 * Where the other nodes send to: what the node asked for, else the address its report came
 * from at its port. A loopback source (an agent beside the control plane) is no use to other
 * machines: no endpoint then, and peers answer once it has sent to them (WireGuard roams).
 */
export function meshEnd(rep: MeshReport, remote: string | undefined): MeshEnd {
  const base = { publicKey: rep.publicKey, underlayMtu: rep.underlayMtu ?? null, defaultEndpoint: rep.defaultAddress ? hostPort(rep.defaultAddress, rep.listenPort) : null };
  if (rep.endpoint) return { ...base, endpoint: rep.endpoint };
  return { ...base, endpoint: remote ? hostPort(remote, rep.listenPort) : null };
}

/** `ip:port` (IPv6 in brackets), or null for an address other machines cannot reach (loopback, unspecified). */
function hostPort(address: string, port: number): string | null {
  const ip = address.replace(/^::ffff:/, '');
  if (!ip || ip === '::1' || ip === '::' || ip === '0.0.0.0' || ip.startsWith('127.')) return null;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function sameMeshEnd(row: NodeRow, end: MeshEnd | null): boolean {
  return (
    end === null ||
    (row.wg_public_key === end.publicKey && row.wg_endpoint === end.endpoint && row.underlay_mtu === end.underlayMtu && row.default_endpoint === end.defaultEndpoint && row.mesh_ip !== null)
  );
}

/** Records a node's new key or endpoint (giving it an address the first time) and wakes every mesh node. */
export function setMeshEnd(tx: Tx, row: NodeRow, end: MeshEnd): void {
  const other = tx.db.prepare(`SELECT name FROM nodes WHERE wg_public_key = ? AND name != ?`).get(end.publicKey, row.name) as { name: string } | undefined;
  if (other) throw new ApiError('conflict', `node ${other.name} already uses this WireGuard public key`, 'mesh.publicKey');
  const peer = tx.db.prepare(`SELECT name, network FROM vpn_peers WHERE public_key = ?`).get(end.publicKey) as { name: string; network: string } | undefined;
  if (peer) throw new ApiError('conflict', `VPN peer ${peer.name} of network ${peer.network} already uses this WireGuard public key`, 'mesh.publicKey');
  let address = row.mesh_ip;
  if (!address) {
    const used = new Set((tx.db.prepare(`SELECT mesh_ip FROM nodes WHERE mesh_ip IS NOT NULL`).all() as { mesh_ip: string }[]).map((r) => r.mesh_ip));
    address = allocateIp(parseRange(MESH_CIDR), used) ?? null;
    if (!address) throw new ApiError('no_capacity', `the node mesh ${MESH_CIDR} has no free address`, 'mesh');
  }
  tx.db
    .prepare(`UPDATE nodes SET wg_public_key = ?, wg_endpoint = ?, mesh_ip = ?, underlay_mtu = ?, default_endpoint = ? WHERE name = ?`)
    .run(end.publicKey, end.endpoint, address, end.underlayMtu, end.defaultEndpoint, row.name);
  tx.event('mesh', 'node', row.name, `node ${row.name} in the mesh at ${address}${end.endpoint ? `, endpoint ${end.endpoint}` : ''}`);
  touchMesh(tx);
}

/**
 * The smallest underlay MTU of the mesh's nodes (1500 for a node that reports none): one L2 segment has
 * one MTU, so every node's WireGuard interface and every network's guests size for the
 * narrowest link any of their packets may cross.
 */
export function meshUnderlayMtu(store: Store): number {
  // A node that reports none counts as the assumed 1500.
  const r = store.db.prepare(`SELECT MIN(COALESCE(underlay_mtu, ?)) AS m FROM nodes WHERE wg_public_key > ''`).get(DEFAULT_UNDERLAY_MTU) as { m: number | null };
  return r.m ?? DEFAULT_UNDERLAY_MTU;
}

/** Every node with a key re-reads its peers (after a join, a change or a removal). */
export function touchMesh(tx: Tx): void {
  for (const { name } of tx.db.prepare(`SELECT name FROM nodes WHERE wg_public_key IS NOT NULL`).all() as { name: string }[]) tx.touchNode(name);
}

/** A node's place in the mesh, or null before its agent has reported a key. `underlay`: meshUnderlayMtu(). */
export function desiredMesh(store: Store, me: NodeRow, underlay: number): DesiredMesh | null {
  if (!me.mesh_ip || !me.wg_public_key) return null;
  const peers = store.db
    .prepare(`SELECT name, wg_public_key, wg_endpoint, mesh_ip FROM nodes WHERE wg_public_key IS NOT NULL AND mesh_ip IS NOT NULL AND name != ? ORDER BY name`)
    .all(me.name) as Pick<NodeRow, 'name' | 'wg_public_key' | 'wg_endpoint' | 'mesh_ip'>[];
  return {
    address: me.mesh_ip,
    prefix: parseRange(MESH_CIDR).prefix,
    mtu: wireguardMtu(underlay),
    peers: peers.map((p) => ({ node: p.name, publicKey: p.wg_public_key!, endpoint: p.wg_endpoint, address: p.mesh_ip! })),
  };
}

/**
 * Nodes of the mesh hosting a VM of `network`, and its VPN gateway: they re-read their
 * forwarding entries and DNS names when a VM of it comes, goes or moves. Driven from the (few)
 * mesh nodes, so a cluster of simulated nodes (no mesh) pays one index probe per VM write.
 */
export function touchNetworkHosts(tx: Tx, network: string): void {
  const rows = tx.db
    // `> ''` rather than IS NOT NULL: SQLite then walks the mesh_ip index instead of every node
    // (this runs in every create; a full scan cost 1,000-node clusters a quarter of their rate).
    // For the same reason no UNION here: it made SQLite scan nodes in name order.
    .prepare(
      `SELECT n.name FROM nodes n WHERE n.mesh_ip > ''
         AND (EXISTS (SELECT 1 FROM vms v WHERE v.node = n.name AND v.network = @n)
              OR EXISTS (SELECT 1 FROM vm_nics x JOIN vms v ON v.id = x.vm_id WHERE v.node = n.name AND x.network = @n))`,
    )
    .all({ n: network }) as { name: string }[];
  for (const { name } of rows) tx.touchNode(name);
  const vpn = tx.db.prepare(`SELECT vpn_node FROM networks WHERE name = ?`).get(network) as { vpn_node: string | null } | undefined;
  tx.touchNode(vpn?.vpn_node ?? null);
}

/**
 * Every node hosting a VM of `network`, mesh or not, and its VPN gateway: the network's
 * service records changed (an instance began or stopped running), and each of those nodes
 * answers the service's DNS name. Rarer than VM writes, so no mesh-only shortcut.
 */
export function touchServiceHosts(tx: Tx, network: string): void {
  const rows = tx.db.prepare(`SELECT DISTINCT v.node FROM nics x JOIN vms v ON v.id = x.vm_id WHERE x.network = ? AND v.node IS NOT NULL`).all(network) as { node: string }[];
  for (const { node } of rows) tx.touchNode(node);
  const vpn = tx.db.prepare(`SELECT vpn_node FROM networks WHERE name = ?`).get(network) as { vpn_node: string | null } | undefined;
  tx.touchNode(vpn?.vpn_node ?? null);
  // A published service's backends are its running instances, on every node's list.
  touchPublishers(tx, network);
}

export interface OverlayRemote {
  node: string;
  address: string;
  vms: { name: string; mac: string; ip: string }[];
  /** The network's VPN router port, when that node is its VPN gateway. */
  router?: { mac: string; ip: string };
}

/** The other mesh nodes hosting VMs of `network` (or its VPN router), with those: what `me`'s VXLAN forwards to. */
export function overlayRemotes(store: Store, me: NodeRow, net: NetworkRow): OverlayRemote[] {
  if (!me.mesh_ip) return [];
  const rows = store.db
    .prepare(
      `SELECT n.name AS node, n.mesh_ip AS address, v.name, x.mac, x.ip FROM nodes n JOIN vms v ON v.node = n.name JOIN nics x ON x.vm_id = v.id
       WHERE n.mesh_ip IS NOT NULL AND n.name != ? AND x.network = ? AND x.ip IS NOT NULL ORDER BY n.name, v.name`,
    )
    .all(me.name, net.name) as { node: string; address: string; name: string; mac: string; ip: string }[];
  const out: OverlayRemote[] = [];
  for (const r of rows) {
    let last = out.at(-1);
    if (last?.node !== r.node) out.push((last = { node: r.node, address: r.address, vms: [] }));
    last.vms.push({ name: r.name, mac: r.mac, ip: r.ip });
  }
  if (net.vpn_node && net.vpn_ip && net.vpn_node !== me.name) {
    const gw = store.db.prepare(`SELECT mesh_ip FROM nodes WHERE name = ? AND mesh_ip IS NOT NULL`).get(net.vpn_node) as { mesh_ip: string } | undefined;
    if (gw) {
      let remote = out.find((r) => r.node === net.vpn_node);
      if (!remote) {
        out.push((remote = { node: net.vpn_node, address: gw.mesh_ip, vms: [] }));
        out.sort((a, b) => byCodeUnit(a.node, b.node));
      }
      remote.router = { mac: vpnRouterMac(net.name), ip: net.vpn_ip };
    }
  }
  return out;
}
