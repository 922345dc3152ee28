/**
 * Private networks as resources. A network is a name, a CIDR and a NAT choice; where it exists
 * on hosts follows from its VMs (the agents build it on the nodes that run one). Networks may
 * use the same CIDR: each is isolated from the others on every host (core/gateway-ns.ts).
 */
import { ApiError } from '../api/errors.ts';
import type { Network, NetworkCreate } from '../api/schemas/network.ts';
import { gatewayOf, overlaps, parseCidr, type Cidr } from '../core/ipv4.ts';
import { guestMtu } from '../core/mtu.ts';
import { freeVni, networkClash, type NetworkKey } from '../core/network-clash.ts';
import { meshUnderlayMtu } from './mesh.ts';
import { networkNodes } from './network-status.ts';
import type { NetworkRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';
import { idempotent, type Once } from './idempotency.ts';
import { lingeringNodes } from './network-linger.ts';

type NetworkListRow = NetworkRow & { created_at: string; vm_count: number; peer_count: number };

export class Networks {
  constructor(private readonly store: Store) {}

  list(): Network[] {
    const rows = this.store.db
      .prepare(`SELECT n.*, (SELECT COUNT(*) FROM nics x WHERE x.network = n.name) AS vm_count, (SELECT COUNT(*) FROM vpn_peers p WHERE p.network = n.name) AS peer_count FROM networks n ORDER BY n.name`)
      .all() as NetworkListRow[];
    const mtu = guestMtu(meshUnderlayMtu(this.store));
    return rows.map((r) => toApi(r, mtu, networkNodes(this.store.db, r.name)));
  }

  get(name: string): Network {
    const row = this.store.db
      .prepare(`SELECT n.*, (SELECT COUNT(*) FROM nics x WHERE x.network = n.name) AS vm_count, (SELECT COUNT(*) FROM vpn_peers p WHERE p.network = n.name) AS peer_count FROM networks n WHERE n.name = ?`)
      .get(name) as NetworkListRow | undefined;
    if (!row) throw new ApiError('not_found', `network ${name} not found`, 'network');
    return toApi(row, guestMtu(meshUnderlayMtu(this.store)), networkNodes(this.store.db, name));
  }

  create(actor: string, req: NetworkCreate, once?: Once): Network {
    return this.store.write(actor, idempotent(once, (tx) => {
      if (tx.db.prepare(`SELECT 1 FROM networks WHERE name = ?`).get(req.name)) throw new ApiError('conflict', `network ${req.name} already exists`, 'name');
      // Networks may overlap (each has its own gateway namespace on every host); the default
      // is still one no other network uses, so a VM can sit on any two of them.
      const cidr = req.cidr ?? freeCidr(this.cidrs(tx).map((t) => t.cidr));
      if (!cidr) throw new ApiError('no_capacity', 'every 10.x.0.0/16 is taken; give --cidr', 'cidr');
      const nat = req.nat ?? true;
      // Refused, not built badly: agents cannot build two networks whose devices have one name,
      // or whose uplinks one address, on a host (core/network-clash.ts).
      const existing = tx.db.prepare(`SELECT name, vni FROM networks`).all() as NetworkKey[];
      const vni = nextVni(existing);
      if (vni === undefined) throw new ApiError('no_capacity', 'every uplink address range is taken (16,384 networks); remove a network first', 'name');
      const clash = networkClash({ name: req.name, vni }, existing);
      if (clash) throw new ApiError('conflict', clash.message, clash.field);
      tx.db
        .prepare(`INSERT INTO networks (name, cidr, gateway, nat, vni, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(req.name, cidr, gatewayOf(parseCidr(cidr)), nat ? 1 : 0, vni, tx.now);
      tx.event('create', 'network', req.name, `network ${req.name} ${cidr}${nat ? '' : ' (no NAT)'}`);
      return this.get(req.name); // inside the write: it is the answer an Idempotency-Key keeps
    }));
  }

  /** Refused while any VM is attached: its address and its traffic would dangle. */
  remove(actor: string, name: string): void {
    this.store.write(actor, (tx) => {
      if (!tx.db.prepare(`SELECT 1 FROM networks WHERE name = ?`).get(name)) throw new ApiError('not_found', `network ${name} not found`, 'network');
      // Its services first: their instances are deleted with them, not one by one.
      const svc = tx.db.prepare(`SELECT name FROM services WHERE network = ? ORDER BY name LIMIT 1`).get(name) as { name: string } | undefined;
      if (svc) throw new ApiError('conflict', `network ${name} has service ${svc.name}; delete it first`, 'name');
      const vms = tx.db.prepare(`SELECT v.name FROM nics x JOIN vms v ON v.id = x.vm_id WHERE x.network = ? ORDER BY v.name LIMIT 6`).all(name) as { name: string }[];
      if (vms.length) {
        const shown = vms.slice(0, 5).map((v) => v.name).join(', ');
        throw new ApiError('conflict', `network ${name} is in use by VMs ${shown}${vms.length > 5 ? ', …' : ''}; delete them first`, 'name');
      }
      const peers = tx.db.prepare(`SELECT name FROM vpn_peers WHERE network = ? ORDER BY name LIMIT 6`).all(name) as { name: string }[];
      if (peers.length) {
        const shown = peers.slice(0, 5).map((v) => v.name).join(', ');
        throw new ApiError('conflict', `network ${name} has VPN peers ${shown}${peers.length > 5 ? ', …' : ''}; revoke them first`, 'name');
      }
      // Nodes where it lingers (no VM of it left there) take it down now: their rows go with it.
      for (const node of lingeringNodes(tx.db, name)) tx.touchNode(node);
      tx.db.prepare(`DELETE FROM networks WHERE name = ?`).run(name);
      tx.event('delete', 'network', name, `network ${name} removed`);
    });
  }

  private cidrs(tx: Tx): { name: string; cidr: Cidr }[] {
    return (tx.db.prepare(`SELECT name, cidr FROM networks ORDER BY name`).all() as { name: string; cidr: string }[]).map((r) => ({ name: r.name, cidr: parseCidr(r.cidr) }));
  }
}

/**
 * The next VNI above the highest in use (the same on every node, as the control plane hands
 * it out), skipping those whose uplink addresses another network has.
 */
function nextVni(existing: readonly NetworkKey[]): number | undefined {
  const top = existing.reduce((m, n) => Math.max(m, n.vni), 99);
  return freeVni(existing.map((n) => n.vni), top + 1);
}

/**
 * The first 10.x.0.0/16 that overlaps no existing network.
 */
export function freeCidr(taken: readonly Cidr[]): string | undefined {
  for (let x = 0; x < 256; x++) {
    const candidate = `10.${x}.0.0/16`;
    const c = parseCidr(candidate);
    if (!taken.some((t) => overlaps(t, c))) return candidate;
  }
  return undefined;
}

/** `mtu`: the same for every network, from the smallest underlay of the mesh. */
function toApi(r: NetworkListRow, mtu: number, nodes: Network['nodes']): Network {
  return { name: r.name, cidr: r.cidr, gateway: r.gateway, mtu, nat: r.nat === 1, vni: r.vni, vmCount: r.vm_count, vpnGateway: r.vpn_node, peerCount: r.peer_count, nodes, createdAt: r.created_at };
}
