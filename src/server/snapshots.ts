/**
 * Disk snapshots, restore, reinit and clones of VMs (issue 16). The control plane keeps the
 * rows and the rules; the VM's node keeps the files (agent contract: `DesiredVm.snapshots`,
 * `restore`, `base`, `initialSnapshot` in api/schemas/desired.ts) and reports each one
 * `ready` or `failed` (`ObservedVmReport.snapshots`).
 *
 * The chain: a snapshot's file is the VM's disk as it was when taken, frozen read-only; the
 * disk goes on as a new overlay on it. So every snapshot but the first stands on another
 * (`parent`), the VM's current disk on one (`vms.disk_snapshot`), and a clone's disk on its
 * source's (`vms.clone_snapshot`). Deleting a file something stands on would break that
 * disk: such a delete is refused, here and again on the node (it reads the qcow2 headers).
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import { INITIAL_SNAPSHOT, type Snapshot, type SnapshotState, type VmClone } from '../api/schemas/snapshot.ts';
import type { ObservedVmReport } from '../api/schemas/node.ts';
import type { Vm, VmCreate } from '../api/schemas/vm.ts';
import { nextSnapshotName } from '../core/snapshot-plan.ts';
import { formatSize } from '../core/units.ts';
import { dataDisksOf, type VmRow } from './store/rows.ts';
import { networksOf } from './store/nics.ts';
import type { Store, Tx } from './store/store.ts';
import type { Vms } from './vms.ts';
import { exportingSnapshot, insertExport } from './exports.ts';

export interface SnapshotRow {
  id: string;
  vm_id: string;
  name: string;
  node: string;
  state: SnapshotState;
  reason: string | null;
  pause_ms: number | null;
  size_bytes: number | null;
  parent: string | null;
  /** 1: a memory snapshot (RAM and device state saved with the disk). */
  memory: number;
  memory_bytes: number | null;
  /** The VM's vCPUs and memory when it was taken: a restore from its state needs the same. */
  memory_cpus: number | null;
  memory_ram_bytes: number | null;
  created_at: string;
  updated_at: string;
}

function newId(): string {
  const u = randomUUID();
  return (u.slice(0, 8) + u.slice(9, 13)).slice(0, 12);
}

/**
 * The `initial` snapshot of a new VM: its disk stands on it from the start. It is `ready` as
 * made: its node makes it with the disk (before the guest's first write) and before anything
 * it is asked can use it (a restore, a clone's disk), so it is never pending, its node reports
 * nothing of it, and it costs no event (the VM's create says it all) and no wake-up of its node.
 */
export function insertInitialSnapshot(tx: Tx, vm: { id: string; node: string }): string {
  const id = newId();
  tx.db
    .prepare(`INSERT INTO snapshots (id, vm_id, name, node, state, parent, created_at, updated_at) VALUES (?, ?, ?, ?, 'ready', NULL, ?, ?)`)
    .run(id, vm.id, INITIAL_SNAPSHOT, vm.node, tx.now, tx.now);
  tx.db.prepare(`UPDATE vms SET disk_snapshot = ? WHERE id = ?`).run(id, vm.id);
  return id;
}

/** A snapshot as a node's desired state lists it. */
export type NodeSnapshot = { id: string; name: string; state: 'pending' | 'ready'; memory?: boolean };

/** The snapshots a node is to keep (and take), by VM: pending and ready ones on it, oldest first. One query per render. */
export function nodeSnapshots(db: Tx['db'], node: string): Map<string, NodeSnapshot[]> {
  const rows = db.prepare(`SELECT s.vm_id, s.id, s.name, s.state, s.memory FROM snapshots s JOIN vms v ON v.id = s.vm_id AND v.node = s.node WHERE s.node = ? AND s.state IN ('pending', 'ready') ORDER BY s.created_at, s.rowid`).all(node) as { vm_id: string; id: string; name: string; state: 'pending' | 'ready'; memory: number }[];
  const out = new Map<string, NodeSnapshot[]>();
  for (const r of rows) {
    const list = out.get(r.vm_id) ?? [];
    list.push({ id: r.id, name: r.name, state: r.state, ...(r.memory ? { memory: true } : {}) });
    out.set(r.vm_id, list);
  }
  return out;
}

