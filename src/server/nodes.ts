/** Nodes: registration, heartbeats with observed state, and each node's desired state. */
import { createHash } from 'node:crypto';
import { isIdleReason } from '../core/scale-to-zero/idle-plan.ts';
import { ApiError } from '../api/errors.ts';
import type { NodeDesired } from '../api/schemas/desired.ts';
import type { Group, Node, NodeReport, NodeUpdate } from '../api/schemas/node.ts';
import type { VmState } from '../api/schemas/vm.ts';
import { issueToken } from './auth.ts';
import { nodeFromRow, serving, SERVING_SQL, snapshotOf, type GroupRow, type NodeRow, type NodeUsage, type VmRow } from './store/rows.ts';
import { PlacementIndex } from '../core/placement-index.ts';
import { DEFAULT_RATIOS, type NodeSnapshot, type Policy, type Ratios } from '../core/scheduler.ts';
import { parseSize } from '../core/units.ts';
import type { Store, Tx } from './store/store.ts';
import { Liveness } from './liveness.ts';
import { networksOf } from './store/nics.ts';
import { meshEnd, sameMeshEnd, setMeshEnd, touchMesh, touchNetworkHosts, touchServiceHosts } from './mesh.ts';
import { renderDesired } from './desired-state.ts';
import { applySnapshotChanges, snapshotReportChanges } from './snapshots.ts';
import { failNodeExports } from './exports.ts';
import { applyWarmChanges, failNodeWarming, startReportChanges, warmReportChanges } from './warm.ts';
import { forgetVm } from './forget-vm.ts';
import { endLingers, lingerAfterDelete, lingerEnded } from './network-linger.ts';
import { ownNetworks, recordNetworkStatus, sameNetworkStatus } from './network-status.ts';

/** A node as the scheduler sees it, with the allocation revision the plan was made at. */
export type SnapNode = NodeSnapshot & { allocRev: number };

/**
 * Agents report every 5 s; two missed reports make a node unreachable (its VMs' state turns
 * `unknown`). With the 1 s sweep a dead node is marked within 11 s, inside the 15 s promise.
 */
export const HEARTBEAT_TIMEOUT_MS = 10_000;

/**
 * The disk a node's snapshot files take, by the sizes it reported: ready ones, and lost ones
 * (their VM was recreated elsewhere; the file stays on this node until the snapshot is
 * deleted). Pending ones have no size yet. Completed with a WHERE (and GROUP BY node).
 */
const SNAPSHOT_DISK = `SELECT node, COALESCE(SUM(size_bytes), 0) AS bytes FROM snapshots WHERE state IN ('ready', 'lost') AND`;

export class Nodes {
  private readonly liveness: Liveness;
  /**
   * Each node's last report that changed nothing, by a digest of its words, with the store's
   * commit count when it was found so. The same words again before any other write change
   * nothing again: noted in memory without reading the node's VMs, snapshots and networks
   * (most heartbeats, 1,000 agents every 5 s). Any write, or other words, and it is read anew.
   */
  private readonly quiet = new Map<string, { commits: number; digest: string }>();

  /** How long a network stays built on a node after its last VM there went (network-linger.ts); 0: not at all. */
  private readonly lingerMs: number;

  constructor(
    private readonly store: Store,
    opts: { networkLingerMs?: number } = {},
  ) {
    this.lingerMs = opts.networkLingerMs ?? 0;
    this.liveness = new Liveness(store.now());
  }

  list(): Node[] {
    const rows = this.store.db.prepare(`SELECT * FROM nodes ORDER BY name`).all() as NodeRow[];
    const snaps = this.build(rows);
    return rows.map((r, i) => nodeFromRow(this.live(r), snaps[i]!));
  }

  get(name: string): Node {
    const r = this.row(name);
    return nodeFromRow(this.live(r), this.build([r])[0]!);
  }

  /** Whether the node reported to this process (a report stored before a restart does not count). */
  reportedSinceStart(name: string): boolean {
    return this.liveness.last(name, null) !== null;
  }

