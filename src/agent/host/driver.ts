/**
 * What the agent needs from a hypervisor. Two implementations: `QemuDriver` (real guests)
 * and `SimDriver` (no guest, state changes only: demos and scale tests).
 */

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
  boot: BootSource;
  nics: { tap: string; mac: string }[];
  /** SMBIOS system serial, e.g. `ds=nocloud-net;s=http://169.254.169.254/`. */
  smbiosSerial: string;
}

export interface ObservedVm {
  id: string;
  running: boolean;
  pid?: number;
}

export interface VmDriver {
  readonly name: 'qemu' | 'sim';
  /** Creates the VM's disk if missing and starts it. Idempotent when already running. */
  start(spec: VmSpec): Promise<void>;
  /** Graceful shutdown (ACPI powerdown over QMP), then kill after `timeoutMs`. */
  stop(id: string, timeoutMs: number): Promise<void>;
  /** Stops the VM if needed and removes everything it owns on the host (disk, sockets, logs). */
  destroy(id: string): Promise<void>;
  /** Every VM this driver has on the host, including ones started by an earlier agent. */
  list(): Promise<ObservedVm[]>;
  /** Path of the captured serial console output. */
  consoleLogPath(id: string): string;
}