export type SnapshotChange = { row: SnapshotRow; state: 'ready' | 'failed'; reason: string | null; pauseMs: number | null; sizeBytes: number | null; memoryBytes: number | null };

/** What a node's report settles about its pending snapshots (the only ones it can change). */
export function snapshotReportChanges(db: Tx['db'], node: string, vms: readonly ObservedVmReport[]): SnapshotChange[] {
  const pending = db.prepare(`SELECT * FROM snapshots WHERE node = ? AND state = 'pending'`).all(node) as SnapshotRow[];
  if (pending.length === 0) return [];
  const seen = new Map<string, NonNullable<ObservedVmReport['snapshots']>[number]>();
  for (const v of vms) for (const s of v.snapshots ?? []) seen.set(`${v.id}/${s.id}`, s);
  const out: SnapshotChange[] = [];
  for (const row of pending) {
    const s = seen.get(`${row.vm_id}/${row.id}`);
    if (s) out.push({ row, state: s.state, reason: s.reason ?? null, pauseMs: s.pauseMs ?? null, sizeBytes: s.sizeBytes ?? null, memoryBytes: s.memoryBytes ?? null });
  }
  return out;
}

/** Applies them in the report's write; a failed take leaves the VM's disk where it stood. */
export function applySnapshotChanges(tx: Tx, changes: readonly SnapshotChange[]): void {
  for (const c of changes) {
    tx.db.prepare(`UPDATE snapshots SET state = ?, reason = ?, pause_ms = ?, size_bytes = ?, memory_bytes = ?, updated_at = ? WHERE id = ?`).run(c.state, c.reason, c.pauseMs, c.sizeBytes, c.row.memory ? c.memoryBytes : null, tx.now, c.row.id);
    const vm = tx.db.prepare(`SELECT name, disk_snapshot FROM vms WHERE id = ?`).get(c.row.vm_id) as { name: string; disk_snapshot: string | null } | undefined;
    if (!vm) continue;
    if (c.state === 'failed' && vm.disk_snapshot === c.row.id) tx.db.prepare(`UPDATE vms SET disk_snapshot = ? WHERE id = ?`).run(c.row.parent, c.row.vm_id);
    // Its node stops reporting a ready one; a failed one leaves its list (it removes whatever a failed take left).
    tx.touchNode(c.row.node);
    const pause = c.pauseMs !== null ? ` (guest paused ${c.pauseMs.toFixed(1)} ms)` : '';
    const memory = c.row.memory && c.memoryBytes !== null ? `, with ${formatSize(c.memoryBytes)} of memory state` : '';
    const readyKind = c.row.memory ? 'snapshot.memory' : 'snapshot';
    tx.event(c.state === 'ready' ? readyKind : 'snapshot-failed', 'vm', vm.name, c.state === 'ready' ? `vm ${vm.name}: ${c.row.memory ? 'memory ' : ''}snapshot ${c.row.name} ready${pause}${memory}` : `vm ${vm.name}: snapshot ${c.row.name} failed: ${c.reason ?? 'no reason given'}`);
  }
}

/** On a move to another node (drain, evacuate) a VM's snapshots stay where their files are: lost, and said so. */
export function loseSnapshots(tx: Tx, vm: VmRow, why: string): void {
  tx.db.prepare(`UPDATE snapshots SET state = 'lost', reason = ?, updated_at = ? WHERE vm_id = ? AND state IN ('pending', 'ready')`).run(`left on node ${vm.node} (${why}): the VM was recreated elsewhere from its image`, tx.now, vm.id);
  tx.db.prepare(`UPDATE vms SET disk_snapshot = NULL, clone_snapshot = NULL, restore_snapshot = NULL WHERE id = ?`).run(vm.id);
}

/** Clones standing on a snapshot of this VM: while they exist its files must stay. */
export function clonesOf(db: Tx['db'], vmId: string): string[] {
  return (db.prepare(`SELECT c.name FROM vms c JOIN snapshots s ON s.id = c.clone_snapshot WHERE s.vm_id = ? ORDER BY c.name`).all(vmId) as { name: string }[]).map((r) => r.name);
}

