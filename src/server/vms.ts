/**
 * VMs: create (checks that need no lock first, then schedule → allocate addresses → insert in
 * one transaction, so two concurrent creates can never over-fill a node), power changes,
 * resize, user-data, delete.
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Vm, VmCreate } from '../api/schemas/vm.ts';
import { allocateIp, overlaps, parseCidr, type Cidr } from '../core/ipv4.ts';
import { usedAddresses } from './vpn.ts';
import { touchNetworkHosts, touchServiceHosts } from './mesh.ts';
import { schedule, summarizeReasons, type PlacementRequest } from '../core/scheduler.ts';
import { humanSize, MiB, parseSize } from '../core/units.ts';
import { guestDevice } from '../core/vm-spec.ts';
import type { Images } from './images.ts';
import type { Nodes } from './nodes.ts';
import { dataDisksOf, vmFromRow, type NetworkRow, type NicRow, type VmRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';
import { moreNics, networksOf } from './store/nics.ts';
import { idempotent, type Once } from './idempotency.ts';
import { forgetVm } from './forget-vm.ts';
import type { SchedulerObserver } from './metrics.ts';
import { clonesOf, insertInitialSnapshot, loseSnapshots } from './snapshots.ts';
import { startPlan } from '../core/warm.ts';
import { warmEntries } from './warm.ts';

export const MIN_MEMORY = 64 * MiB;

/** What makes a VM an instance of a service: its address comes from the service's block. */
export interface InstanceOf {
  service: string;
  index: number;
  revision: number;
  block: Cidr;
}

/** The address blocks of a network's services: plain VMs and VPN peers take no address inside them. */
export function serviceBlocks(db: Tx['db'], network: string): Cidr[] {
  return (db.prepare(`SELECT block FROM services WHERE network = ?`).all(network) as { block: string }[]).map((r) => parseCidr(r.block, { maxPrefix: 32 }));
}
export const DEFAULT_NETWORK = 'default';

/**
 * Scale to zero: its agent suspended it for idleness (its power stays `running`; its agent
 * wakes it on traffic). It holds a memory state as a user's suspend does.
 */
export function idleSuspended(vm: Pick<VmRow, 'power' | 'state'>): boolean {
  return vm.power === 'running' && vm.state === 'suspended';
}


export class Vms {
  constructor(
    private readonly store: Store,
    private readonly nodes: Nodes,
    private readonly images: Images,
    /** Told of each placement, refusal and re-plan (metrics.ts); nothing by default. */
    private readonly scheduler: SchedulerObserver = { placed() {}, refused() {}, replanned() {} },
  ) {}

  list(): Vm[] {
    const more = new Map<string, NicRow[]>();
    for (const n of this.store.db.prepare(`SELECT * FROM vm_nics ORDER BY vm_id, idx`).all() as NicRow[]) {
      const list = more.get(n.vm_id);
      if (list) list.push(n);
      else more.set(n.vm_id, [n]);
    }
    return (this.store.db.prepare(`SELECT * FROM vms ORDER BY name`).all() as VmRow[]).map((r) => vmFromRow(r, more.get(r.id)));
  }

  get(name: string): Vm {
    const r = this.row(name);
    return vmFromRow(r, moreNics(this.store.db, r.id));
  }

  row(name: string): VmRow {
    const r = this.store.db.prepare(`SELECT * FROM vms WHERE name = ?`).get(name) as VmRow | undefined;
    if (!r) throw new ApiError('not_found', `vm ${name} not found`, 'name');
    return r;
  }

  /** `once`: the request's Idempotency-Key, kept with the answer in the same transaction. */
  create(actor: string, req: VmCreate, once?: Once): Vm {
    const insert = this.creation(req);
    return this.store.write(actor, idempotent(once, insert));
  }

  /**
   * The same, group-committed with other creates of this moment (the API's path). Each create
   * checks its key in its own savepoint, so a retry queued in the same batch as its first
   * attempt sees the first one's answer (and is rejected with `Replayed`, writing nothing).
   */
  createQueued(actor: string, req: VmCreate, once?: Once): Promise<Vm> {
    const insert = this.creation(req);
    return this.store.writeQueued(actor, idempotent(once, insert));
  }