  /** The row with its last report as this server knows it (newer than the stored one). */
  private live(r: NodeRow): NodeRow {
    return { ...r, last_heartbeat_at: this.liveness.last(r.name, r.last_heartbeat_at) };
  }

  row(name: string): NodeRow {
    const r = this.store.db.prepare(`SELECT * FROM nodes WHERE name = ?`).get(name) as NodeRow | undefined;
    if (!r) throw new ApiError('not_found', `node ${name} not found`, 'node');
    return r;
  }

  /**
   * The scheduler's view of all nodes, cached between writes that may change placement (see
   * `Tx.preserveSchedule`), indexed for the scheduler's scan; creates patch it in place, so it
   * is good until the next write. The cache only guides the choice: the commit re-checks the chosen node against the
   * database (`fresh`), so it is never trusted.
   */
  snapshot(): PlacementIndex<SnapNode> {
    return this.view().index;
  }

  /** The chosen node as the database has it now (one statement), inside the placing transaction. */
  fresh(name: string): SnapNode | undefined {
    const r = this.store.db
      .prepare(
        `SELECT n.*, u.cpus AS used_cpus, u.memory_bytes AS used_memory_bytes, COALESCE(u.disk_bytes, 0) + COALESCE(sd.bytes, 0) AS used_disk_bytes, u.vm_count, g.cpu_ratio, g.memory_ratio, g.disk_ratio
         FROM nodes n
         LEFT JOIN (SELECT SUM(CASE WHEN released = 1 THEN 0 ELSE cpus END) AS cpus, SUM(CASE WHEN released = 1 THEN 0 ELSE memory_bytes END) AS memory_bytes, SUM(disk_bytes + data_disk_bytes) AS disk_bytes, COUNT(*) AS vm_count FROM vms WHERE node = @name) u
         LEFT JOIN (${SNAPSHOT_DISK} node = @name) sd
         LEFT JOIN node_groups g ON g.name = n.node_group
         WHERE n.name = @name`,
      )
      .get({ name }) as (NodeRow & { used_cpus: number | null; used_memory_bytes: number | null; used_disk_bytes: number | null; vm_count: number; cpu_ratio: number | null; memory_ratio: number | null; disk_ratio: number | null }) | undefined;
    if (!r) return undefined;
    const ratios = r.cpu_ratio === null ? DEFAULT_RATIOS : { cpu: r.cpu_ratio, memory: r.memory_ratio!, disk: r.disk_ratio! };
    // Spread counts only rank nodes; they never decide whether one fits, so the re-check skips them.
    const usage = { cpus: r.used_cpus ?? 0, memory_bytes: r.used_memory_bytes ?? 0, disk_bytes: r.used_disk_bytes ?? 0, vm_count: r.vm_count };
    return { ...snapshotOf(r, usage, ratios, {}), allocRev: r.alloc_rev };
  }

  /** A placement was committed: patch the cached view instead of rebuilding it. */
  placedOn(name: string, res: { cpus: number; memoryBytes: number; diskBytes: number }, spreadKey: string | undefined): void {
    if (!this.cache || this.cache.gen !== this.store.scheduleGen) return;
    const n = this.cache.index.get(name);
    if (!n) return;
    this.cache.index.place(name, res, spreadKey);
    n.allocRev++; // as the transaction did to the row
  }

  /** Group ratios and policies, cached with the scheduler's view (a group change invalidates both). */
  groupRatios(): Map<string, { ratios: Ratios; policy: Policy }> {
    return this.view().groups;
  }

  private cache: { gen: number; index: PlacementIndex<SnapNode>; groups: Map<string, { ratios: Ratios; policy: Policy }> } | undefined;

  private view(): NonNullable<Nodes['cache']> {
    if (this.cache?.gen !== this.store.scheduleGen) {
      const gen = this.store.scheduleGen;
      const groups = this.loadGroups();
      this.cache = { gen, index: new PlacementIndex(this.build(undefined, groups)), groups };
    }
    return this.cache;
  }

