/** What this host can offer: CPUs, memory and the disk under the agent's state dir. */
import { cpus, totalmem } from 'node:os';
import { statfsSync } from 'node:fs';

export interface HostCapacity {
  cpus: number;
  memoryBytes: number;
  diskBytes: number;
}

/** Memory kept for the host itself (kernel, agent, QEMU overhead), never given to guests. */
export const HOST_RESERVED_MEMORY = 512 * 1024 ** 2;

export function hostCapacity(stateDir: string): HostCapacity {
  const fs = statfsSync(stateDir);
  return {
    cpus: cpus().length,
    memoryBytes: Math.max(totalmem() - HOST_RESERVED_MEMORY, 256 * 1024 ** 2),
    diskBytes: fs.bavail * fs.bsize,
  };
}
