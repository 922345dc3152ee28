/** Row shapes as SQLite returns them, and their mapping to the wire types. */
import type { Image } from '../../api/schemas/image.ts';
import type { Node } from '../../api/schemas/node.ts';
import { allocatable, type NodeSnapshot, type Ratios } from '../../core/scheduler.ts';
import type { RestartPolicy, Vm, VmState } from '../../api/schemas/vm.ts';
import { guestDevice } from '../../core/vm-spec.ts';

export interface NodeRow {
  name: string;
  state: 'new' | 'ready' | 'unreachable';
  accel: 'kvm' | 'tcg' | null;
  accel_reason: string | null;
  driver: 'qemu' | 'sim' | null;
  cpus: number | null;
  memory_bytes: number | null;
  disk_bytes: number | null;
  last_heartbeat_at: string | null;
  desired_rev: number;
  wg_public_key: string | null;
  wg_endpoint: string | null;
  mesh_ip: string | null;
  underlay_mtu: number | null;
  /** `host:port`: its address on its default route (its agent reports it) at its WireGuard port; VPN peers' fallback. */
  default_endpoint: string | null;
  created_at: string;
  node_group: string;
  zone: string;
  labels: string;
  cordoned: number;
  reserved_cpus: number;
  reserved_memory_bytes: number;
  reserved_disk_bytes: number;
  alloc_rev: number;
}

export interface NodeUsage {
  cpus: number;
  memory_bytes: number;
  disk_bytes: number;
  vm_count: number;
}

/** The scheduler's view of a node: everything placement needs, nothing else. */
export function snapshotOf(r: NodeRow, u: NodeUsage | undefined, ratios: Ratios, spread: Record<string, number>): NodeSnapshot {
  return {
    name: r.name,
    ready: r.state === 'ready',
    cordoned: r.cordoned === 1,
    group: r.node_group,
    zone: r.zone,
    labels: JSON.parse(r.labels) as Record<string, string>,
    capacity: r.cpus && r.memory_bytes && r.disk_bytes ? { cpus: r.cpus, memoryBytes: r.memory_bytes, diskBytes: r.disk_bytes } : null,
    reserved: { cpus: r.reserved_cpus, memoryBytes: r.reserved_memory_bytes, diskBytes: r.reserved_disk_bytes },
    ratios,
    allocated: { cpus: u?.cpus ?? 0, memoryBytes: u?.memory_bytes ?? 0, diskBytes: u?.disk_bytes ?? 0 },
    vmCount: u?.vm_count ?? 0,
    spread,
  };
}

export function nodeFromRow(r: NodeRow, snap: NodeSnapshot): Node {
  const a = allocatable(snap);
  return {
    name: r.name,
    state: r.state,
    cordoned: snap.cordoned,
    group: snap.group,
    zone: snap.zone,
    labels: { ...snap.labels },
    accel: r.accel,
    accelReason: r.accel_reason,
    driver: r.driver,
    capacity: snap.capacity,
    reserved: snap.reserved,
    allocatable: a,
    allocated: snap.allocated,
    free: { cpus: a.cpus - snap.allocated.cpus, memoryBytes: a.memoryBytes - snap.allocated.memoryBytes, diskBytes: a.diskBytes - snap.allocated.diskBytes },
    vmCount: snap.vmCount,
    mesh: r.wg_public_key && r.mesh_ip ? { address: r.mesh_ip, publicKey: r.wg_public_key, endpoint: r.wg_endpoint } : null,
    lastHeartbeatAt: r.last_heartbeat_at,
    createdAt: r.created_at,
  };
}

export interface ImageRow {
  name: string;
  kind: 'disk' | 'kernel';
  sha256: string;
  format: 'qcow2' | 'raw' | null;
  disk: string | null;
  kernel: string | null;
  initrd: string | null;
  root_disk: string | null;
  root_format: 'qcow2' | 'raw' | null;
  cmdline: string | null;
  created_at: string;
}

export function imageFromRow(r: ImageRow, sizes: ReadonlyMap<string, number>, vmCount: number): Image {
  const file = (sha: string | null) => (sha ? { sha256: sha, sizeBytes: sizes.get(sha) ?? 0 } : undefined);
  const files = { disk: file(r.disk), kernel: file(r.kernel), initrd: file(r.initrd), rootDisk: file(r.root_disk) };
  const present = Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined));
  return {
    name: r.name,
    kind: r.kind,
    status: 'ready',
    sha256: r.sha256,
    sizeBytes: Object.values(present).reduce((a, f) => a + (f?.sizeBytes ?? 0), 0),
    format: r.format,
    files: present,
    rootFormat: r.root_format,
    cmdline: r.cmdline,
    vmCount,
    warm: [],
    createdAt: r.created_at,
  };
}

