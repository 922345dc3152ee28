/**
 * What a hypervisor driver is asked to run (pure data, rendered by `qemu-args.ts`), and the
 * mapping from a VM's desired state to it.
 */
import type { DesiredVm, DesiredWarm } from '../api/schemas/desired.ts';
import { TEMPLATE_IDENTITY, TEMPLATE_MAC, templateCmdline } from './warm.ts';
import type { DiskFormat } from './image-check.ts';

/** How the guest boots: a firmware-booted disk, or a kernel + initrd (direct boot). */
export type BootSource =
  | { kind: 'disk'; disk: string; format: 'qcow2' | 'raw' }
  | { kind: 'kernel'; kernel: string; initrd: string; cmdline: string; rootDisk?: string; rootFormat?: 'qcow2' | 'raw' };

export interface VmSpec {
  /** Stable id (the control plane's VM id); names files, sockets and the process. */
  id: string;
  name: string;
  cpus: number;
  memoryMiB: number;
  /** Size of the VM's own disk (the qcow2 overlay); grown, never shrunk. */
  diskBytes: number;
  /** Empty data disks after the root disk, by index (1 is the guest's `vdb`); made once, never resized. */
  dataDisks?: { index: number; sizeBytes: number }[];
  boot: BootSource;
  nics: { tap: string; mac: string }[];
  /** SMBIOS system serial, e.g. `ds=nocloud-net;s=http://169.254.169.254/`. */
  smbiosSerial: string;
  /** Snapshots (issue 16): the id of the `initial` one, made with the disk before the guest's first write. */
  initialSnapshot?: string;
  /** A clone's first disk stands on this snapshot of another VM of this host, not on the image. */
  base?: { vm: string; snapshot: string };
  /** A clone of a snapshot on another node: its first disk stands on this file (a verified blob of this host's image cache). */
  baseFile?: { file: string; format: 'qcow2' | 'raw'; sha256: string };
  /**
   * Before this start, once per `gen`: the disk becomes a new overlay on this snapshot; with
   * `memory` (a memory snapshot), the guest is launched from the RAM state saved with it.
   */
  restore?: { snapshot: string; gen: number; memory?: boolean };
  /**
   * Warm images (issue 16): the identity a warm clone reads from fw_cfg (`opt/butter/identity`,
   * `core/warm.ts`), also given, zeroed, to the template it is restored from. With it the VM
   * also gets a VM generation id (`-device vmgenid,guid=auto`), which the guest kernel
   * reseeds its RNG on when it changes (every restore).
   */
  identity?: string;
  /** A warm clone's first disk stands on this warm state's frozen layer, not on the image (the driver sets it). */
  warmBase?: string;
  /**
   * Guest RAM in this file instead of anonymous memory (warm images, the driver sets it): the
   * template's `shared` (its RAM is written to the file, so its saved state need not hold it),
   * a clone's private (a copy-on-write mapping of the template's: its writes stay its own).
   */
  memoryFile?: { path: string; shared: boolean };
}

export const SMBIOS_SERIAL = 'ds=nocloud-net;s=http://169.254.169.254/';

/** The guest's name of a VM's disk: the root disk (0) is `vda`, data disk 1 `vdb`, ... (virtio-blk order). */
export function guestDevice(index: number): string {
  return `vd${String.fromCharCode(97 + index)}`;
}

/** Tap names must fit IFNAMSIZ (15): `bt` + the 12-hex VM id, + the NIC's index from eth1 on. */
export function tapName(vmId: string, nic = 0): string {
  return nic === 0 ? `bt${vmId}`.slice(0, 15) : `bt${vmId.slice(0, 12)}${nic}`;
}

/**
 * Bridge of a network on this host: readable when the name fits, hashed when it does not.
 * At most 13 characters: the metadata address gets the interface label `<bridge>:m`, and
 * labels are capped at 15.
 */
/** The network's VXLAN port on this host: its bridge's name with `btx` for `bt-` (fits 15). */
export function vxlanName(network: string): string {
  return `btx${bridgeName(network).slice(3)}`;
}

/**
 * The network's VPN router on its VPN gateway node: a veth pair, `btp…` a port of the bridge,
 * `btr…` the host end that routes to the peers (names fit 15 like the VXLAN port's).
 */