  /**
   * Validates a create outside any transaction; returns the write that places and inserts it.
   * A service's instances (`instance`) are made by the same path, inside the service's write.
   */
  creation(req: VmCreate, instance?: InstanceOf, clone?: { snapshot: string } | { export: string }): (tx: Tx) => Vm {
    const memoryBytes = parseSize(req.memory ?? '512M')!;
    const diskBytes = parseSize(req.disk ?? '2G')!;
    const cpus = req.cpus ?? 1;
    // Data disks hold the node's disk as the root disk does: the scheduler places their sum.
    const dataDisks = (req.disks ?? []).map((d) => parseSize(d.size)!);
    const dataDiskBytes = dataDisks.reduce((a, b) => a + b, 0);
    if (memoryBytes < MIN_MEMORY) throw new ApiError('invalid', `memory must be at least ${humanSize(MIN_MEMORY)}`, 'memory');
    const image = this.images.row(req.image);
    const imageDisk = image.disk ?? image.root_disk;
    if (imageDisk && image.format !== 'qcow2') {
      // A raw base becomes the overlay's backing file: the overlay cannot be smaller.
      const size = this.store.db.prepare(`SELECT size_bytes FROM blobs WHERE sha256 = ?`).get(imageDisk) as { size_bytes: number };
      if (diskBytes < size.size_bytes) throw new ApiError('invalid', `disk must be at least the image's ${humanSize(size.size_bytes)}`, 'disk');
    }
    if (req.node) this.nodes.row(req.node);
    this.knownPlace(req);
    const request: PlacementRequest & { prefer?: string[] } = { cpus, memoryBytes, diskBytes: diskBytes + dataDiskBytes, node: req.node, group: req.group, zone: req.zone, labels: req.labels, policy: req.policy ?? this.nodes.groupRatios().get(req.group ?? 'default')?.policy, spreadKey: req.spreadKey, force: req.force };
    const nicCount = (req.networks ?? [null]).length;
    // Warm images (issue 16): without a named node or a spread key, a node with a ready warm
    // state of this size is tried first (the other constraints still hold there).
    const warm = warmEntries(this.store.db, image.name);
    if (!req.node && !req.spreadKey && !clone) {
      const prefer = warm.filter((w) => startPlan([w], { node: w.node, cpus, memoryBytes, nics: nicCount, dataDisks: dataDisks.length, clone: false }).start === 'warm').map((w) => w.node);
      if (prefer.length) request.prefer = prefer;
    }

    return (outer) => this.placeIn(outer, request, (tx, placement) => {
      if (tx.db.prepare(`SELECT 1 FROM vms WHERE name = ?`).get(req.name)) throw new ApiError('conflict', `vm ${req.name} already exists`, 'name');
      // A service's DNS name is `<service>.<network>.internal`, a VM's `<vm>.<network>.internal`: one namespace.
      if (!instance && tx.db.prepare(`SELECT 1 FROM services WHERE name = ?`).get(req.name)) throw new ApiError('conflict', `service ${req.name} exists: a VM may not take its name`, 'name');
      const wanted = req.networks ?? [req.network ?? DEFAULT_NETWORK];
      const field = req.networks ? 'networks' : 'network';
      // Every NIC's address first: a network without room refuses the VM before anything is written.
      const nics = wanted.map((name) => {
        const net = this.network(tx, name, field);
        const book = this.usedAddresses(tx, net.name);
        if (instance && net.name === wanted[0]) {
          const ip = allocateIp(instance.block, book.used, undefined, { whole: true });
          if (!ip) throw new ApiError('no_capacity', `service ${instance.service}'s address block has no free address (raise network.subnetwork_max_instance_count)`, 'blueprint');
          return { net, book, ip, inBlock: true };
        }
        const ip = allocateIp(parseCidr(net.cidr), book.used, book.next, { exclude: serviceBlocks(tx.db, net.name) });
        if (!ip) throw new ApiError('no_capacity', `network ${net.name} (${net.cidr}) has no free address`, field);
        return { net, book, ip, inBlock: false };
      });
      // One guest routing table: its NICs' subnets must not overlap (networks may, among themselves).
      for (const [i, a] of nics.entries()) {
        const b = nics.slice(i + 1).find((x) => overlaps(parseCidr(a.net.cidr), parseCidr(x.net.cidr)));
        if (b) throw new ApiError('invalid', `networks ${a.net.name} (${a.net.cidr}) and ${b.net.name} (${b.net.cidr}) overlap: a VM's NICs need networks that do not`, field);
      }
      const { net, ip } = nics[0]!;
      const warning = placement.warnings.join('; ') || null;
      const row: VmRow = {
        id: randomHex(12),
        name: req.name,
        image: image.name,
        node: placement.node,
        cpus,
        memory_bytes: memoryBytes,
        disk_bytes: diskBytes,
        data_disks: JSON.stringify(dataDisks),
        data_disk_bytes: dataDiskBytes,
        power: 'running',
        state: 'pending',
        reason: null,
        network: net.name,
        ip,
        mac: randomMac(),
        user_data: req.userData ?? '',
        ssh_keys: JSON.stringify(req.sshKeys ?? []),
        pending_cpus: null,
        pending_memory_bytes: null,
        restart_gen: 0,
        spread_key: req.spreadKey ?? null,
        metadata_tokens: req.metadataTokens ?? 'optional',
        restart: req.restart ?? 'on-failure',
        idle_stop: req.idleStop ?? null,
        placement_warning: warning,
        service: instance?.service ?? null,
        service_index: instance?.index ?? null,
        service_revision: instance?.revision ?? null,
        created_at: tx.now,
        updated_at: tx.now,
      };
      insertVm(tx, row);
      // Its first disk is its `initial` snapshot's point (made by the node with the disk); a
      // clone's disk starts from another VM's snapshot file instead of the image.
      insertInitialSnapshot(tx, { id: row.id, node: placement.node });
      if (clone && 'snapshot' in clone) tx.db.prepare(`UPDATE vms SET clone_snapshot = ? WHERE id = ?`).run(clone.snapshot, row.id);
      // A clone on another node than its snapshot's: its first disk waits for the snapshot's copy (exports.ts).
      if (clone && 'export' in clone) tx.db.prepare(`UPDATE vms SET clone_export = ? WHERE id = ?`).run(clone.export, row.id);
      const start = startPlan(warm, { node: placement.node, cpus, memoryBytes, nics: nics.length, dataDisks: dataDisks.length, clone: clone !== undefined });
      row.start = start.start;
      row.start_reason = start.start === 'cold' ? start.reason : null;
      row.warm_id = start.start === 'warm' ? start.warm : null;
      tx.db.prepare(`UPDATE vms SET start = ?, start_reason = ?, warm_id = ? WHERE id = ?`).run(row.start, row.start_reason, row.warm_id, row.id);
      const more = nics.slice(1).map((n, i): NicRow => insertNic(tx, { vm_id: row.id, idx: i + 1, network: n.net.name, ip: n.ip, mac: randomMac(SECONDARY_MAC_PREFIX) }));
      for (const n of nics) touchNetworkHosts(tx, n.net.name);
      const data = dataDisks.length ? `, data disks ${dataDisks.map(humanSize).join(', ')}` : '';
      tx.event('create', 'vm', row.name, `vm ${row.name} (${cpus} cpu, ${humanSize(memoryBytes)}${data}) on ${row.node} at ${ip}${warning ? ` — warning: ${warning}` : ''}`);
      for (const n of nics) {
        n.book.used.add(n.ip);
        // No address below it is free until something is deleted (which resets the book); not
        // so after one taken in a service's block, above free addresses of the network.
        if (!n.inBlock) n.book.next = n.ip;
      }
      return vmFromRow(row, more);
    });
  }

