/**
 * Private networks as resources. A network is a name, a CIDR and a NAT choice; where it exists
 * on hosts follows from its VMs (the agents build it on the nodes that run one). Networks may
 * use overlapping CIDRs: each is isolated from the others on every host.
 */
import { ApiError } from '../api/errors.ts';
import type { Network, NetworkCreate } from '../api/schemas/network.ts';
import { gatewayOf, overlaps, parseCidr, type Cidr } from '../core/ipv4.ts';
import { guestMtu } from '../core/mtu.ts';
import type { NetworkRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';

type NetworkListRow = NetworkRow & { created_at: string; vm_count: number };

export class Networks {
  constructor(private readonly store: Store) {}

  list(): Network[] {
    const rows = this.store.db
      .prepare(`SELECT n.*, (SELECT COUNT(*) FROM vms v WHERE v.network = n.name) AS vm_count FROM networks n ORDER BY n.name`)
      .all() as NetworkListRow[];
    return rows.map(toApi);
  }

  get(name: string): Network {
    const row = this.store.db
      .prepare(`SELECT n.*, (SELECT COUNT(*) FROM vms v WHERE v.network = n.name) AS vm_count FROM networks n WHERE n.name = ?`)
      .get(name) as NetworkListRow | undefined;
    if (!row) throw new ApiError('not_found', `network ${name} not found`, 'network');
    return toApi(row);
  }

  create(actor: string, req: NetworkCreate): Network {
    this.store.write(actor, (tx) => {
      if (tx.db.prepare(`SELECT 1 FROM networks WHERE name = ?`).get(req.name)) throw new ApiError('conflict', `network ${req.name} already exists`, 'name');
      const cidr = req.cidr ?? freeCidr(this.cidrs(tx));
      if (!cidr) throw new ApiError('no_capacity', 'every 10.x.0.0/16 is taken; give --cidr', 'cidr');
      const nat = req.nat ?? true;
      tx.db
        .prepare(`INSERT INTO networks (name, cidr, gateway, mtu, nat, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(req.name, cidr, gatewayOf(parseCidr(cidr)), guestMtu(), nat ? 1 : 0, tx.now);
      tx.event('create', 'network', req.name, `network ${req.name} ${cidr}${nat ? '' : ' (no NAT)'}`);
    });
    return this.get(req.name);
  }

  /** Refused while any VM is attached: its address and its traffic would dangle. */
  remove(actor: string, name: string): void {
    this.store.write(actor, (tx) => {
      if (!tx.db.prepare(`SELECT 1 FROM networks WHERE name = ?`).get(name)) throw new ApiError('not_found', `network ${name} not found`, 'network');
      const vms = tx.db.prepare(`SELECT name FROM vms WHERE network = ? ORDER BY name LIMIT 6`).all(name) as { name: string }[];
      if (vms.length) {
        const shown = vms.slice(0, 5).map((v) => v.name).join(', ');
        throw new ApiError('conflict', `network ${name} is in use by VMs ${shown}${vms.length > 5 ? ', …' : ''}; delete them first`, 'name');
      }
      tx.db.prepare(`DELETE FROM networks WHERE name = ?`).run(name);
      tx.event('delete', 'network', name, `network ${name} removed`);
    });
  }

  private cidrs(tx: Tx): Cidr[] {
    return (tx.db.prepare(`SELECT cidr FROM networks`).all() as { cidr: string }[]).map((r) => parseCidr(r.cidr));
  }
}

/**
 * The first 10.x.0.0/16 that overlaps no existing network. Overlaps are allowed when asked for
 * (networks are isolated), but a default that collides would surprise anyone routing between
 * them later, e.g. through a VPN peer that joins two networks.
 */
export function freeCidr(taken: readonly Cidr[]): string | undefined {
  for (let x = 0; x < 256; x++) {
    const candidate = `10.${x}.0.0/16`;
    const c = parseCidr(candidate);
    if (!taken.some((t) => overlaps(t, c))) return candidate;
  }
  return undefined;
}

function toApi(r: NetworkListRow): Network {
  return { name: r.name, cidr: r.cidr, gateway: r.gateway, mtu: r.mtu, nat: r.nat === 1, vmCount: r.vm_count, createdAt: r.created_at };
}