export class Snapshots {
  constructor(
    private readonly store: Store,
    private readonly vms: Vms,
  ) {}

  list(vmName: string): Snapshot[] {
    const vm = this.vms.row(vmName);
    const rows = this.store.db.prepare(`SELECT * FROM snapshots WHERE vm_id = ? ORDER BY created_at, rowid`).all(vm.id) as SnapshotRow[];
    return rows.map((r) => this.view(r, vm, rows));
  }

  get(vmName: string, snap: string): Snapshot {
    const vm = this.vms.row(vmName);
    const rows = this.store.db.prepare(`SELECT * FROM snapshots WHERE vm_id = ?`).all(vm.id) as SnapshotRow[];
    return this.view(this.find(vm, snap, 'snap'), vm, rows);
  }

  /**
   * Asks the VM's node for a crash-consistent snapshot of its root disk (202: pending until the
   * node reports it); `memory`: with the guest's RAM and device state, of a running VM only.
   */
  take(actor: string, vmName: string, name?: string, memory = false): Snapshot {
    return this.store.write(actor, (tx) => {
      const vm = this.vms.row(vmName);
      const row = this.takeIn(tx, vm, name, newId(), 'name', memory);
      return this.view(row, { ...vm, disk_snapshot: row.id }, [row]);
    });
  }

  takeIn(tx: Tx, vm: VmRow, name: string | undefined, id: string, field: string, memory = false): SnapshotRow {
    this.usable(tx, vm, 'name');
    if (vm.state === 'pending' || vm.state === 'creating') throw new ApiError('conflict', `vm ${vm.name} is ${vm.state}: its node has not made (or is remaking) its disk; snapshot it once it is running or stopped`, 'name');
    // Its RAM is saved only from a guest that runs (a booting one has not fetched its metadata yet: it would boot on after a restore as if it had).
    if (memory && !(vm.power === 'running' && vm.state === 'running')) throw new ApiError('conflict', `vm ${vm.name} is ${vm.state}: a memory snapshot is of a running guest (a disk snapshot, without --memory, can be taken now)`, 'name');
    const rows = tx.db.prepare(`SELECT name, state FROM snapshots WHERE vm_id = ?`).all(vm.id) as { name: string; state: SnapshotState }[];
    const waiting = rows.find((r) => r.state === 'pending');
    if (waiting) throw new ApiError('conflict', `snapshot ${waiting.name} of vm ${vm.name} is still pending: one at a time`, 'name');
    const snapName = name ?? nextSnapshotName(new Set(rows.map((r) => r.name)));
    if (rows.some((r) => r.name === snapName)) throw new ApiError('conflict', `vm ${vm.name} already has a snapshot ${snapName}`, field);
    const row: SnapshotRow = {
      id,
      vm_id: vm.id,
      name: snapName,
      node: vm.node!,
      state: 'pending',
      reason: null,
      pause_ms: null,
      size_bytes: null,
      parent: vm.disk_snapshot ?? null,
      memory: memory ? 1 : 0,
      memory_bytes: null,
      memory_cpus: memory ? vm.cpus : null,
      memory_ram_bytes: memory ? vm.memory_bytes : null,
      created_at: tx.now,
      updated_at: tx.now,
    };
    tx.db
      .prepare(`INSERT INTO snapshots (id, vm_id, name, node, state, parent, memory, memory_cpus, memory_ram_bytes, created_at, updated_at) VALUES (@id, @vm_id, @name, @node, @state, @parent, @memory, @memory_cpus, @memory_ram_bytes, @created_at, @updated_at)`)
      .run(row);
    tx.db.prepare(`UPDATE vms SET disk_snapshot = ? WHERE id = ?`).run(id, vm.id);
    tx.touchNode(vm.node);
    tx.event('snapshot', 'vm', vm.name, `vm ${vm.name}: ${memory ? 'memory ' : ''}snapshot ${snapName} asked of node ${vm.node}`);
    return row;
  }