  private build(rows?: NodeRow[], groups = this.loadGroups()): SnapNode[] {
    const all = rows ?? (this.store.db.prepare(`SELECT * FROM nodes ORDER BY name`).all() as NodeRow[]);
    const one = rows?.length === 1 ? rows[0]!.name : undefined;
    const usage = this.usage(one);
    const spread = new Map<string, Record<string, number>>();
    const keyed = this.store.db
      .prepare(`SELECT node, spread_key, COUNT(*) AS n FROM vms WHERE ${one ? 'node = @one' : 'node IS NOT NULL'} AND spread_key IS NOT NULL GROUP BY node, spread_key`)
      .all(one ? { one } : {}) as { node: string; spread_key: string; n: number }[];
    for (const k of keyed) (spread.get(k.node) ?? spread.set(k.node, {}).get(k.node)!)[k.spread_key] = k.n;
    return all.map((r) => ({ ...snapshotOf(r, usage.get(r.name), groups.get(r.node_group)?.ratios ?? DEFAULT_RATIOS, spread.get(r.name) ?? {}), allocRev: r.alloc_rev }));
  }

  /** Resources held by each node's VMs, and the disk its snapshot files take (deleted ones hold theirs until the node confirms). */
  usage(only?: string): Map<string, NodeUsage> {
    const rows = this.store.db
      .prepare(`SELECT node, SUM(CASE WHEN released = 1 THEN 0 ELSE cpus END) AS cpus, SUM(CASE WHEN released = 1 THEN 0 ELSE memory_bytes END) AS memory_bytes, SUM(disk_bytes + data_disk_bytes) AS disk_bytes, COUNT(*) AS vm_count FROM vms WHERE ${only ? 'node = @only' : 'node IS NOT NULL'} GROUP BY node`)
      .all(only ? { only } : {}) as (NodeUsage & { node: string })[];
    const out = new Map(rows.map((r) => [r.node, r]));
    const snaps = this.store.db.prepare(`${SNAPSHOT_DISK} ${only ? 'node = @only' : '1'} GROUP BY node`).all(only ? { only } : {}) as { node: string; bytes: number }[];
    for (const s of snaps) {
      const u = out.get(s.node) ?? out.set(s.node, { node: s.node, cpus: 0, memory_bytes: 0, disk_bytes: 0, vm_count: 0 }).get(s.node)!;
      u.disk_bytes += s.bytes;
    }
    return out;
  }

  private loadGroups(): Map<string, { ratios: Ratios; policy: Policy }> {
    const rows = this.store.db.prepare(`SELECT * FROM node_groups`).all() as GroupRow[];
    return new Map(rows.map((g) => [g.name, { ratios: { cpu: g.cpu_ratio, memory: g.memory_ratio, disk: g.disk_ratio }, policy: g.policy }]));
  }

  groups(): Group[] {
    const counts = new Map((this.store.db.prepare(`SELECT node_group AS g, COUNT(*) AS n FROM nodes GROUP BY node_group`).all() as { g: string; n: number }[]).map((r) => [r.g, r.n]));
    const set = this.loadGroups();
    const names = [...new Set([...counts.keys(), ...set.keys(), 'default'])].sort();
    return names.map((name) => {
      const g = set.get(name) ?? { ratios: DEFAULT_RATIOS, policy: 'spread' as const };
      return { name, cpuRatio: g.ratios.cpu, memoryRatio: g.ratios.memory, diskRatio: g.ratios.disk, policy: g.policy, nodeCount: counts.get(name) ?? 0 };
    });
  }