  /**
   * Addresses in use per network (VM NICs, VPN peers, routers), cached like the scheduler's
   * view: creates add theirs as they insert; any write that may free one (it does not preserve
   * the schedule) reloads them. UNIQUE (network, ip) on vms and on vm_nics guard each table;
   * across tables the book is the guard, and every write to it runs in the store's one writer.
   */
  private addresses: { gen: number; used: Map<string, { used: Set<string>; next?: string }> } | undefined;

  private usedAddresses(tx: Tx, network: string): { used: Set<string>; next?: string } {
    if (this.addresses?.gen !== this.store.scheduleGen) this.addresses = { gen: this.store.scheduleGen, used: new Map() };
    let book = this.addresses.used.get(network);
    if (!book) {
      book = { used: usedAddresses(tx, network) };
      this.addresses.used.set(network, book);
    }
    return book;
  }

  /**
   * Optimistic placement: schedule on the cached snapshot, then, in the transaction, commit
   * only if the chosen node is as the snapshot saw it (`alloc_rev`) and still fits; a stale plan
   * is rejected and planned again on a rebuilt view.
   */
  private placeIn<T>(tx: Tx, request: PlacementRequest & { exclude?: string; prefer?: string[] }, commit: (tx: Tx, p: { node: string; warnings: string[] }) => T, attempts = 5): T {
    for (let i = 0; ; i++) {
      // `exclude`: the node being drained or evacuated, whatever its state.
      const view = this.nodes.snapshot();
      let placement = view.schedule(request, request.exclude);
      // A preferred node (a warm image's) that fits wins over the policy's pick.
      for (const node of request.prefer ?? []) {
        if (!placement.ok || placement.node === node) break;
        const there = view.schedule({ ...request, node }, request.exclude);
        if (there.ok) {
          placement = there;
          break;
        }
      }
      if (!placement.ok) {
        this.scheduler.refused(placement.kinds);
        const field = request.node ? 'node' : request.zone ? 'zone' : request.group ? 'group' : request.labels ? 'labels' : undefined;
        throw new ApiError('no_capacity', `no node can take ${request.cpus} cpu, ${humanSize(request.memoryBytes)} memory, ${humanSize(request.diskBytes)} disk: ${summarizeReasons(placement.reasons)}`, field);
      }
      const seen = view.get(placement.node)!.allocRev;
      // The plan is only as good as its snapshot: re-check the node as the database has it now.
      const now = this.nodes.fresh(placement.node);
      if (!now || now.allocRev !== seen || !schedule([now], { ...request, node: placement.node }).ok) {
        this.store.scheduleGen++; // the cached view was wrong: rebuild it (inside this transaction)
        this.scheduler.replanned();
        if (i + 1 >= attempts) throw new ApiError('conflict', 'the cluster kept changing while placing this VM; try again');
        continue;
      }
      tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(placement.node);
      tx.touchNode(placement.node);
      const out = commit(tx, placement);
      this.scheduler.placed();
      // A plain create patches the cached view (last, so nothing can fail after it); a move rebuilds it.
      if (request.exclude === undefined) {
        tx.preserveSchedule();
        this.nodes.placedOn(placement.node, request, request.spreadKey);
      }
      return out;
    }
  }

