/**
 * A node's desired state: what its agent is to run (VMs with their images and NICs, networks
 * with their overlay remotes and VPN routers, the mesh). This is the agent contract
 * (`NodeDesired`, api/schemas/desired.ts); agent/agent.ts is the other side of it.
 */
import type { NodeDesired } from '../api/schemas/desired.ts';
import { dataDisksOf, SERVING_SQL, type ImageRow, type NetworkRow, type NicRow, type NodeRow, type VmRow } from './store/rows.ts';
import type { Store } from './store/store.ts';
import { guestMtu } from '../core/mtu.ts';
import { vpnRouterMac } from '../core/network-macs.ts';
import { desiredMesh, meshUnderlayMtu, overlayRemotes } from './mesh.ts';
import { desiredPaths } from './paths.ts';
import { publishedState } from './published.ts';
import { nodeSnapshots, type NodeSnapshot } from './snapshots.ts';
import { nodeExports } from './exports.ts';
import { nodeWarm } from './warm.ts';

/** A VM's snapshot fields of the agent contract (issue 16); none for a VM without snapshots. */
function snapshotFields(store: Store, vm: VmRow, snaps: readonly NodeSnapshot[]) {
  const initial = snaps.find((s) => s.name === 'initial');
  let base: { vm: string; snapshot: string } | undefined;
  if (vm.clone_snapshot) {
    const src = store.db.prepare(`SELECT vm_id FROM snapshots WHERE id = ?`).get(vm.clone_snapshot) as { vm_id: string } | undefined;
    if (src) base = { vm: src.vm_id, snapshot: vm.clone_snapshot };
  }
  return {
    ...(snaps.length ? { snapshots: [...snaps] } : {}),
    ...(initial ? { initialSnapshot: initial.id } : {}),
    ...(base ? { base } : {}),
    ...(base === undefined && vm.clone_export ? cloneBase(store, vm.clone_export) : {}),
    // A memory snapshot's restore resumes the guest from its saved RAM (the node launches from it).
    ...(vm.restore_snapshot && (vm.restore_gen ?? 0) > 0 ? { restore: { snapshot: vm.restore_snapshot, gen: vm.restore_gen!, ...(snaps.find((s) => s.id === vm.restore_snapshot)?.memory ? { memory: true } : {}) } } : {}),
  };
}

/** A clone on another node than its snapshot's: its base is the snapshot's copy, once uploaded. */
function cloneBase(store: Store, exportId: string): { baseBlob?: { sha256: string; format: 'qcow2' | 'raw' } } {
  const e = store.db.prepare(`SELECT sha256, format FROM exports WHERE id = ? AND state = 'ready'`).get(exportId) as { sha256: string; format: 'qcow2' | 'raw' } | undefined;
  return e ? { baseBlob: { sha256: e.sha256, format: e.format } } : {};
}

/** A clone whose base has not arrived (or never will: failed) is not the node's to start yet; a deleted one is, to be confirmed gone. */
function waitingForBase(store: Store, vm: VmRow): boolean {
  if (!vm.clone_export || vm.power === 'deleted') return false;
  return store.db.prepare(`SELECT 1 FROM exports WHERE id = ? AND state = 'ready'`).get(vm.clone_export) === undefined;
}

function vpnPeers(store: Store, network: string): { name: string; publicKey: string; ip: string }[] {
  const rows = store.db.prepare(`SELECT name, public_key, ip FROM vpn_peers WHERE network = ? ORDER BY name`).all(network) as { name: string; public_key: string; ip: string }[];
  return rows.map((r) => ({ name: r.name, publicKey: r.public_key, ip: r.ip }));
}

/**
 * The network's services with their running instances' addresses: what its DNS answers for
 * `<service>.<network>.internal` (an instance that is not running yet, or any more, is left out;
 * one asleep for idleness is kept: a connection wakes it).
 */
function serviceRecords(store: Store, network: string): { name: string; ips: string[]; block: string }[] {
  const rows = store.db
    .prepare(`SELECT s.name, s.block, v.ip FROM services s LEFT JOIN vms v ON v.service = s.name AND ${SERVING_SQL} AND v.ip IS NOT NULL WHERE s.network = ? ORDER BY s.name, v.service_index`)
    .all(network) as { name: string; block: string; ip: string | null }[];
  const out: { name: string; ips: string[]; block: string }[] = [];
  for (const r of rows) {
    let last = out.at(-1);
    if (last?.name !== r.name) out.push((last = { name: r.name, ips: [], block: r.block }));
    if (r.ip) last.ips.push(r.ip);
  }
  return out;
}

/**
 * Absent for a network without services (or paths): the desired state of networks without
 * them reads as before. The blocks are what the node's paths table is keyed by.
 */