  setGroup(actor: string, name: string, req: { cpuRatio?: number | undefined; memoryRatio?: number | undefined; diskRatio?: number | undefined; policy?: Policy | undefined }): Group {
    this.store.write(actor, (tx) => {
      const cur = this.groups().find((g) => g.name === name) ?? { cpuRatio: DEFAULT_RATIOS.cpu, memoryRatio: DEFAULT_RATIOS.memory, diskRatio: DEFAULT_RATIOS.disk, policy: 'spread' };
      const next = { cpu: req.cpuRatio ?? cur.cpuRatio, memory: req.memoryRatio ?? cur.memoryRatio, disk: req.diskRatio ?? cur.diskRatio, policy: req.policy ?? cur.policy };
      tx.db
        .prepare(`INSERT INTO node_groups (name, cpu_ratio, memory_ratio, disk_ratio, policy, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET cpu_ratio = excluded.cpu_ratio, memory_ratio = excluded.memory_ratio, disk_ratio = excluded.disk_ratio, policy = excluded.policy`)
        .run(name, next.cpu, next.memory, next.disk, next.policy, tx.now);
      tx.event('set', 'group', name, `group ${name}: overcommit cpu ${next.cpu}, memory ${next.memory}, disk ${next.disk}; policy ${next.policy}`);
    });
    return this.groups().find((g) => g.name === name)!;
  }

  update(actor: string, name: string, req: NodeUpdate): Node {
    this.store.write(actor, (tx) => {
      const r = this.row(name);
      const labels = JSON.parse(r.labels) as Record<string, string>;
      for (const [k, v] of Object.entries(req.labels ?? {})) {
        if (v === null) delete labels[k];
        else labels[k] = v;
      }
      const reserved = {
        cpus: req.reserved?.cpus ?? r.reserved_cpus,
        memory: req.reserved?.memory !== undefined ? parseSize(req.reserved.memory)! : r.reserved_memory_bytes,
        disk: req.reserved?.disk !== undefined ? parseSize(req.reserved.disk)! : r.reserved_disk_bytes,
      };
      tx.db
        .prepare(`UPDATE nodes SET labels = ?, node_group = ?, zone = ?, reserved_cpus = ?, reserved_memory_bytes = ?, reserved_disk_bytes = ?, alloc_rev = alloc_rev + 1 WHERE name = ?`)
        .run(JSON.stringify(labels), req.group ?? r.node_group, req.zone ?? r.zone, reserved.cpus, reserved.memory, reserved.disk, name);
      tx.event('update', 'node', name, `node ${name} updated: ${JSON.stringify(req)}`);
    });
    return this.get(name);
  }

  setCordon(actor: string, name: string, cordoned: boolean): Node {
    this.store.write(actor, (tx) => {
      this.row(name);
      tx.db.prepare(`UPDATE nodes SET cordoned = ?, alloc_rev = alloc_rev + 1 WHERE name = ?`).run(cordoned ? 1 : 0, name);
      tx.event(cordoned ? 'cordon' : 'uncordon', 'node', name, `node ${name} ${cordoned ? 'takes no new VMs' : 'takes new VMs again'}`);
    });
    return this.get(name);
  }

