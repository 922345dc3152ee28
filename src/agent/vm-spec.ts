/** From a VM's desired state and the local image files to what the driver runs. */
import type { DesiredVm } from '../api/schemas/desired.ts';
import type { BootSource, VmSpec } from './host/driver.ts';

export const SMBIOS_SERIAL = 'ds=nocloud-net;s=http://169.254.169.254/';

/** Tap names must fit IFNAMSIZ (15): `bt` + the 12-hex VM id. */
export function tapName(vmId: string): string {
  return `bt${vmId}`.slice(0, 15);
}

/** Bridge of a network on this host: readable when the name fits, hashed when it does not. */
export function bridgeName(network: string): string {
  const plain = `bt-${network}`;
  if (plain.length <= 15) return plain;
  let h = 0;
  for (const c of network) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `bt-${network.slice(0, 4)}-${h.toString(16).padStart(8, '0').slice(0, 7)}`;
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
    boot,
    nics: [{ tap: tapName(vm.id), mac: vm.mac }],
    smbiosSerial: SMBIOS_SERIAL,
  };
}

/** Blobs a VM needs on this host. */
export function blobsOf(vm: DesiredVm): string[] {
  const i = vm.image;
  return [i.disk, i.kernel, i.initrd, i.rootDisk].filter((s): s is string => s !== undefined);
}