  /** A group or zone nobody has is a mistake worth naming, not "no capacity". */
  private knownPlace(req: VmCreate): void {
    if (req.group !== undefined && !this.store.db.prepare(`SELECT 1 FROM nodes WHERE node_group = ?`).get(req.group)) throw new ApiError('not_found', `no node is in group ${req.group}`, 'group');
    if (req.zone !== undefined && !this.store.db.prepare(`SELECT 1 FROM nodes WHERE zone = ?`).get(req.zone)) throw new ApiError('not_found', `no node is in zone ${req.zone}`, 'zone');
  }

  /**
   * Recreates a node's VMs elsewhere from their images (same name, address and MAC; a fresh
   * disk): for a lost node (evacuate) or one being emptied (drain). The old node, if it ever
   * reports again, no longer finds them in its desired state and removes its copies.
   */
  relocate(actor: string, node: string, why: 'drain' | 'evacuate'): { moved: { vm: string; from: string; to: string }[]; failed: { vm: string; reason: string }[] } {
    this.nodes.row(node);
    const vms = this.store.db.prepare(`SELECT * FROM vms WHERE node = ? AND power != 'deleted' ORDER BY name`).all(node) as VmRow[];
    const moved: { vm: string; from: string; to: string }[] = [];
    const failed: { vm: string; reason: string }[] = [];
    for (const vm of vms) {
      const request: PlacementRequest = { cpus: vm.cpus, memoryBytes: vm.memory_bytes, diskBytes: vm.disk_bytes + vm.data_disk_bytes, spreadKey: vm.spread_key ?? undefined };
      try {
        // The VM leaves `node` in the same transaction that places it elsewhere.
        const to = this.store.write(actor, (outer) => this.placeIn(outer, { ...request, exclude: node }, (tx, p) => {
          // A suspended VM's memory state stays on the old node too: it comes back stopped, its disk new.
          tx.db.prepare(`UPDATE vms SET node = ?, state = 'pending', reason = NULL, restart_gen = restart_gen + 1, power = CASE WHEN power = 'suspended' THEN 'stopped' ELSE power END, released = 0, updated_at = ? WHERE id = ?`).run(p.node, tx.now, vm.id);
          // Its snapshots' files stay on the old node: lost, and shown so.
          loseSnapshots(tx, vm, why);
          tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(node);
          tx.touchNode(node);
          for (const net of networksOf(tx.db, vm.id)) touchNetworkHosts(tx, net);
          // A running instance stops answering for its service (DNS, published backends) until it runs again.
          if (vm.service !== null) touchServiceHosts(tx, vm.network);
          tx.event(why, 'vm', vm.name, `vm ${vm.name} recreated on ${p.node} (from ${node}, ${why}); its local disk data is lost: the root disk is made again from the image${dataDisksLost(vm)}${vm.power === 'suspended' ? '; it was suspended: its memory state is lost with its node, and it is stopped' : ''}`);
          return p.node;
        }));
        moved.push({ vm: vm.name, from: node, to });
      } catch (e) {
        failed.push({ vm: vm.name, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return { moved, failed };
  }

  /**
   * Marks a VM for deletion; its node destroys it and its next report removes the row.
   * `force`: a node that is not reachable never confirms, so the VM is forgotten now (row,
   * NICs, addresses); the node, if it returns, no longer finds it in its desired state and
   * destroys its copy. Refused while the node reports: plain delete is then as quick, and
   * forgetting a VM that still runs would give its address to the next VM while it answers.
   */
  remove(actor: string, name: string, force = false): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      if (vm.service !== null) throw new ApiError('conflict', `vm ${name} is an instance of service ${vm.service}: use \`butter service scale ${vm.service} N\` (or \`butter service rm ${vm.service}\`)`, 'name');
      // A clone's disk stands on this VM's snapshot file, which goes with this VM's directory.
      const clones = clonesOf(tx.db, vm.id).filter((c) => c !== name);
      if (clones.length) throw new ApiError('conflict', `vm${clones.length > 1 ? 's' : ''} ${clones.join(', ')} ${clones.length > 1 ? 'are clones' : 'is a clone'} of vm ${name}'s snapshots (their disks stand on its files): delete ${clones.length > 1 ? 'them' : 'it'} first`, 'name');
      if (vm.node === null) {
        tx.db.prepare(`DELETE FROM vms WHERE id = ?`).run(vm.id);
        tx.event('deleted', 'vm', name, `vm ${name} deleted`);
        return { ...vmFromRow(vm, moreNics(tx.db, vm.id)), state: 'deleting' };
      }
      if (force) {
        const node = this.nodes.row(vm.node);
        if (node.state === 'ready') throw new ApiError('conflict', `node ${vm.node} is reachable: delete vm ${name} without --force (the node confirms it within seconds)`, 'force');
        const out: Vm = { ...vmFromRow(vm, moreNics(tx.db, vm.id)), state: 'deleting' };
        forgetVm(tx, vm, `vm ${name} deleted (forced: node ${vm.node} is ${node.state}; it destroys its copy if it returns)`);
        return out;
      }
      this.markDeleted(tx, vm);
      return this.get(name);
    });
  }

  /** The ordinary delete (its node destroys it and confirms): `vm rm`, and a service's own instances. */
  markDeleted(tx: Tx, vm: VmRow): void {
    if (vm.node === null) {
      forgetVm(tx, vm, `vm ${vm.name} deleted`);
      return;
    }
    this.update(tx, vm, { power: 'deleted', state: 'deleting' });
    tx.event('delete', 'vm', vm.name, `vm ${vm.name} to be deleted on ${vm.node}`);
  }

  setPower(actor: string, name: string, action: 'start' | 'stop' | 'restart'): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      if (vm.power === 'deleted') throw new ApiError('conflict', `vm ${name} is being deleted`, 'name');
      // A suspended VM's memory state would be thrown away by a cold start: resume it, or stop it first (which discards it).
      if ((vm.power === 'suspended' || idleSuspended(vm)) && action !== 'stop') throw new ApiError('conflict', `vm ${name} is suspended${idleSuspended(vm) ? ' (idle: the next connection wakes it)' : ''}: \`butter vm resume ${name}\` brings it back (or \`vm stop\` discards its memory state)`, 'name');
      const resize = action === 'stop' ? {} : this.takePending(vm);
      // (`start` of a VM that is up leaves a pending resize pending: it needs a restart.)
      if (action === 'stop') this.update(tx, vm, { power: 'stopped', state: vm.state === 'stopped' ? 'stopped' : 'stopping', ...(vm.released ? { released: 0 } : {}) });
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

  /**
   * `vm suspend`: its node saves the RAM and device state into the VM's directory and ends
   * QEMU (issue 16). Only a VM that runs (or boots) can be; `release` gives its CPUs and
   * memory back to the node until the resume (its disk stays counted: the files stay).
   */
  suspend(actor: string, name: string, release = false): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      if (idleSuspended(vm)) {
        // Asleep already: the user's suspend takes it over (no wake on traffic from now on).
        this.update(tx, vm, { power: 'suspended', reason: null, released: release ? 1 : 0 });
        if (release && vm.node) tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(vm.node);
        tx.event('suspend', 'vm', name, `vm ${name}: suspend (it slept for idleness; from now on only a resume wakes it)${release ? `, its ${vm.cpus} cpu and ${humanSize(vm.memory_bytes)} released` : ''}`);
        return this.get(name);
      }
      if (vm.power !== 'running' || (vm.state !== 'running' && vm.state !== 'booting')) throw new ApiError('conflict', `vm ${name} is ${vm.power === 'suspended' ? 'suspended' : vm.state}: only a running VM can be suspended`, 'name');
      this.update(tx, vm, { power: 'suspended', state: 'suspending', reason: null, released: release ? 1 : 0 });
      if (release && vm.node) tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(vm.node);
      tx.event('suspend', 'vm', name, `vm ${name}: suspend (memory state saved on ${vm.node})${release ? `, its ${vm.cpus} cpu and ${humanSize(vm.memory_bytes)} released` : ''}`);
      return this.get(name);
    });
  }

  /**
   * `vm resume`: its node starts QEMU on the saved state (same disk, MAC, address). No new
   * power generation: the VM goes on where it was, it does not boot. A released VM must fit
   * on its node again (the state is there, it cannot go elsewhere); a node that does not
   * report cannot resume it.
   */
  resume(actor: string, name: string): Vm {
    return this.store.write(actor, (tx) => {
      const vm = this.row(name);
      if (idleSuspended(vm)) {
        // Asleep for idleness: its agent wakes it at the new wake generation, as traffic would.
        this.update(tx, vm, { state: 'pending', reason: null, wake_gen: (vm.wake_gen ?? 0) + 1 });
        tx.event('resume', 'vm', name, `vm ${name}: resume on ${vm.node} (it slept for idleness)`);
        return this.get(name);
      }
      if (vm.power !== 'suspended') throw new ApiError('conflict', `vm ${name} is ${vm.power === 'deleted' ? 'being deleted' : vm.state}: only a suspended VM can be resumed`, 'name');
      const node = vm.node ? this.nodes.fresh(vm.node) : undefined;
      if (!vm.node || !node) throw new ApiError('conflict', `vm ${name} has no node: its memory state is lost`, 'name');
      const nodeRow = this.nodes.row(vm.node);
      if (nodeRow.state !== 'ready') throw new ApiError('conflict', `vm ${name}'s memory state is on node ${vm.node}, which is ${nodeRow.state}: it can be resumed only there`, 'name');
      if (vm.released) {
        // Its disk is still counted on the node: only the CPUs and memory must fit again.
        const fit = schedule([node], { cpus: vm.cpus, memoryBytes: vm.memory_bytes, diskBytes: 0, node: vm.node });
        if (!fit.ok) throw new ApiError('no_capacity', `vm ${name} was suspended with --release and no longer fits on node ${vm.node}, where its memory state is: ${fit.reasons.join('; ')}`, 'name');
        tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(vm.node);
      }
      this.update(tx, vm, { power: 'running', state: 'pending', reason: null, released: 0 });
      tx.event('resume', 'vm', name, `vm ${name}: resume on ${vm.node}`);
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
        const node = this.nodes.fresh(vm.node)!;
        const disk = vm.disk_bytes + vm.data_disk_bytes;
        const others = { ...node, allocated: { cpus: node.allocated.cpus - vm.cpus, memoryBytes: node.allocated.memoryBytes - vm.memory_bytes, diskBytes: node.allocated.diskBytes - disk } };
        const fit = schedule([others], { cpus, memoryBytes, diskBytes: disk, node: vm.node });
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
    // An instance that should no longer run (stop, delete) leaves its service's DNS records now, on every host.
    if (vm.service !== null && fields.power !== undefined && fields.power !== vm.power) touchServiceHosts(tx, vm.network);
    // What a node holds changed (an applied resize): plans made before it are stale.
    if (vm.node && ('cpus' in fields || 'memory_bytes' in fields)) tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(vm.node);
    tx.touchNode(vm.node);
  }

  private network(tx: Tx, name: string, field: string): NetworkRow {
    const n = tx.db.prepare(`SELECT * FROM networks WHERE name = ?`).get(name) as NetworkRow | undefined;
    if (!n) throw new ApiError('not_found', `network ${name} not found`, field);
    return n;
  }
}

/** What a relocation's event adds for data disks: they come back empty, as the guest names them. */
function dataDisksLost(vm: VmRow): string {
  const disks = dataDisksOf(vm);
  if (disks.length === 0) return '';
  return `, and its ${disks.length} data disk${disks.length === 1 ? '' : 's'} (${disks.map((d) => guestDevice(d.index)).join(', ')}) recreated empty`;
}

/**
 * Inserts a VM row. The MAC is random in QEMU's locally administered 52:54:00 range; the
 * UNIQUE index, not a lookup before every insert, catches the rare collision, and a fresh MAC
 * is tried (the failed statement alone is undone).
 */
function insertVm(tx: Tx, row: VmRow): void {
  const insert = tx.db.prepare(
    `INSERT INTO vms (id, name, image, node, cpus, memory_bytes, disk_bytes, data_disks, data_disk_bytes, power, state, reason, network, ip, mac, user_data, ssh_keys, pending_cpus, pending_memory_bytes, restart_gen, spread_key, metadata_tokens, restart, idle_stop, placement_warning, service, service_index, service_revision, created_at, updated_at)
     VALUES (@id, @name, @image, @node, @cpus, @memory_bytes, @disk_bytes, @data_disks, @data_disk_bytes, @power, @state, @reason, @network, @ip, @mac, @user_data, @ssh_keys, @pending_cpus, @pending_memory_bytes, @restart_gen, @spread_key, @metadata_tokens, @restart, @idle_stop, @placement_warning, @service, @service_index, @service_revision, @created_at, @updated_at)`,
  );
  for (let attempt = 0; ; attempt++) {
    try {
      insert.run(row);
      return;
    } catch (e) {
      const macTaken = e instanceof Error && 'code' in e && e.code === 'SQLITE_CONSTRAINT_UNIQUE' && e.message.includes('vms.mac');
      if (!macTaken || attempt >= 8) throw e;
      row.mac = randomMac();
    }
  }
}

/**
 * eth0's MACs are QEMU's 52:54:00 range; further NICs take 52:54:01, so the two tables' UNIQUE
 * indexes together keep every MAC unique without a lookup across both.
 */
const PRIMARY_MAC_PREFIX = '52:54:00';
const SECONDARY_MAC_PREFIX = '52:54:01';

export function randomMac(prefix = PRIMARY_MAC_PREFIX): string {
  const h = randomHex(6);
  return `${prefix}:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

function insertNic(tx: Tx, nic: NicRow): NicRow {
  const insert = tx.db.prepare(`INSERT INTO vm_nics (vm_id, idx, network, ip, mac) VALUES (@vm_id, @idx, @network, @ip, @mac)`);
  for (let attempt = 0; ; attempt++) {
    try {
      insert.run(nic);
      return nic;
    } catch (e) {
      const macTaken = e instanceof Error && 'code' in e && e.code === 'SQLITE_CONSTRAINT_UNIQUE' && e.message.includes('vm_nics.mac');
      if (!macTaken || attempt >= 8) throw e;
      nic.mac = randomMac(SECONDARY_MAC_PREFIX);
    }
  }
}

/** Random hex from the UUID generator's pooled entropy: a fresh `randomBytes` call per VM costs more. */
function randomHex(chars: number): string {
  // The first 12 hex digits of a v4 UUID are all random (the version digit comes next).
  const u = randomUUID();
  return (u.slice(0, 8) + u.slice(9, 13)).slice(0, chars);
}
