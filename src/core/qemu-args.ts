/**
 * Renders the qemu-system-x86_64 command line for a VM. Pure (no I/O) so the exact argv is
 * pinned by golden tests and the driver only decides *when* to run it.
 */
import type { VmSpec } from './vm-spec.ts';

/** Where one VM's files live on the host (all inside `dir`). */
export interface VmPaths {
  dir: string;
  /** The VM's own qcow2 (overlay on the image, or blank for kernel boots without a root disk). */
  disk: string;
  qmpSock: string;
  consoleSock: string;
  consoleLog: string;
  pidFile: string;
  /**
   * QEMU's own log (`-D`): its run-state changes (`-trace enable=runstate_set`), so the driver
   * sees a guest poweroff without asking every QEMU over QMP (see qemu-driver.ts).
   */
  runLog: string;
  /**
   * The driver's record of how this run ends (see qemu-driver.ts): `running` from just before
   * QEMU is launched, `poweroff` once the guest powered off; removed by the agent's own stop.
   */
  powerState: string;
  /** A suspended VM's saved RAM and device state (QEMU's migration stream, issue 16). */
  memoryState: string;
  /** A warm clone's (or template's) identity, which QEMU serves as fw_cfg `opt/butter/identity`: a file (0600), never argv, which every local user can read. */
  identity: string;
}

export type Accel = 'kvm' | 'tcg';

/** The fw_cfg file a warm clone reads its identity from (`/sys/firmware/qemu_fw_cfg/by_name/opt/butter/identity/raw`). */
export const WARM_FW_CFG = 'opt/butter/identity';

/** Per-VM file layout under `<stateDir>/vms/<id>/`. String joins only: keeps this module pure. */
export function vmPaths(stateDir: string, id: string): VmPaths {
  return pathsIn(`${stateDir.replace(/\/+$/, '')}/vms/${id}`);
}

/** The same layout in any directory (a warm image's template runs in `<stateDir>/warm/<id>/`). */
export function pathsIn(dir: string): VmPaths {
  return {
    dir,
    disk: `${dir}/disk.qcow2`,
    qmpSock: `${dir}/qmp.sock`,
    consoleSock: `${dir}/console.sock`,
    consoleLog: `${dir}/console.log`,
    pidFile: `${dir}/qemu.pid`,
    runLog: `${dir}/qemu.log`,
    powerState: `${dir}/power-state`,
    memoryState: `${dir}/memory.state`,
    identity: `${dir}/identity`,
  };
}

/** A data disk's qcow2 (index 1 is the guest's `vdb`): in the VM's directory, gone with it. */
export function dataDiskPath(paths: VmPaths, index: number): string {
  return `${paths.dir}/data-${index}.qcow2`;
}

/**
 * The `-name` value that marks a process as this VM's. Adoption compares it against
 * /proc/PID/cmdline, so a recycled pid (or another VM's qemu) is never mistaken for ours.
 */
export function processMarker(id: string): string {
  return `guest=${qemuOptEscape(`butter-${id}`)},process=${qemuOptEscape(`butter-${id}`)}`;
}

/** QEMU option values (QemuOpts "k=v,k=v") escape a literal comma by doubling it. */
export function qemuOptEscape(value: string): string {
  return value.replaceAll(',', ',,');
}

/**
 * `incoming`: a resume (issue 16). QEMU starts paused (`-S`) waiting for a migration stream
 * (`-incoming defer`); the driver gives it the saved state over QMP (`migrate-incoming`) and
 * then `cont`. The rest of the argv must be the one the state was saved from (same devices).
 */