export function vpnDevices(network: string): { router: string; port: string } {
  const id = bridgeName(network).slice(3);
  return { router: `btr${id}`, port: `btp${id}` };
}

export function bridgeName(network: string): string {
  const plain = `bt-${network}`;
  if (plain.length <= 13) return plain;
  let h = 0;
  for (const c of network) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `bt-${network.slice(0, 3)}-${h.toString(16).padStart(8, '0').slice(0, 6)}`;
}

export function vmSpec(vm: DesiredVm, file: (sha256: string) => string): VmSpec {
  const img = vm.image;
  let boot: BootSource;
  if (img.kind === 'disk') {
    boot = { kind: 'disk', disk: file(img.disk!), format: img.format ?? 'raw' };
  } else {
    boot = {
      kind: 'kernel',
      kernel: file(img.kernel!),
      initrd: file(img.initrd!),
      cmdline: img.cmdline ?? 'console=ttyS0',
      ...(img.rootDisk ? { rootDisk: file(img.rootDisk), rootFormat: img.rootFormat ?? 'raw' } : {}),
    };
  }
  return {
    id: vm.id,
    name: vm.name,
    cpus: vm.cpus,
    memoryMiB: Math.floor(vm.memoryBytes / 1024 ** 2),
    diskBytes: vm.diskBytes,
    dataDisks: (vm.disks ?? []).map((d) => ({ index: d.index, sizeBytes: d.sizeBytes })),
    boot,
    nics: vm.nics.map((n, i) => ({ tap: tapName(vm.id, i), mac: n.mac })),
    smbiosSerial: SMBIOS_SERIAL,
    ...(vm.initialSnapshot ? { initialSnapshot: vm.initialSnapshot } : {}),
    ...(vm.base ? { base: vm.base } : {}),
    ...(vm.baseBlob ? { baseFile: { file: file(vm.baseBlob.sha256), format: vm.baseBlob.format, sha256: vm.baseBlob.sha256 } } : {}),
    ...(vm.restore ? { restore: vm.restore } : {}),
  };
}

/** A warm image's template (issue 16): the image booted with one NIC on a tap of QEMU's own, on no bridge. */
export function warmTemplateSpec(w: DesiredWarm, file: (sha256: string) => string): VmSpec {
  const spec = vmSpec(
    { id: w.id, name: `warm-${w.image.name}`, cpus: w.cpus, memoryBytes: w.memoryBytes, diskBytes: 0, image: w.image, nics: [{ network: 'none', ip: '', mac: TEMPLATE_MAC }] } as DesiredVm,
    file,
  );
  const boot = spec.boot.kind === 'kernel' ? { ...spec.boot, cmdline: templateCmdline(spec.boot.cmdline) } : spec.boot;
  // `bw` + the id: QEMU makes the tap (down, on no bridge) and it goes with QEMU.
  return { ...spec, dataDisks: [], boot, nics: [{ tap: `bw${w.id}`.slice(0, 15), mac: TEMPLATE_MAC }], identity: TEMPLATE_IDENTITY };
}

/**
 * Blobs a VM needs on this host; disks with the format they are opened as (and inspected in),
 * the same `vmSpec` hands QEMU. A kernel and an initrd are files QEMU reads, never disks.
 */
export function blobsOf(vm: Pick<DesiredVm, 'image'> & Partial<Pick<DesiredVm, 'baseBlob'>>): { sha256: string; format?: DiskFormat }[] {
  const i = vm.image;
  return [
    ...(i.disk !== undefined ? [{ sha256: i.disk, format: i.format ?? 'raw' }] : []),
    ...[i.kernel, i.initrd].filter((s): s is string => s !== undefined).map((sha256) => ({ sha256 })),
    ...(i.rootDisk !== undefined ? [{ sha256: i.rootDisk, format: i.rootFormat ?? 'raw' }] : []),
    // A cross-node clone's base: fetched, verified and inspected like an image's disk, and kept in the cache while the clone exists.
    ...(vm.baseBlob !== undefined ? [{ sha256: vm.baseBlob.sha256, format: vm.baseBlob.format }] : []),
  ];
}
