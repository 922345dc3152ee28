/**
 * What the agent needs from a hypervisor. Two implementations: `QemuDriver` (real guests)
 * and `SimDriver` (no guest, state changes only: demos and scale tests).
 */

import type { VmSpec } from '../../core/vm-spec.ts';
import type { VmExit } from '../../core/restart-policy.ts';
import type { VmStats } from './vm-stats.ts';
import type { WarmAddress } from '../../core/warm.ts';

export type { BootSource, VmSpec } from '../../core/vm-spec.ts';

export interface ObservedVm {
  id: string;
  running: boolean;
  pid?: number;
  /** Not running: how its last run ended, when the driver knows (see `core/restart-policy.ts`). Absent after the agent's own stop. */
  exit?: VmExit;
  /** Not running: its memory state is saved (`vm suspend`), so a resume brings it back where it was. */
  suspended?: boolean;
}

export interface VmDriver {
  readonly name: 'qemu' | 'sim';
  /**
   * Creates the VM's disk if missing and starts it. Idempotent when already running.
   * `resumed`: the start was the restore of a memory snapshot, so the guest went on where the
   * snapshot left it instead of booting (it fetches no metadata: it is as ready as it was).
   */
  start(spec: VmSpec): Promise<void | { resumed?: boolean }>;
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
  /** Disk snapshots of the VMs' root disks (issue 16). */
  readonly snapshots?: SnapshotDisks;
  /** Memory snapshots: suspend and resume (issue 16). */
  readonly memory?: MemoryStates;
  /** Warm images (issue 16): templates' saved states, and VMs started from them. */
  readonly warm?: WarmStates;
}

/**
 * Warm states, each in its own directory on the node (`<stateDir>/warm/<id>/`): a template's
 * frozen disk layer and its saved RAM and device state. Never listed as VMs.
 */
export interface WarmStates {
  /** Whether a complete warm state `id` is here. */
  has(id: string): boolean;
  /** The complete ones here. */
  list(): string[];
  /**
   * Boots `template` (a spec from `warmTemplateSpec`), waits until its guest says it is ready
   * (`WARM_READY_LINE` on its console, within `WARM_READY_TIMEOUT_MS`), saves its state,
   * freezes its disk and ends it. Nothing is left of one that failed; the error says why.
   */
  make(template: VmSpec): Promise<{ ms: number; sizeBytes: number }>;
  /**
   * Starts a new VM from warm state `id` (its first disk an overlay on the frozen layer,
   * its RAM the template's, its identity in fw_cfg, with `address`, its first NIC's, if
   * given: the guest sets it instead of asking DHCP); `ms`: from the launch to running.
   * Throws, leaving nothing, when it cannot (then the agent boots it cold).
   */
  start(spec: VmSpec, id: string, address?: WarmAddress): Promise<{ ms: number }>;
  /** Deletes one; refused (throws) while a VM's disk on this host stands on it. */
  remove(id: string): Promise<void>;
}

/** A VM's RAM and device state saved in its directory (one per VM), and brought back. */
export interface MemoryStates {
  /** Saves a running VM's state (the disk flushed with it) and ends its hypervisor; `ms`: from the save's start to its end. Nothing is left of one that failed, and the VM runs on. */
  suspend(id: string): Promise<{ ms: number; sizeBytes: number }>;
  /** Starts the VM on its saved state (same disk, NICs, identity); the state file goes once it runs. `ms`: from the launch to running. */
  resume(spec: VmSpec): Promise<{ ms: number }>;
  /** Throws the saved state away (`vm stop` of a suspended VM). */
  discard(id: string): Promise<void>;
  /**
   * Starts a VM that is not running from the memory state saved with a snapshot (`vm snapshot
   * --memory`): `from` is that snapshot, of this VM (a restore) or of another VM of this host
   * (a warm start); the disk is what the spec makes it (`restore`, `base`), and the state
   * file is kept. `ms`: from the launch to running.
   */
  launchFrom(spec: VmSpec, from: { vm: string; snapshot: string }): Promise<{ ms: number }>;
}

/** What a driver does with a VM's snapshot files; each snapshot is named by its control-plane id. */
export interface SnapshotDisks {
  /** Whether the VM's root disk exists yet (nothing can be taken before). */
  hasDisk(id: string): boolean;
  /** The snapshots the VM has on this host. */
  list(id: string): Promise<string[]>;
  /**
   * Takes one of the root disk as it is now: a running VM is paused for it (`pauseMs`, from
   * the pause to the resume), a stopped one is done on its files. Nothing is left of a take that failed.
   * `memory` (a running VM only): its RAM and device state too, of the same instant (`memoryBytes`).
   */
  take(id: string, snapshot: string, opts?: { memory?: boolean }): Promise<{ pauseMs?: number; sizeBytes?: number; memoryBytes?: number }>;
  /**
   * Deletes one; refused (throws) while a disk or another snapshot on this host stands on it.
   * `merge`: the VM's own disk and snapshots standing on it are first made to stand on its
   * parent, its data merged into them; another VM's (a clone's) still refuse it.
   */
  remove(id: string, snapshot: string, merge?: boolean): Promise<void>;
  /**
   * Writes the root disk as it was at the snapshot into `dest` as one self-contained file (its
   * chain flattened: no backing file), for an image or a clone on another node. The caller
   * removes `dest`, whatever happens.
   */
  export(id: string, snapshot: string, dest: string): Promise<void>;
}
