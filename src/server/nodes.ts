/** Nodes: registration, heartbeats with observed state, and each node's desired state. */
import { ApiError } from '../api/errors.ts';
import type { NodeDesired } from '../api/schemas/desired.ts';
import type { Node, NodeReport } from '../api/schemas/node.ts';
import type { VmState } from '../api/schemas/vm.ts';
import { issueToken } from './auth.ts';
import { nodeFromRow, type ImageRow, type NetworkRow, type NodeRow, type NodeUsage, type VmRow } from './store/rows.ts';
import type { Store } from './store/store.ts';

/** A node that has not reported for this long is unreachable; its VMs' state is unknown. */
export const HEARTBEAT_TIMEOUT_MS = 15_000;

export class Nodes {
  constructor(private readonly store: Store) {}

  list(): Node[] {
    const rows = this.store.db.prepare(`SELECT * FROM nodes ORDER BY name`).all() as NodeRow[];
    const usage = this.usage();
    return rows.map((r) => nodeFromRow(r, usage.get(r.name)));
  }

  get(name: string): Node {
    const r = this.row(name);
    return nodeFromRow(r, this.usage().get(name));
  }

  row(name: string): NodeRow {
    const r = this.store.db.prepare(`SELECT * FROM nodes WHERE name = ?`).get(name) as NodeRow | undefined;
    if (!r) throw new ApiError('not_found', `node ${name} not found`, 'node');
    return r;
  }

  /** Resources held by each node's VMs (deleted ones hold theirs until the node confirms). */
  usage(): Map<string, NodeUsage> {
    const rows = this.store.db
      .prepare(`SELECT node, SUM(cpus) AS cpus, SUM(memory_bytes) AS memory_bytes, SUM(disk_bytes) AS disk_bytes, COUNT(*) AS vm_count FROM vms WHERE node IS NOT NULL GROUP BY node`)
      .all() as (NodeUsage & { node: string })[];
    return new Map(rows.map((r) => [r.node, r]));
  }

  create(actor: string, name: string): { node: Node; token: string } {
    return this.store.write(actor, (tx) => {
      if (tx.db.prepare(`SELECT 1 FROM nodes WHERE name = ?`).get(name)) throw new ApiError('conflict', `node ${name} already exists`, 'name');
      tx.db.prepare(`INSERT INTO nodes (name, state, created_at, desired_rev) VALUES (?, 'new', ?, ?)`).run(name, tx.now, tx.revision);
      const token = issueToken(tx.db, 'node', name, tx.now);
      tx.event('create', 'node', name, `node ${name} registered`);
      return { node: this.get(name), token };
    });
  }

  /** Records a node's report; returns the ids of VMs it confirmed deleted. */
  report(name: string, rep: NodeReport): string[] {
    const deleted: string[] = [];
    this.store.write(`node:${name}`, (tx) => {
      const before = this.row(name);
      tx.db
        .prepare(`UPDATE nodes SET state = 'ready', accel = ?, accel_reason = ?, driver = ?, cpus = ?, memory_bytes = ?, disk_bytes = ?, last_heartbeat_at = ? WHERE name = ?`)
        .run(rep.accel, rep.accelReason ?? null, rep.driver, rep.capacity.cpus, rep.capacity.memoryBytes, rep.capacity.diskBytes, tx.now, name);
      if (before.state !== 'ready') tx.event('ready', 'node', name, `node ${name} is ready (${rep.driver}, ${rep.accel})`);

      const vms = tx.db.prepare(`SELECT * FROM vms WHERE node = ?`).all(name) as VmRow[];
      const seen = new Map(rep.vms.map((v) => [v.id, v]));
      for (const vm of vms) {
        const obs = seen.get(vm.id);
        if (vm.power === 'deleted' && (!obs || obs.state === 'stopped')) {
          if (obs) continue; // stopped but not yet destroyed: wait for the next report
          tx.db.prepare(`DELETE FROM vms WHERE id = ?`).run(vm.id);
          deleted.push(vm.id);
          tx.event('deleted', 'vm', vm.name, `vm ${vm.name} deleted on ${name}`);
          continue;
        }
        if (!obs) {
          // The node does not know this VM (yet, or any more after a restart): pending for it.
          if (vm.state === 'unknown') this.setState(tx, vm, 'pending', null);
          continue;
        }
        const state: VmState = vm.power === 'deleted' ? 'deleting' : obs.state;
        if (state !== vm.state || (obs.reason ?? null) !== vm.reason) this.setState(tx, vm, state, obs.reason ?? null);
      }
    });
    return deleted;
  }