function serviceField(store: Store, network: string): { services?: { name: string; ips: string[]; block: string }[]; paths?: ReturnType<typeof desiredPaths> } {
  const records = serviceRecords(store, network);
  const paths = desiredPaths(store.db, network);
  return { ...(records.length ? { services: records } : {}), ...(paths.length ? { paths } : {}) };
}

export function renderDesired(store: Store, me: NodeRow): NodeDesired {
  const name = me.name;
  const revision = me.desired_rev;
  const underlay = meshUnderlayMtu(store);
  const networkMtu = guestMtu(underlay);
  const vms = (store.db.prepare(`SELECT * FROM vms WHERE node = ? ORDER BY name`).all(name) as VmRow[]).filter((vm) => !waitingForBase(store, vm));
  const exports = nodeExports(store.db, name);
  const images = new Map<string, ImageRow>();
  const imageOf = (img: ImageRow) => ({
    name: img.name,
    kind: img.kind,
    format: img.format,
    ...(img.disk ? { disk: img.disk } : {}),
    ...(img.kernel ? { kernel: img.kernel } : {}),
    ...(img.initrd ? { initrd: img.initrd } : {}),
    ...(img.root_disk ? { rootDisk: img.root_disk } : {}),
    rootFormat: img.root_format,
    cmdline: img.cmdline,
  });
  const networks = new Map<string, NetworkRow>();
  const more = new Map<string, NicRow[]>();
  for (const n of store.db.prepare(`SELECT x.* FROM vm_nics x JOIN vms v ON v.id = x.vm_id WHERE v.node = ? ORDER BY x.vm_id, x.idx`).all(name) as NicRow[]) {
    more.set(n.vm_id, [...(more.get(n.vm_id) ?? []), n]);
  }
  const nicsOf = (vm: VmRow) => [{ network: vm.network, ip: vm.ip ?? '', mac: vm.mac }, ...(more.get(vm.id) ?? []).map((n) => ({ network: n.network, ip: n.ip ?? '', mac: n.mac }))];
  const snapshots = nodeSnapshots(store.db, name);
  for (const vm of vms) {
    if (!images.has(vm.image)) images.set(vm.image, store.db.prepare(`SELECT * FROM images WHERE name = ?`).get(vm.image) as ImageRow);
    for (const { network } of nicsOf(vm)) {
      if (!networks.has(network)) networks.set(network, store.db.prepare(`SELECT * FROM networks WHERE name = ?`).get(network) as NetworkRow);
    }
  }
  // A VPN gateway hosts its networks even without a VM of them: the peers' router port lives there.
  for (const n of store.db.prepare(`SELECT * FROM networks WHERE vpn_node = ? ORDER BY name`).all(name) as NetworkRow[]) networks.set(n.name, n);
  // So does a node a while after its last VM of them went (network-linger.ts): kept built, no ports.
  for (const n of store.db.prepare(`SELECT n.* FROM networks n JOIN network_linger l ON l.network = n.name WHERE l.node = ? ORDER BY n.name`).all(name) as NetworkRow[]) {
    if (!networks.has(n.name)) networks.set(n.name, n);
  }
  // The same on every node, instances here or not: any node's address leads to a published service.
  const published = publishedState(store.db);
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
        disks: dataDisksOf(vm),
        power: vm.power,
        image: imageOf(img),
        nics: nicsOf(vm),
        userData: vm.user_data,
        sshKeys: JSON.parse(vm.ssh_keys) as string[],
        metadataTokens: vm.metadata_tokens,
        restartGen: vm.restart_gen,
        restart: vm.restart,
        ...(vm.idle_stop ? { idleStop: vm.idle_stop } : {}),
        ...(vm.wake_gen ? { wakeGen: vm.wake_gen } : {}),
        ...snapshotFields(store, vm, snapshots.get(vm.id) ?? []),
        // Only its first start is warm: a restart boots (and its disk stands on the frozen layer anyway).
        ...(vm.warm_id && vm.start === 'warm' && vm.restart_gen === 0 ? { warm: { id: vm.warm_id } } : {}),
      };
    }),
    networks: [...networks.values()].map((n) => ({
      name: n.name,
      cidr: n.cidr,
      gateway: n.gateway,
      mtu: networkMtu,
      nat: n.nat === 1,
      vni: n.vni,
      remotes: overlayRemotes(store, me, n),
      ...serviceField(store, n.name),
      ...(n.vpn_node === name && n.vpn_ip ? { vpn: { address: n.vpn_ip, mac: vpnRouterMac(n.name), peers: vpnPeers(store, n.name) } } : {}),
    })),
    mesh: desiredMesh(store, me, underlay),
    ...(published.length ? { published } : {}),
    ...(exports.length ? { exports } : {}),
    // Always said (an empty list too): the node deletes the warm states it is not told to keep.
    warm: nodeWarm(store.db, name, (image) => imageOf(store.db.prepare(`SELECT * FROM images WHERE name = ?`).get(image) as ImageRow)),
  };
}