export function qemuArgs(spec: VmSpec, paths: VmPaths, accel: Accel, incoming = false): string[] {
  const e = qemuOptEscape;
  const args: string[] = [
    '-name', processMarker(spec.id),
    // graphics=off: with no display, firmware (SeaBIOS) prints to the serial console too.
    // memory-backend: the guest's RAM is the backend below (a file), not QEMU's own anonymous memory.
    '-M', spec.memoryFile ? 'q35,graphics=off,memory-backend=ram0' : 'q35,graphics=off',
    '-accel', accel,
    // `host` passes the real CPU through under KVM; TCG cannot do that, `max` is its richest model.
    '-cpu', accel === 'kvm' ? 'host' : 'max',
    '-smp', String(spec.cpus),
    '-m', String(spec.memoryMiB),
    // No default devices: no VGA, no stdio monitor, and above all no implicit user-mode NIC
    // that would give the guest a network path we did not declare.
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    // -daemonize returns once the VM is set up; the process then outlives the agent.
    '-daemonize',
    // A guest poweroff leaves QEMU alive, paused in run state `shutdown`, instead of exiting:
    // the one difference between "the guest chose to stop" and "QEMU was killed" that is still
    // there when the agent looks, even after an agent restart (qemu-driver.ts reaps it).
    '-no-shutdown',
    '-pidfile', paths.pidFile,
    // QEMU logs each change of its run state (`running` -> `shutdown` on a guest poweroff) to
    // this file, which only QEMU writes: reading it costs the agent no QMP connection per VM.
    '-D', paths.runLog,
    '-trace', 'enable=runstate_set',
    '-qmp', `unix:${e(paths.qmpSock)},server=on,wait=off`,
    // A socket so a client can attach interactively, with every byte also logged to a file
    // (QEMU writes the log even while no client is connected).
    '-chardev', `socket,id=ser0,path=${e(paths.consoleSock)},server=on,wait=off,logfile=${e(paths.consoleLog)},logappend=on`,
    '-serial', 'chardev:ser0',
    '-drive', `file=${e(paths.disk)},format=qcow2,if=virtio,discard=unmap`,
    // Data disks right after the root disk, by index: virtio-blk devices take PCI slots in argv
    // order and the guest names them in that order, so data disk 1 is `vdb` on every start.
    ...[...(spec.dataDisks ?? [])]
      .sort((a, b) => a.index - b.index)
      .flatMap((d) => ['-drive', `file=${e(dataDiskPath(paths, d.index))},format=qcow2,if=virtio,discard=unmap`]),
    // Guests block on entropy early in boot (cloud-init, sshd keys) without a hardware RNG.
    '-device', 'virtio-rng-pci',
  ];
  if (spec.memoryFile) {
    // A warm state's RAM (issue 16): the template maps the file shared, so its RAM is the file
    // when it stops; a clone maps it private, so it reads the template's pages as it touches
    // them (no load of the RAM up front) and its writes stay in its own copies.
    args.push('-object', `memory-backend-file,id=ram0,size=${spec.memoryMiB}M,mem-path=${e(spec.memoryFile.path)},share=${spec.memoryFile.shared ? 'on' : 'off'}`);
  }
  if (spec.boot.kind === 'kernel') {
    // -kernel/-initrd/-append are taken verbatim by QEMU (not QemuOpts): no comma escaping.
    args.push('-kernel', spec.boot.kernel, '-initrd', spec.boot.initrd, '-append', spec.boot.cmdline);
  }
  spec.nics.forEach((nic, i) => {
    args.push(
      '-netdev', `tap,id=n${i},ifname=${e(nic.tap)},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=n${i},mac=${e(nic.mac)}`,
    );
  });
  args.push('-smbios', `type=1,serial=${e(spec.smbiosSerial)}`);
  if (spec.identity !== undefined) {
    // fw_cfg contents are not part of a migration stream: a restored clone reads its own.
    // From a file the driver writes (0600): its seed is the guest's entropy, and argv is public on the host.
    args.push('-fw_cfg', `name=${WARM_FW_CFG},file=${e(paths.identity)}`, '-device', 'vmgenid,guid=auto');
  }
  if (incoming) args.push('-S', '-incoming', 'defer');
  return args;
}