  /**
   * Forgets a node and revokes its credentials; refused while VMs are placed on it. `force`
   * (a node that is not reachable only: a live one is drained instead) forgets its VMs too, as
   * `vm rm --force` does. Returns the ids of the VMs forgotten.
   */
  remove(actor: string, name: string, force = false): string[] {
    return this.store.write(actor, (tx) => {
      const node = this.row(name);
      if (force && node.state === 'ready') throw new ApiError('conflict', `node ${name} is reachable: drain it (or delete its VMs), then remove it without --force`, 'force');
      const vms = tx.db.prepare(`SELECT * FROM vms WHERE node = ? ORDER BY name`).all(name) as VmRow[];
      if (vms.length > 0 && !force) {
        const hint = node.state === 'ready' ? 'drain or evacuate it first' : `evacuate it, or remove it with --force to forget them (it is ${node.state})`;
        throw new ApiError('conflict', `node ${name} still has ${vms.length} VM(s): ${hint}`, 'name');
      }
      const vpn = tx.db.prepare(`SELECT name FROM networks WHERE vpn_node = ? ORDER BY name`).all(name) as { name: string }[];
      // Its peers' configurations name this node's key and endpoint: they would silently stop.
      if (vpn.length > 0) throw new ApiError('conflict', `node ${name} is the VPN gateway of network ${vpn.map((v) => v.name).join(', ')}: revoke its peers first`, 'name');
      for (const vm of vms) forgetVm(tx, vm, `vm ${vm.name} deleted (forced, with node ${name}, which is ${node.state}; it destroys its copy if it returns)`);
      tx.db.prepare(`DELETE FROM tokens WHERE node = ?`).run(name);
      tx.db.prepare(`DELETE FROM nodes WHERE name = ?`).run(name);
      touchMesh(tx); // its peers drop it
      this.liveness.forget(name);
      this.quiet.delete(name);
      tx.event('delete', 'node', name, `node ${name} removed and its token revoked${force ? ` (forced while ${node.state}${vms.length ? `, with its ${vms.length} VM(s)` : ''})` : ''}`);
      return vms.map((v) => v.id);
    });
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

  /**
   * Records a node's report; returns the ids of VMs it confirmed deleted. A report that only
   * says "still here" (the common heartbeat) is noted in memory; anything else is a write.
   */
  /** `remote`: the address the report came from (the default mesh endpoint). */
  report(name: string, rep: NodeReport, remote?: string): string[] {
    const digest = reportDigest(rep, remote);
    const last = this.quiet.get(name);
    if (last && last.commits === this.store.commits && last.digest === digest) {
      this.liveness.saw(name, this.store.now());
      return [];
    }
    const before = this.row(name);
    const mesh = rep.mesh ? meshEnd(rep.mesh, remote) : null;
    const sameMesh = sameMeshEnd(before, mesh);
    const vms = this.store.db.prepare(`SELECT ${REPORTED_VM_COLUMNS} FROM vms WHERE node = ?`).all(name) as ReportedVm[];
    const changes = reportChanges(vms, rep);
    const snapChanges = snapshotReportChanges(this.store.db, name, rep.vms);
    const warmChanges = warmReportChanges(this.store.db, name, rep.warm);
    const startChanges = startReportChanges(vms, rep.vms);
    const sameSize = before.cpus === rep.capacity.cpus && before.memory_bytes === rep.capacity.memoryBytes && before.disk_bytes === rep.capacity.diskBytes;
    const sameNode = before.state === 'ready' && sameSize && before.accel === rep.accel && before.accel_reason === (rep.accelReason ?? null) && before.driver === rep.driver;
    // No word on networks (an agent that builds none, or an older one): what was said stands.
    const networks = rep.networks && ownNetworks(this.store.db, name, rep.networks);
    const sameNetworks = networks === undefined || sameNetworkStatus(this.store.db, name, networks);
    if (sameNode && sameMesh && changes.length === 0 && snapChanges.length === 0 && warmChanges.length === 0 && startChanges.length === 0 && sameNetworks) {
      this.liveness.saw(name, this.store.now());
      this.quiet.set(name, { commits: this.store.commits, digest });
      return [];
    }
    this.quiet.delete(name);
    const deleted: string[] = [];
    this.store.write(`node:${name}`, (tx) => {
      tx.db
        .prepare(`UPDATE nodes SET state = 'ready', accel = ?, accel_reason = ?, driver = ?, cpus = ?, memory_bytes = ?, disk_bytes = ?, last_heartbeat_at = ? WHERE name = ?`)
        .run(rep.accel, rep.accelReason ?? null, rep.driver, rep.capacity.cpus, rep.capacity.memoryBytes, rep.capacity.diskBytes, tx.now, name);
      this.liveness.saw(name, tx.now);
      if (before.state !== 'ready') tx.event('ready', 'node', name, `node ${name} is ready (${rep.driver}, ${rep.accel})`);
      if (!sameMesh) setMeshEnd(tx, before, mesh!);
      if (!sameNetworks) recordNetworkStatus(tx, name, networks!);
      // Before the VM changes: a VM deleted by this report takes its snapshots with it.
      applySnapshotChanges(tx, snapChanges);
      applyWarmChanges(tx, warmChanges);
      for (const c of startChanges) {
        tx.db.prepare(`UPDATE vms SET start = ?, start_reason = ? WHERE id = ?`).run(c.start, c.reason, c.vm.id);
        if (c.start === 'cold') tx.event('cold-start', 'vm', c.vm.name, `vm ${c.vm.name} booted cold: ${c.reason ?? 'no reason given'}`);
      }
      for (const c of changes) {
        if (c.delete) {
          const nets = networksOf(tx.db, c.vm.id);
          tx.db.prepare(`DELETE FROM vms WHERE id = ?`).run(c.vm.id);
          for (const net of nets) touchNetworkHosts(tx, net);
          // Kept built here a while if that was its last VM of them: a VM created meanwhile finds them up.
          lingerAfterDelete(tx, name, nets, this.lingerMs);
          tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(name);
          deleted.push(c.vm.id);
          tx.event('deleted', 'vm', c.vm.name, `vm ${c.vm.name} deleted on ${name}`);
        } else {
          if (c.state !== c.vm.state || c.reason !== c.vm.reason) this.setState(tx, c.vm, c.state, c.reason);
          if (c.wake) {
            tx.db.prepare(`UPDATE vms SET woken_at = ? WHERE id = ?`).run(c.wake.at, c.vm.id);
            tx.event('wake', 'vm', c.vm.name, `vm ${c.vm.name} woken by ${c.wake.trigger}${c.wake.port !== undefined ? ` to port ${c.wake.port}` : ''}: running again ${Math.round(c.wake.ms)} ms after it arrived`);
          }
        }
      }
      // Its desired state lost those VMs (and maybe the last VM of a network, to take down).
      if (deleted.length > 0) tx.touchNode(name);
      // A node that stays ready, the same size, with the same VMs: placement is unaffected.
      // (A snapshot that became ready takes disk: its size changes the node's usage.)
      if (before.state === 'ready' && sameSize && deleted.length === 0 && !snapChanges.some((c) => c.state === 'ready' && c.sizeBytes)) tx.preserveSchedule();
    });
    return deleted;
  }

  /** Writes the in-memory report times to the database (no revision: nothing desired changed). */
  flushLiveness(): void {
    const dirty = this.liveness.takeDirty();
    if (dirty.length === 0) return;
    const set = this.store.db.prepare(`UPDATE nodes SET last_heartbeat_at = ? WHERE name = ?`);
    this.store.db.transaction(() => {
      for (const [name, at] of dirty) set.run(at, name);
    })();
  }

  private setState(tx: Tx, vm: ReportedVm, state: VmState, reason: string | null): void {
    tx.db.prepare(`UPDATE vms SET state = ?, reason = ?, updated_at = ? WHERE id = ?`).run(state, reason, tx.now, vm.id);
    // A service's DNS name answers its serving instances only (running, or asleep for idleness): its network's hosts re-read it.
    if (vm.service !== null && serving(vm) !== serving({ power: vm.power, state })) touchServiceHosts(tx, vm.network);
    tx.event('state', 'vm', vm.name, `vm ${vm.name}: ${vm.state} → ${state}${reason ? ` (${reason})` : ''}`);
    // Scale to zero: its agent suspended it for idleness (a user's suspend has power `suspended`).
    if (state === 'suspended' && vm.state !== 'suspended' && vm.state !== 'pending' && vm.power === 'running' && isIdleReason(reason)) tx.event('idle-suspend', 'vm', vm.name, `vm ${vm.name} suspended by its node: ${reason}; the next connection to it wakes it`);
  }

  /** Marks nodes that stopped reporting (their VMs become `unknown`), and ends the lingers that are due. */
  sweep(now: Date): void {
    if (lingerEnded(this.store.db, now.toISOString())) this.store.write('server', (tx) => endLingers(tx));
    const cutoff = new Date(now.getTime() - HEARTBEAT_TIMEOUT_MS).toISOString();
    const ready = this.store.db.prepare(`SELECT name, last_heartbeat_at FROM nodes WHERE state = 'ready'`).all() as { name: string; last_heartbeat_at: string | null }[];
    const stale = ready.filter((n) => this.liveness.aliveAt(n.name, n.last_heartbeat_at) < cutoff);
    if (stale.length === 0) return;
    this.store.write('server', (tx) => {
      for (const { name } of stale) {
        tx.db.prepare(`UPDATE nodes SET state = 'unreachable' WHERE name = ?`).run(name);
        const serving = tx.db.prepare(`SELECT DISTINCT network FROM vms v WHERE node = ? AND service IS NOT NULL AND ${SERVING_SQL}`).all(name) as { network: string }[];
        tx.db.prepare(`UPDATE vms SET state = 'unknown', updated_at = ? WHERE node = ?`).run(tx.now, name);
        // Its pending exports (an image from a VM, a clone's base for another node) will not come.
        failNodeExports(tx, name);
        // ...nor its warming templates' ends.
        failNodeWarming(tx, name);
        // A suspended VM's memory state is on that node only: lost with it (until it returns), and said so.
        tx.db.prepare(`UPDATE vms SET reason = ? WHERE node = ? AND power = 'suspended'`).run(`suspended on node ${name}, which stopped reporting: its memory state is lost until the node returns`, name);
        // Instances there no longer answer for their service.
        for (const { network } of serving) touchServiceHosts(tx, network);
        tx.event('unreachable', 'node', name, `node ${name} missed heartbeats for ${HEARTBEAT_TIMEOUT_MS / 1000} s`);
      }
    });
  }

  desiredRevision(name: string): number {
    return this.row(name).desired_rev;
  }

  /** The node's desired state: the agent contract, rendered in desired-state.ts. */
  desired(name: string): NodeDesired {
    return renderDesired(this.store, this.row(name));
  }
}

/** What a report is checked against and acts on, of each of the node's VMs (a VM row has 30-odd columns; reading them all was most of a heartbeat's cost). */
const REPORTED_VM_COLUMNS = 'id, name, power, state, reason, service, network, woken_at, start, start_reason';
type ReportedVm = Pick<VmRow, 'id' | 'name' | 'power' | 'state' | 'reason' | 'service' | 'network' | 'woken_at' | 'start' | 'start_reason'>;

/** A report's words (and the address it came from, a mesh endpoint's default), digested: equal for equal reports. */
function reportDigest(rep: NodeReport, remote: string | undefined): string {
  return createHash('sha256').update(JSON.stringify(rep)).update(`\n${remote ?? ''}`).digest('base64');
}

type Wake = NonNullable<NodeReport['vms'][number]['wake']>;
type ReportChange = { vm: ReportedVm; delete: true } | { vm: ReportedVm; delete?: false; state: VmState; reason: string | null; wake?: Wake };

/** What a node's report changes about its VMs: confirmed deletions and new states. */
function reportChanges(vms: readonly ReportedVm[], rep: NodeReport): ReportChange[] {
  const seen = new Map(rep.vms.map((v) => [v.id, v]));
  const out: ReportChange[] = [];
  for (const vm of vms) {
    const obs = seen.get(vm.id);
    if (vm.power === 'deleted' && (!obs || obs.state === 'stopped')) {
      // Gone: deleted for good. Stopped but not yet destroyed: wait for the next report.
      if (!obs) out.push({ vm, delete: true });
      continue;
    }
    if (!obs) {
      // The node does not know this VM (yet, or any more after a restart): pending for it.
      if (vm.state === 'unknown') out.push({ vm, state: 'pending', reason: null });
      continue;
    }
    const state: VmState = vm.power === 'deleted' ? 'deleting' : obs.state;
    // A wake not recorded yet (scale to zero): one event per wake the agent reports.
    const wake = obs.wake && obs.wake.at !== (vm.woken_at ?? null) ? obs.wake : undefined;
    if (state !== vm.state || (obs.reason ?? null) !== vm.reason || wake) out.push({ vm, state, reason: obs.reason ?? null, ...(wake ? { wake } : {}) });
  }
  return out;
}
