/**
 * What the agent needs from a hypervisor. Two implementations: `QemuDriver` (real guests)
 * and `SimDriver` (no guest, state changes only: demos and scale tests).
 */

import type { VmSpec } from '../../core/vm-spec.ts';
import type { VmExit } from '../../core/restart-policy.ts';
import type { VmStats } from './vm-stats.ts';

export type { BootSource, VmSpec } from '../../core/vm-spec.ts';

export interface ObservedVm {
  id: string;
  running: boolean;
  pid?: number;
  /** Not running: how its last run ended, when the driver knows (see `core/restart-policy.ts`). Absent after the agent's own stop. */
  exit?: VmExit;
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
  /**
   * Ends the VMs whose guest powered off but whose hypervisor still waits (QEMU's
   * `-no-shutdown`), recording that it was the guest's choice; `list` then reports them with
   * `exit: 'poweroff'`. Called before each reconcile.
   */
  reap?(): Promise<void>;
  /** Path of the captured serial console output. */
  consoleLogPath(id: string): string;
  /** Types into the VM's serial console (what `butter vm console` sends). */
  writeConsole(id: string, data: Buffer): Promise<void>;
  /** A running VM's CPU, memory, disk and network counters, for the agent's `/metrics`. */
  readonly stats: VmStats;
}
