/**
 * A running VM's resource counters, as `/metrics` on the agent shows them (agent/metrics.ts).
 * Two implementations behind one interface: the QEMU driver's reads procfs, sysfs and QMP
 * (`qemu-stats.ts`); the simulated driver makes believable numbers up (`sim-driver.ts`).
 */

/** Counters since the VM's process started; network bytes as the guest sees them. */
export interface VmSample {
  /** CPU time of the hypervisor process (user + system): the guest's vCPUs and QEMU's own work. */
  cpuSeconds: number;
  /** Resident memory of the hypervisor process: what the guest touched, plus QEMU's own. */
  rssBytes: number;
  diskReadBytes: number;
  diskWriteBytes: number;
  /** Received by the guest: sent by the host into its taps. */
  netRxBytes: number;
  /** Sent by the guest: received by the host from its taps. */
  netTxBytes: number;
}

export interface VmStats {
  /** The counters of VM `id` whose NICs are the host's `taps`; undefined when it does not run. */
  sample(id: string, taps: readonly string[]): Promise<VmSample | undefined>;
}
