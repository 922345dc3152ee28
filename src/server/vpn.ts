/**
 * VPN access to a private network. A network's peers (laptops) are WireGuard peers of one node,
 * its VPN gateway, on that node's mesh interface: one UDP port per node for nodes and laptops
 * alike, and no second key. Each peer gets an address in the network's CIDR; the gateway
 * node puts a router port on the network's bridge (its own MAC and address) that answers ARP
 * for the peers, so VMs on every node reach them over the same L2 segment as each other.
 * See docs/architecture.md ("VPN access").
 */
import { ApiError } from '../api/errors.ts';
import type { VpnClientConfig, VpnPeer, VpnPeerCreate, VpnPeerJoined } from '../api/schemas/vpn.ts';
import { allocateIp, parseCidr } from '../core/ipv4.ts';
import { guestMtu } from '../core/mtu.ts';
import { KEEPALIVE_S } from '../core/wireguard-config.ts';
import { meshUnderlayMtu, touchNetworkHosts } from './mesh.ts';
import type { NetworkRow, NodeRow, VpnPeerRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';
import { idempotent, type Once } from './idempotency.ts';
import { serviceBlocks } from './vms.ts';

export class VpnPeers {
  constructor(private readonly store: Store) {}

  list(network: string): VpnPeer[] {
    const net = networkRow(this.store.db, network);
    const rows = this.store.db.prepare(`SELECT * FROM vpn_peers WHERE network = ? ORDER BY name`).all(network) as VpnPeerRow[];
    return rows.map((r) => toApi(r, net.vpn_node!));
  }

  join(actor: string, network: string, req: VpnPeerCreate, once?: Once): VpnPeerJoined {
    return this.store.write(actor, idempotent(once, (tx) => {
      const net = networkRow(tx.db, network);
      if (tx.db.prepare(`SELECT 1 FROM vpn_peers WHERE network = ? AND name = ?`).get(network, req.name)) {
        throw new ApiError('conflict', `network ${network} already has a peer ${req.name}`, 'name');
      }
      // The peer sits on a node's mesh interface next to the other nodes: keys must be unique across both.
      const owner =
        (tx.db.prepare(`SELECT 'peer ' || name || ' of network ' || network AS who FROM vpn_peers WHERE public_key = ?`).get(req.publicKey) as { who: string } | undefined) ??
        (tx.db.prepare(`SELECT 'node ' || name AS who FROM nodes WHERE wg_public_key = ?`).get(req.publicKey) as { who: string } | undefined);
      if (owner) throw new ApiError('conflict', `this public key is already used by ${owner.who}`, 'publicKey');

      const gw = gatewayFor(tx, net);
      const { endpoint, endpointSource } = vpnEndpoint(gw, req.endpoint);
      const cidr = parseCidr(net.cidr);
      const used = usedAddresses(tx, network);
      // Peers of every network share the gateway's mesh interface, where each address routes to
      // one peer: unique across networks there, as networks may share a CIDR.
      for (const r of tx.db.prepare(`SELECT p.ip FROM vpn_peers p JOIN networks n ON n.name = p.network WHERE n.vpn_node = ?`).all(gw.name) as { ip: string }[]) used.add(r.ip);
      // Services' blocks hold their instances' addresses only.
      const exclude = serviceBlocks(tx.db, network);
      const routerIp = net.vpn_ip ?? allocateIp(cidr, used, undefined, { exclude });
      if (routerIp) used.add(routerIp);
      const ip = routerIp ? allocateIp(cidr, used, undefined, { exclude }) : undefined;
      if (!routerIp || !ip) throw new ApiError('no_capacity', `network ${network} (${net.cidr}) has no free address`, 'network');

      const row: VpnPeerRow = { network, name: req.name, public_key: req.publicKey, ip, endpoint, created_at: tx.now };
      tx.db.prepare(`INSERT INTO vpn_peers (network, name, public_key, ip, endpoint, created_at) VALUES (@network, @name, @public_key, @ip, @endpoint, @created_at)`).run(row);
      const newGateway = net.vpn_node !== gw.name;
      if (newGateway || net.vpn_ip !== routerIp) tx.db.prepare(`UPDATE networks SET vpn_node = ?, vpn_ip = ? WHERE name = ?`).run(gw.name, routerIp, network);
      // The gateway adds the peer; when the router port is new, every host of the network
      // learns where its MAC lives (and floods ARP to the gateway).
      if (newGateway) touchNetworkHosts(tx, network);
      tx.touchNode(gw.name);
      tx.event('join', 'network', network, `VPN peer ${req.name} joined network ${network} at ${ip} through node ${gw.name}`);
      const config: VpnClientConfig = {
        address: `${ip}/${cidr.prefix}`,
        dns: net.gateway,
        mtu: guestMtu(meshUnderlayMtu(this.store)),
        serverPublicKey: gw.wg_public_key!,
        endpoint,
        allowedIps: [net.cidr],
        persistentKeepalive: KEEPALIVE_S,
      };
      return { ...toApi(row, gw.name), endpointSource, config };
    }));
  }

  /** The gateway drops the peer from its WireGuard interface: its tunnel stops at once. */
  revoke(actor: string, network: string, peer: string): void {
    this.store.write(actor, (tx) => {
      const net = networkRow(tx.db, network);
      const r = tx.db.prepare(`DELETE FROM vpn_peers WHERE network = ? AND name = ?`).run(network, peer);
      if (r.changes === 0) throw new ApiError('not_found', `network ${network} has no peer ${peer}`, 'peer');
      tx.touchNode(net.vpn_node);
      if (!tx.db.prepare(`SELECT 1 FROM vpn_peers WHERE network = ?`).get(network)) {
        // The last one: the router port goes, and every host forgets it.
        touchNetworkHosts(tx, network);
        tx.db.prepare(`UPDATE networks SET vpn_node = NULL, vpn_ip = NULL WHERE name = ?`).run(network);
      }
      tx.event('revoke', 'network', network, `VPN peer ${peer} of network ${network} revoked`);
    });
  }
}

/**
 * Where a new peer sends to: what the request says; else the gateway's mesh endpoint (its
 * --wg-endpoint, or the address its reports come from: what other machines reach); else,
 * for an agent beside the control plane (its reports come from loopback), its address on its
 * default route, most likely what a laptop on its LAN reaches; the answer says which.
 */
function vpnEndpoint(gw: NodeRow, requested: string | undefined): Pick<VpnPeerJoined, 'endpoint' | 'endpointSource'> {
  if (requested) return { endpoint: requested, endpointSource: 'request' };
  if (gw.wg_endpoint) return { endpoint: gw.wg_endpoint, endpointSource: 'mesh' };
  if (gw.default_endpoint) return { endpoint: gw.default_endpoint, endpointSource: 'default-route' };
  throw new ApiError(
    'conflict',
    `the VPN gateway node ${gw.name} has no endpoint a peer can reach (its agent reported none, and no address on a default route); pass --endpoint host:port (the request's endpoint), or restart its agent with --wg-endpoint`,
    'endpoint',
  );
}

function networkRow(db: Tx['db'], name: string): NetworkRow {
  const n = db.prepare(`SELECT * FROM networks WHERE name = ?`).get(name) as NetworkRow | undefined;
  if (!n) throw new ApiError('not_found', `network ${name} not found`, 'network');
  return n;
}

/**
 * The network's gateway node: the one it has (or a refusal, if that one left the mesh), else a
 * ready mesh node, preferring one with an endpoint (a laptop must reach it), then one with an
 * address on its default route (the next best guess), then the one running most of the
 * network's VMs (their traffic to peers then stays on the node).
 */
function gatewayFor(tx: Tx, net: NetworkRow): NodeRow {
  if (net.vpn_node) {
    const cur = tx.db.prepare(`SELECT * FROM nodes WHERE name = ? AND wg_public_key IS NOT NULL AND mesh_ip IS NOT NULL`).get(net.vpn_node) as NodeRow | undefined;
    // Never moved quietly: the existing peers' files name this node's key and endpoint.
    if (!cur) throw new ApiError('conflict', `network ${net.name}'s VPN gateway ${net.vpn_node} is not in the mesh; bring it back, or revoke the network's peers first`, 'network');
    return cur;
  }
  const row = tx.db
    .prepare(
      `SELECT n.* FROM nodes n WHERE n.mesh_ip > '' AND n.wg_public_key IS NOT NULL AND n.state = 'ready'
       ORDER BY n.wg_endpoint IS NOT NULL DESC, n.default_endpoint IS NOT NULL DESC, (SELECT COUNT(*) FROM vms v WHERE v.node = n.name AND v.network = ?) DESC, n.name LIMIT 1`,
    )
    .get(net.name) as NodeRow | undefined;
  if (!row) throw new ApiError('conflict', 'no ready node is in the WireGuard mesh yet: start an agent with the mesh on (not --no-mesh)', 'network');
  return row;
}

/** Every address of the network that is taken: its VMs' NICs', its peers' and its router's. */
export function usedAddresses(tx: Pick<Tx, 'db'>, network: string): Set<string> {
  const rows = tx.db
    .prepare(
      `SELECT ip FROM nics WHERE network = @n AND ip IS NOT NULL
       UNION ALL SELECT ip FROM vpn_peers WHERE network = @n
       UNION ALL SELECT vpn_ip FROM networks WHERE name = @n AND vpn_ip IS NOT NULL`,
    )
    .all({ n: network }) as { ip: string }[];
  return new Set(rows.map((r) => r.ip));
}

function toApi(r: VpnPeerRow, gateway: string): VpnPeer {
  return { name: r.name, network: r.network, ip: r.ip, publicKey: r.public_key, gateway, endpoint: r.endpoint, createdAt: r.created_at };
}
