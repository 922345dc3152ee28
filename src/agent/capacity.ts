/**
 * What this host has: CPUs, memory and the disk under the agent's state dir. The agent
 * reports totals; what is kept for the host itself is the node's `reserved`, set on the
 * control plane, so allocatable = total − reserved is decided in one place.
 */
import { cpus, totalmem } from 'node:os';
import { statfsSync } from 'node:fs';

export interface HostCapacity {
  cpus: number;
  memoryBytes: number;
  diskBytes: number;
}

export function hostCapacity(stateDir: string): HostCapacity {
  const fs = statfsSync(stateDir);
  return { cpus: cpus().length, memoryBytes: totalmem(), diskBytes: fs.blocks * fs.bsize };
}
