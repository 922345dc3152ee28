/**
 * VMs: create (validate → schedule → allocate address, all in one transaction, so two
 * concurrent creates can never over-fill a node), power changes, resize, user-data, delete.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Vm, VmCreate } from '../api/schemas/vm.ts';
import { allocateIp, parseCidr } from '../core/ipv4.ts';
import { schedule, type NodeSnapshot } from '../core/scheduler.ts';
import { humanSize, MiB, parseSize } from '../core/units.ts';
import type { Images } from './images.ts';
import type { Nodes } from './nodes.ts';
import { vmFromRow, type NetworkRow, type VmRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';

export const MIN_MEMORY = 64 * MiB;
export const DEFAULT_NETWORK = 'default';

export class Vms {
  constructor(
    private readonly store: Store,
    private readonly nodes: Nodes,
    private readonly images: Images,
  ) {}

  list(): Vm[] {
    return (this.store.db.prepare(`SELECT * FROM vms ORDER BY name`).all() as VmRow[]).map(vmFromRow);
  }

  get(name: string): Vm {
    return vmFromRow(this.row(name));
  }

  row(name: string): VmRow {
    const r = this.store.db.prepare(`SELECT * FROM vms WHERE name = ?`).get(name) as VmRow | undefined;
    if (!r) throw new ApiError('not_found', `vm ${name} not found`, 'name');
    return r;
  }

  create(actor: string, req: VmCreate): Vm {
    const memoryBytes = parseSize(req.memory ?? '512M')!;
    const diskBytes = parseSize(req.disk ?? '2G')!;
    const cpus = req.cpus ?? 1;
    if (memoryBytes < MIN_MEMORY) throw new ApiError('invalid', `memory must be at least ${humanSize(MIN_MEMORY)}`, 'memory');
    const image = this.images.row(req.image);
    const imageDisk = image.disk ?? image.root_disk;
    if (imageDisk && image.format !== 'qcow2') {
      // A raw base becomes the overlay's backing file: the overlay cannot be smaller.
      const size = this.store.db.prepare(`SELECT size_bytes FROM blobs WHERE sha256 = ?`).get(imageDisk) as { size_bytes: number };
      if (diskBytes < size.size_bytes) throw new ApiError('invalid', `disk must be at least the image's ${humanSize(size.size_bytes)}`, 'disk');
    }
    if (req.node) this.nodes.row(req.node);

    return this.store.write(actor, (tx) => {
      if (tx.db.prepare(`SELECT 1 FROM vms WHERE name = ?`).get(req.name)) throw new ApiError('conflict', `vm ${req.name} already exists`, 'name');
      const placement = schedule(this.snapshot(), { cpus, memoryBytes, diskBytes, ...(req.node ? { node: req.node } : {}) });
      if (!placement.ok) throw new ApiError('no_capacity', `no node can take ${cpus} cpu, ${humanSize(memoryBytes)} memory, ${humanSize(diskBytes)} disk: ${placement.reasons.join('; ')}`, req.node ? 'node' : undefined);
      const net = this.network(tx, DEFAULT_NETWORK);
      const used = new Set((tx.db.prepare(`SELECT ip FROM vms WHERE network = ? AND ip IS NOT NULL`).all(net.name) as { ip: string }[]).map((r) => r.ip));
      const ip = allocateIp(parseCidr(net.cidr), used);
      if (!ip) throw new ApiError('no_capacity', `network ${net.name} (${net.cidr}) has no free address`, 'network');
      const row: VmRow = {
        id: randomBytes(6).toString('hex'),
        name: req.name,
        image: image.name,
        node: placement.node,
        cpus,
        memory_bytes: memoryBytes,
        disk_bytes: diskBytes,
        power: 'running',
        state: 'pending',
        reason: null,
        network: net.name,
        ip,
        mac: this.freshMac(tx),
        user_data: req.userData ?? '',
        ssh_keys: JSON.stringify(req.sshKeys ?? []),
        pending_cpus: null,
        pending_memory_bytes: null,
        restart_gen: 0,
        created_at: tx.now,
        updated_at: tx.now,
      };
      tx.db
        .prepare(
          `INSERT INTO vms (id, name, image, node, cpus, memory_bytes, disk_bytes, power, state, reason, network, ip, mac, user_data, ssh_keys, pending_cpus, pending_memory_bytes, restart_gen, created_at, updated_at)
           VALUES (@id, @name, @image, @node, @cpus, @memory_bytes, @disk_bytes, @power, @state, @reason, @network, @ip, @mac, @user_data, @ssh_keys, @pending_cpus, @pending_memory_bytes, @restart_gen, @created_at, @updated_at)`,
        )
        .run(row);
      tx.touchNode(row.node);
      tx.event('create', 'vm', row.name, `vm ${row.name} (${cpus} cpu, ${humanSize(memoryBytes)}) on ${row.node} at ${ip}`);
      return vmFromRow(row);
    });
  }

  remove(actor: string, name: string): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      if (vm.node === null) {
        tx.db.prepare(`DELETE FROM vms WHERE id = ?`).run(vm.id);
        tx.event('deleted', 'vm', name, `vm ${name} deleted`);
        return { ...vmFromRow(vm), state: 'deleting' };
      }
      this.update(tx, vm, { power: 'deleted', state: 'deleting' });
      tx.event('delete', 'vm', name, `vm ${name} to be deleted on ${vm.node}`);
      return this.get(name);
    });
  }

  setPower(actor: string, name: string, action: 'start' | 'stop' | 'restart'): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      if (vm.power === 'deleted') throw new ApiError('conflict', `vm ${name} is being deleted`, 'name');
      const resize = action === 'stop' ? {} : this.takePending(vm);
      // (`start` of a VM that is up leaves a pending resize pending: it needs a restart.)
      if (action === 'stop') this.update(tx, vm, { power: 'stopped', state: vm.state === 'stopped' ? 'stopped' : 'stopping' });
      else if (action === 'start') {
        // Starting a VM that is up changes nothing; otherwise a new power generation tells
        // the agent to start it, even one whose guest powered itself off.
        const up = vm.power === 'running' && (vm.state === 'running' || vm.state === 'booting');
        if (!up) this.update(tx, vm, { power: 'running', state: 'pending', restart_gen: vm.restart_gen + 1, ...resize });
      }
      else this.update(tx, vm, { power: 'running', state: 'pending', restart_gen: vm.restart_gen + 1, ...resize });
      tx.event(action, 'vm', name, `vm ${name}: ${action}${'cpus' in resize ? ' (with pending resize)' : ''}`);
      return this.get(name);
    });
  }

  /** A resize is applied at the next start; until then it is shown as pending. */
  resize(actor: string, name: string, req: { cpus?: number | undefined; memory?: string | undefined }): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      const cpus = req.cpus ?? vm.pending_cpus ?? vm.cpus;
      const memoryBytes = req.memory !== undefined ? parseSize(req.memory)! : (vm.pending_memory_bytes ?? vm.memory_bytes);
      if (memoryBytes < MIN_MEMORY) throw new ApiError('invalid', `memory must be at least ${humanSize(MIN_MEMORY)}`, 'memory');
      if (vm.node) {
        const node = this.snapshot().find((n) => n.name === vm.node)!;
        const others = { ...node, allocated: { cpus: node.allocated.cpus - vm.cpus, memoryBytes: node.allocated.memoryBytes - vm.memory_bytes, diskBytes: node.allocated.diskBytes - vm.disk_bytes } };
        const fit = schedule([others], { cpus, memoryBytes, diskBytes: vm.disk_bytes, node: vm.node });
        if (!fit.ok) throw new ApiError('no_capacity', `resize does not fit: ${fit.reasons.join('; ')}`, req.memory !== undefined ? 'memory' : 'cpus');
      }
      this.update(tx, vm, { pending_cpus: cpus, pending_memory_bytes: memoryBytes });
      tx.event('resize', 'vm', name, `vm ${name}: resize to ${cpus} cpu, ${humanSize(memoryBytes)} at next start`);
      return this.get(name);
    });
  }

  setUserData(actor: string, name: string, userData: string): string {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      this.update(tx, vm, { user_data: userData });
      tx.event('user-data', 'vm', name, `vm ${name}: user-data replaced (${userData.length} bytes)`);
      return userData;
    });
  }

  private takePending(vm: VmRow): Partial<VmRow> {
    if (vm.pending_cpus === null || vm.pending_memory_bytes === null) return {};
    return { cpus: vm.pending_cpus, memory_bytes: vm.pending_memory_bytes, pending_cpus: null, pending_memory_bytes: null };
  }

  private update(tx: Tx, vm: VmRow, fields: Partial<VmRow>): void {
    const cols = Object.keys(fields);
    tx.db.prepare(`UPDATE vms SET ${cols.map((c) => `${c} = @${c}`).join(', ')}, updated_at = @updated_at WHERE id = @id`).run({ ...fields, updated_at: tx.now, id: vm.id });
    tx.touchNode(vm.node);
  }

  private network(tx: Tx, name: string): NetworkRow {
    const n = tx.db.prepare(`SELECT * FROM networks WHERE name = ?`).get(name) as NetworkRow | undefined;
    if (!n) throw new ApiError('not_found', `network ${name} not found`, 'network');
    return n;
  }

  /** Locally administered MACs in QEMU's 52:54:00 range, unique across the cluster. */
  private freshMac(tx: Tx): string {
    for (;;) {
      const mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      if (!tx.db.prepare(`SELECT 1 FROM vms WHERE mac = ?`).get(mac)) return mac;
    }
  }

  private snapshot(): NodeSnapshot[] {
    return this.nodes.list().map((n) => ({ name: n.name, ready: n.state === 'ready', capacity: n.capacity, allocated: n.allocated, vmCount: n.vmCount }));
  }
}