  private setState(tx: { db: Store['db']; now: string; event: (a: string, r: string, n: string, m: string) => void }, vm: VmRow, state: VmState, reason: string | null): void {
    tx.db.prepare(`UPDATE vms SET state = ?, reason = ?, updated_at = ? WHERE id = ?`).run(state, reason, tx.now, vm.id);
    tx.event('state', 'vm', vm.name, `vm ${vm.name}: ${vm.state} → ${state}${reason ? ` (${reason})` : ''}`);
  }

  /** Marks nodes that stopped reporting; their VMs become `unknown`. */
  sweep(now: Date): void {
    const cutoff = new Date(now.getTime() - HEARTBEAT_TIMEOUT_MS).toISOString();
    const stale = this.store.db.prepare(`SELECT name FROM nodes WHERE state = 'ready' AND last_heartbeat_at < ?`).all(cutoff) as { name: string }[];
    if (stale.length === 0) return;
    this.store.write('server', (tx) => {
      for (const { name } of stale) {
        tx.db.prepare(`UPDATE nodes SET state = 'unreachable' WHERE name = ?`).run(name);
        tx.db.prepare(`UPDATE vms SET state = 'unknown', updated_at = ? WHERE node = ?`).run(tx.now, name);
        tx.event('unreachable', 'node', name, `node ${name} missed heartbeats for ${HEARTBEAT_TIMEOUT_MS / 1000} s`);
      }
    });
  }

  desiredRevision(name: string): number {
    return this.row(name).desired_rev;
  }

  desired(name: string): NodeDesired {
    const revision = this.desiredRevision(name);
    const vms = this.store.db.prepare(`SELECT * FROM vms WHERE node = ? ORDER BY name`).all(name) as VmRow[];
    const images = new Map<string, ImageRow>();
    const networks = new Map<string, NetworkRow>();
    for (const vm of vms) {
      if (!images.has(vm.image)) images.set(vm.image, this.store.db.prepare(`SELECT * FROM images WHERE name = ?`).get(vm.image) as ImageRow);
      if (!networks.has(vm.network)) networks.set(vm.network, this.store.db.prepare(`SELECT * FROM networks WHERE name = ?`).get(vm.network) as NetworkRow);
    }
    return {
      revision,
      vms: vms.map((vm) => {
        const img = images.get(vm.image)!;
        return {
          id: vm.id,
          name: vm.name,
          cpus: vm.cpus,
          memoryBytes: vm.memory_bytes,
          diskBytes: vm.disk_bytes,
          power: vm.power,
          image: {
            name: img.name,
            kind: img.kind,
            format: img.format,
            ...(img.disk ? { disk: img.disk } : {}),
            ...(img.kernel ? { kernel: img.kernel } : {}),
            ...(img.initrd ? { initrd: img.initrd } : {}),
            ...(img.root_disk ? { rootDisk: img.root_disk } : {}),
            rootFormat: img.root_format,
            cmdline: img.cmdline,
          },
          network: vm.network,
          ip: vm.ip ?? '',
          mac: vm.mac,
          userData: vm.user_data,
          sshKeys: JSON.parse(vm.ssh_keys) as string[],
          restartGen: vm.restart_gen,
        };
      }),
      networks: [...networks.values()].map((n) => ({ name: n.name, cidr: n.cidr, gateway: n.gateway, mtu: n.mtu, nat: n.nat === 1 })),
    };
  }
}