export interface VmRow {
  /** Warm images (issue 16): how its first start went or is to go, and from which warm state (set after the insert). */
  start?: string;
  start_reason?: string | null;
  warm_id?: string | null;
  id: string;
  name: string;
  image: string;
  node: string | null;
  cpus: number;
  memory_bytes: number;
  disk_bytes: number;
  /** JSON array of the data disks' sizes in bytes, index 1 first. */
  data_disks: string;
  /** Their sum: what they hold of the node's disk. */
  data_disk_bytes: number;
  power: 'running' | 'stopped' | 'suspended' | 'deleted';
  state: VmState;
  reason: string | null;
  network: string;
  ip: string | null;
  mac: string;
  user_data: string;
  ssh_keys: string;
  pending_cpus: number | null;
  pending_memory_bytes: number | null;
  restart_gen: number;
  /** Snapshots (issue 16; absent in rows made by inserts that predate them): see the snapshots migration. */
  disk_snapshot?: string | null;
  clone_snapshot?: string | null;
  clone_export?: string | null;
  restore_snapshot?: string | null;
  restore_gen?: number;
  /** 1: suspended with `release` (its CPUs and memory not counted on its node); absent in rows from older inserts. */
  released?: number;
  /** Scale to zero (absent in rows from older inserts): see its migration. */
  idle_stop?: string | null;
  wake_gen?: number;
  woken_at?: string | null;
  spread_key: string | null;
  metadata_tokens: 'optional' | 'required';
  restart: RestartPolicy;
  placement_warning: string | null;
  /** The service it is an instance of (its name), its index and revision there; NULL for a plain VM. */
  service: string | null;
  service_index: number | null;
  service_revision: number | null;
  created_at: string;
  updated_at: string;
}

/** A NIC beyond eth0 (`vm_nics`). */
export interface NicRow {
  vm_id: string;
  idx: number;
  network: string;
  ip: string | null;
  mac: string;
}

/**
 * An instance its service counts on: running, or asleep for idleness (scale to zero: power
 * `running`, state `suspended`; the next connection wakes it, so DNS and published ports
 * keep leading to it). `v` is the vms table's alias.
 */
export const SERVING_SQL = `v.power = 'running' AND v.state IN ('running', 'suspended')`;
export function serving(vm: { power: string; state: string }): boolean {
  return vm.power === 'running' && (vm.state === 'running' || vm.state === 'suspended');
}

export function vmFromRow(r: VmRow, more: readonly NicRow[] = []): Vm {
  return {
    start: r.start === 'warm' ? 'warm' : 'cold',
    startReason: r.start_reason ?? null,
    id: r.id,
    name: r.name,
    image: r.image,
    node: r.node,
    cpus: r.cpus,
    memoryBytes: r.memory_bytes,
    diskBytes: r.disk_bytes,
    disks: dataDisksOf(r).map((d) => ({ ...d, device: guestDevice(d.index) })),
    power: r.power === 'deleted' ? 'stopped' : r.power,
    state: r.state,
    reason: r.reason,
    network: r.network,
    ip: r.ip,
    mac: r.mac,
    nics: [{ network: r.network, ip: r.ip, mac: r.mac }, ...more.map((n) => ({ network: n.network, ip: n.ip, mac: n.mac }))],
    released: r.released === 1,
    pending: r.pending_cpus !== null && r.pending_memory_bytes !== null ? { cpus: r.pending_cpus, memoryBytes: r.pending_memory_bytes } : null,
    sshKeys: JSON.parse(r.ssh_keys) as string[],
    spreadKey: r.spread_key,
    metadataTokens: r.metadata_tokens,
    restart: r.restart,
    idleStop: r.idle_stop ?? null,
    warning: r.placement_warning,
    service: r.service ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A VM's data disks from its row: index 1 (the guest's `vdb`) first. */
export function dataDisksOf(r: Pick<VmRow, 'data_disks'>): { index: number; sizeBytes: number }[] {
  return (JSON.parse(r.data_disks) as number[]).map((sizeBytes, i) => ({ index: i + 1, sizeBytes }));
}

export interface NetworkRow {
  name: string;
  cidr: string;
  gateway: string;
  nat: number;
  vni: number;
  /** The node VPN peers' tunnels end on, and its router port's address on the network. */
  vpn_node: string | null;
  vpn_ip: string | null;
}

export interface VpnPeerRow {
  network: string;
  name: string;
  public_key: string;
  ip: string;
  endpoint: string;
  created_at: string;
}

export interface GroupRow {
  name: string;
  cpu_ratio: number;
  memory_ratio: number;
  disk_ratio: number;
  policy: 'spread' | 'binpack';
}

export interface ServiceRow {
  id: string;
  name: string;
  network: string;
  block: string;
  zones: number;
  count: number;
  current_revision: number;
  target_revision: number;
  state: 'active' | 'deleting';
  rollout: 'done' | 'rolling' | 'failed';
  rollout_message: string | null;
  warning: string | null;
  created_at: string;
  updated_at: string;
}

export interface ServiceRevisionRow {
  service: string;
  number: number;
  blueprint: string;
  file: string;
  /** JSON: template path -> text. */
  files: string;
  /** JSON: the service's variables. */
  vars: string;
  image: string;
  image_digest: string;
  created_at: string;
}

/** A path (server/paths.ts): from a service or a CIDR, to a service; `host_port_lo` when it publishes. */
export interface PathRow {
  id: string;
  network: string;
  from_service: string | null;
  from_cidr: string | null;
  to_service: string;
  proto: 'tcp' | 'udp';
  port_lo: number;
  port_hi: number;
  host_port_lo: number | null;
  created_at: string;
}
