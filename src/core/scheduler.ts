/**
 * Placement: a pure function over a snapshot of the cluster. It returns a node or, when
 * nothing fits, why each node was refused — the error a user needs to act on.
 */
import { humanSize as formatSize } from './units.ts';

export interface NodeSnapshot {
  name: string;
  ready: boolean;
  capacity: { cpus: number; memoryBytes: number; diskBytes: number } | null;
  allocated: { cpus: number; memoryBytes: number; diskBytes: number };
  vmCount: number;
}

export interface PlacementRequest {
  cpus: number;
  memoryBytes: number;
  diskBytes: number;
  /** Pin to this node. */
  node?: string;
}

/** CPUs may be overcommitted; memory and disk may not (a later issue makes these per group). */
export const CPU_OVERCOMMIT = 4;

export type Placement = { ok: true; node: string } | { ok: false; reasons: string[] };

function refusal(n: NodeSnapshot, r: PlacementRequest): string | undefined {
  if (!n.ready) return `${n.name}: not ready`;
  if (!n.capacity) return `${n.name}: capacity unknown`;
  const cpuFree = n.capacity.cpus * CPU_OVERCOMMIT - n.allocated.cpus;
  if (cpuFree < r.cpus) return `${n.name}: cpus ${cpuFree} free < ${r.cpus}`;
  const memFree = n.capacity.memoryBytes - n.allocated.memoryBytes;
  if (memFree < r.memoryBytes) return `${n.name}: memory ${formatSize(Math.max(0, memFree))} free < ${formatSize(r.memoryBytes)}`;
  const diskFree = n.capacity.diskBytes - n.allocated.diskBytes;
  if (diskFree < r.diskBytes) return `${n.name}: disk ${formatSize(Math.max(0, diskFree))} free < ${formatSize(r.diskBytes)}`;
  return undefined;
}

/** Spread: among the nodes that fit, the one with the most free memory, then fewest VMs. */
export function schedule(nodes: readonly NodeSnapshot[], req: PlacementRequest): Placement {
  const candidates = req.node ? nodes.filter((n) => n.name === req.node) : nodes;
  if (candidates.length === 0) return { ok: false, reasons: [req.node ? `node ${req.node} does not exist` : 'no nodes registered'] };
  const reasons: string[] = [];
  let best: NodeSnapshot | undefined;
  for (const n of candidates) {
    const why = refusal(n, req);
    if (why) {
      reasons.push(why);
      continue;
    }
    const free = (x: NodeSnapshot) => x.capacity!.memoryBytes - x.allocated.memoryBytes;
    if (!best || free(n) > free(best) || (free(n) === free(best) && n.vmCount < best.vmCount)) best = n;
  }
  return best ? { ok: true, node: best.name } : { ok: false, reasons };
}