  /** The VM restarts with its disk a new overlay on the snapshot: what it wrote since is gone. */
  restore(actor: string, vmName: string, snap: string, field = 'snap'): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.vms.row(vmName);
      this.usable(tx, vm, 'name');
      const s = this.find(vm, snap, field);
      // Its saved RAM belongs to the disk it has now: resuming it on another would corrupt the guest's filesystems.
      if (vm.power === 'suspended' || (vm.power === 'running' && vm.state === 'suspended')) throw new ApiError('conflict', `vm ${vm.name} is suspended: resume it or stop it (which discards its memory state) before a restore`, 'name');
      if (s.state !== 'ready') throw new ApiError('conflict', `snapshot ${s.name} of vm ${vm.name} is ${s.state}${s.reason ? ` (${s.reason})` : ''}: only a ready snapshot can be restored`, field);
      if (s.node !== vm.node) throw new ApiError('conflict', `snapshot ${s.name} is on node ${s.node}, vm ${vm.name} on ${vm.node}`, field);
      // Its state is of the devices it was saved from: a VM resized since cannot take it.
      if (s.memory && (s.memory_cpus !== vm.cpus || s.memory_ram_bytes !== vm.memory_bytes)) {
        throw new ApiError('conflict', `memory snapshot ${s.name} was taken with ${s.memory_cpus} vCPU and ${formatSize(s.memory_ram_bytes ?? 0)} of memory; vm ${vm.name} now has ${vm.cpus} vCPU and ${formatSize(vm.memory_bytes)}: resize it back to restore it`, field);
      }
      tx.db
        .prepare(`UPDATE vms SET restore_snapshot = ?, restore_gen = restore_gen + 1, disk_snapshot = ?, power = 'running', state = 'pending', reason = NULL, restart_gen = restart_gen + 1, updated_at = ? WHERE id = ?`)
        .run(s.id, s.id, tx.now, vm.id);
      tx.touchNode(vm.node);
      tx.event(
        s.name === INITIAL_SNAPSHOT && field === 'name' ? 'reinit' : 'restore',
        'vm',
        vm.name,
        s.memory ? `vm ${vm.name}: resuming from memory snapshot ${s.name} (its guest goes on from that instant; its disk's changes since are discarded)` : `vm ${vm.name}: restarting from snapshot ${s.name} (its disk's changes since are discarded)`,
      );
      return this.vms.get(vmName);
    });
  }

  /** Rolls the VM back to its first boot (waifud's reinit). */
  reinit(actor: string, vmName: string): Vm {
    return this.restore(actor, vmName, INITIAL_SNAPSHOT, 'name');
  }

  /**
   * Deletes a snapshot; one that the VM's current disk or its other snapshots stand on is
   * merged into them by its node (see docs/architecture.md). Refused for `initial`, under a
   * clone, while pending or being copied, and (merging) unless the VM is running or stopped;
   * a running VM's snapshot standing on it needs the VM stopped. Its node removes the file
   * at its next reconcile.
   */
  remove(actor: string, vmName: string, snap: string): void {
    this.store.write(actor, (tx) => {
      const vm = this.vms.row(vmName);
      const s = this.find(vm, snap, 'snap');
      if (s.name === INITIAL_SNAPSHOT) throw new ApiError('conflict', `snapshot ${INITIAL_SNAPSHOT} is what \`vm reinit\` restores, and every later disk of the VM stands on it: it goes with the VM`, 'snap');
      if (s.state === 'pending') throw new ApiError('conflict', `snapshot ${s.name} is still pending`, 'snap');
      if (exportingSnapshot(tx.db, s.id)) throw new ApiError('conflict', `snapshot ${s.name} is being copied by its node (an image or a clone on another node is made of it): delete it once that is done`, 'snap');
      const clones = (tx.db.prepare(`SELECT name FROM vms WHERE clone_snapshot = ? ORDER BY name`).all(s.id) as { name: string }[]).map((r) => r.name);
      if (clones.length) throw new ApiError('conflict', `vm${clones.length > 1 ? 's' : ''} ${clones.join(', ')} ${clones.length > 1 ? 'are clones' : 'is a clone'} of snapshot ${s.name}: delete ${clones.length > 1 ? 'them' : 'it'} first`, 'snap');
      const children = tx.db.prepare(`SELECT id, name, state FROM snapshots WHERE parent = ? AND state IN ('pending', 'ready')`).all(s.id) as { id: string; name: string; state: string }[];
      const underDisk = vm.disk_snapshot === s.id && s.state === 'ready';
      if (underDisk || children.length) {
        // Merge on delete: what stands on it will stand on its parent, its data merged into
        // them by the node (qemu-snapshots.ts `mergeInto`); only on a settled VM.
        const also = children.map((c) => c.name);
        if (vm.state !== 'running' && vm.state !== 'stopped') throw new ApiError('conflict', `${underDisk ? `vm ${vm.name}'s current disk` : `snapshot ${also.join(', ')}`} stands on snapshot ${s.name}, and vm ${vm.name} is ${vm.state}: it can be merged away once the VM is running or stopped`, 'snap');
        if (children.some((c) => c.state === 'pending')) throw new ApiError('conflict', `snapshot ${children.find((c) => c.state === 'pending')!.name} on snapshot ${s.name} is still pending`, 'snap');
        // A running VM's frozen layers are open in QEMU: only its active layer can take the data.
        if (children.length && vm.power !== 'stopped') throw new ApiError('conflict', `snapshot${also.length > 1 ? 's' : ''} ${also.join(', ')} of vm ${vm.name} stand${also.length > 1 ? '' : 's'} on snapshot ${s.name}: stop the VM to merge it into ${also.length > 1 ? 'them' : 'it'} (or delete ${also.length > 1 ? 'them' : 'it'} first)`, 'snap');
        tx.db.prepare(`UPDATE snapshots SET parent = ? WHERE parent = ?`).run(s.parent, s.id);
        if (underDisk) tx.db.prepare(`UPDATE vms SET disk_snapshot = ? WHERE id = ?`).run(s.parent, vm.id);
      }
      // A restore done (the VM is settled) needs its snapshot no more.
      if (vm.restore_snapshot === s.id) tx.db.prepare(`UPDATE vms SET restore_snapshot = NULL WHERE id = ?`).run(vm.id);
      tx.db.prepare(`DELETE FROM snapshots WHERE id = ?`).run(s.id);
      tx.touchNode(s.node);
      tx.event('snapshot-deleted', 'vm', vm.name, `vm ${vm.name}: snapshot ${s.name} deleted${underDisk || children.length ? ' (merged into what stood on it)' : ''}`);
    });
  }

  /**
   * A new VM whose root disk starts from a snapshot of `vmName`: its own name, MAC, address
   * and instance-id (its id), on the snapshot's node (where its bytes are) by default. Data
   * disks are made new and empty, as for any new VM. Without `snapshot`, one (`clone-NEW`) is
   * taken now. On another node (`node`): the snapshot's node flattens it and uploads it
   * (exports.ts), the clone's node fetches that copy (a full one) and the clone's first layer
   * stands on it; the clone waits `pending` until then.
   */
  clone(actor: string, vmName: string, body: VmClone): Promise<Vm> | Vm {
    const src = this.vms.row(vmName);
    if (src.service !== null) throw new ApiError('invalid', `vm ${vmName} is an instance of service ${src.service}: clone plain VMs (a service's instances come and go with it)`, 'name');
    let snap: SnapshotRow | undefined;
    if (body.snapshot !== undefined) {
      snap = this.find(src, body.snapshot, 'snapshot');
      if (snap.state !== 'ready') throw new ApiError('conflict', `snapshot ${snap.name} of vm ${vmName} is ${snap.state}: only a ready snapshot can be cloned`, 'snapshot');
      // `initial` is ready from the create, but its file comes with the disk: a clone's disk
      // cannot stand on it before its node has made that (as for a snapshot taken now).
      if (snap.name === INITIAL_SNAPSHOT && (src.state === 'pending' || src.state === 'creating')) throw new ApiError('conflict', `vm ${vmName} is ${src.state}: its node has not made (or is remaking) its disk; clone it once it is running or stopped`, 'name');
    }
    const node = snap?.node ?? src.node;
    if (node === null) throw new ApiError('conflict', `vm ${vmName} is on no node`, 'name');
    const elsewhere = body.node !== undefined && body.node !== node;
    if (elsewhere && !this.store.db.prepare(`SELECT 1 FROM nodes WHERE name = ?`).get(body.node)) throw new ApiError('not_found', `node ${body.node} not found`, 'node');
    const nets = networksOf(this.store.db, src.id);
    const disks = dataDisksOf(src).map((d) => ({ size: formatSize(d.sizeBytes) }));
    const req: VmCreate = {
      name: body.name,
      image: src.image,
      cpus: src.cpus,
      memory: formatSize(src.memory_bytes),
      disk: formatSize(src.disk_bytes),
      ...(disks.length ? { disks } : {}),
      ...(nets.length > 1 ? { networks: nets } : { network: src.network }),
      node: elsewhere ? body.node! : node,
      ...(src.spread_key ? { spreadKey: src.spread_key } : {}),
      userData: src.user_data,
      sshKeys: JSON.parse(src.ssh_keys) as string[],
      metadataTokens: src.metadata_tokens,
      restart: src.restart,
    };
    const snapId = snap?.id ?? newId();
    const exportId = newId();
    const insert = this.vms.creation(req, undefined, elsewhere ? { export: exportId } : { snapshot: snapId });
    return this.store.write(actor, (tx) => {
      let from = snap;
      if (!from) {
        const fresh = this.vms.row(vmName);
        from = this.takeIn(tx, fresh, `clone-${body.name}`, snapId, 'name');
      } else if (elsewhere) this.usable(tx, src, 'name');
      const vm = insert(tx);
      if (elsewhere) {
        const exp = insertExport(tx, src, from, null, exportId);
        tx.db.prepare(`UPDATE vms SET reason = ? WHERE id = ?`).run(`waiting for its base: a copy of vm ${vmName}'s snapshot ${from.name} from node ${exp.node}`, vm.id);
      }
      tx.event('clone', 'vm', vm.name, `vm ${vm.name} cloned from vm ${vmName}'s snapshot ${snap?.name ?? `clone-${body.name}`}`);
      return vm;
    });
  }

  usable(tx: Tx, vm: VmRow, field: string): void {
    if (vm.power === 'deleted') throw new ApiError('conflict', `vm ${vm.name} is being deleted`, field);
    if (vm.node === null) throw new ApiError('conflict', `vm ${vm.name} is on no node`, field);
    const node = tx.db.prepare(`SELECT state FROM nodes WHERE name = ?`).get(vm.node) as { state: string } | undefined;
    if (node?.state !== 'ready') throw new ApiError('conflict', `node ${vm.node} of vm ${vm.name} is ${node?.state ?? 'gone'}: its disk files cannot be reached`, field);
  }

  /** A snapshot of this VM by name; another VM's snapshot of that name is not it. */
  find(vm: VmRow, name: string, field: string): SnapshotRow {
    const r = this.store.db.prepare(`SELECT * FROM snapshots WHERE vm_id = ? AND name = ?`).get(vm.id, name) as SnapshotRow | undefined;
    if (!r) throw new ApiError('not_found', `vm ${vm.name} has no snapshot ${name}`, field);
    return r;
  }

  /** A snapshot on a node that is not reachable is shown `lost` (its row stays: the node may come back). */
  private view(r: SnapshotRow, vm: VmRow, siblings: readonly SnapshotRow[]): Snapshot {
    const node = this.store.db.prepare(`SELECT state FROM nodes WHERE name = ?`).get(r.node) as { state: string } | undefined;
    const unreachable = (r.state === 'ready' || r.state === 'pending') && node?.state !== 'ready';
    const parent = r.parent === null ? null : (siblings.find((s) => s.id === r.parent) ?? (this.store.db.prepare(`SELECT * FROM snapshots WHERE id = ?`).get(r.parent) as SnapshotRow | undefined));
    return {
      id: r.id,
      name: r.name,
      vm: vm.name,
      node: r.node,
      state: unreachable ? 'lost' : r.state,
      reason: unreachable ? `node ${r.node} is ${node?.state ?? 'gone'}` : r.reason,
      pauseMs: r.pause_ms,
      sizeBytes: r.size_bytes,
      memory: r.memory === 1,
      memoryBytes: r.memory ? r.memory_bytes : null,
      parent: parent?.name ?? null,
      current: vm.disk_snapshot === r.id,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }
}
