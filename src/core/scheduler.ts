/**
 * Placement: a pure function over a snapshot of the cluster. It returns a node (with any
 * warnings) or, when nothing fits, why each node was refused — the error a user acts on.
 *
 * Order of decisions: hard constraints (ready, not cordoned, --node/--group/--zone/labels),
 * then capacity within the group's overcommit ratios, then anti-affinity (fewest instances of
 * the same spread key in the zone, then on the node), then the policy (spread or binpack).
 */
import { humanSize } from './units.ts';

export interface Resources {
  cpus: number;
  memoryBytes: number;
  diskBytes: number;
}

export interface Ratios {
  cpu: number;
  memory: number;
  disk: number;
}

export const DEFAULT_RATIOS: Ratios = { cpu: 4, memory: 1, disk: 1 };

export type Policy = 'spread' | 'binpack';

export interface NodeSnapshot {
  name: string;
  ready: boolean;
  cordoned: boolean;
  group: string;
  zone: string;
  labels: Readonly<Record<string, string>>;
  /** What the host has; null until its agent first reports. */
  capacity: Resources | null;
  /** Kept for the host itself: allocatable = capacity − reserved. */
  reserved: Resources;
  ratios: Ratios;
  allocated: Resources;
  vmCount: number;
  /** Instances per spread key (a service or VM group) already on this node. */
  spread: Readonly<Record<string, number>>;
}

export interface PlacementRequest extends Resources {
  node?: string | undefined;
  group?: string | undefined;
  zone?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  policy?: Policy | undefined;
  /** Instances sharing this key are spread across zones, then nodes. */
  spreadKey?: string | undefined;
  /** Place beyond the overcommit ratios (never beyond constraints); flagged as a warning. */
  force?: boolean | undefined;
}

export type Placement = { ok: true; node: string; warnings: string[] } | { ok: false; reasons: string[] };

/** How much of each resource the node may hand out, overcommit included. */
export function allocatable(n: NodeSnapshot): Resources {
  const c = n.capacity ?? { cpus: 0, memoryBytes: 0, diskBytes: 0 };
  return {
    cpus: Math.max(0, c.cpus - n.reserved.cpus) * n.ratios.cpu,
    memoryBytes: Math.floor(Math.max(0, c.memoryBytes - n.reserved.memoryBytes) * n.ratios.memory),
    diskBytes: Math.floor(Math.max(0, c.diskBytes - n.reserved.diskBytes) * n.ratios.disk),
  };
}

function constraintRefusal(n: NodeSnapshot, r: PlacementRequest, labels: readonly [string, string][]): string | undefined {
  if (!n.ready) return `${n.name}: not ready`;
  if (n.cordoned && r.node !== n.name) return `${n.name}: cordoned`;
  if (!n.capacity) return `${n.name}: capacity unknown`;
  if (r.group !== undefined && n.group !== r.group) return `${n.name}: group ${n.group} ≠ ${r.group}`;
  if (r.zone !== undefined && n.zone !== r.zone) return `${n.name}: zone ${n.zone} ≠ ${r.zone}`;
  for (const [k, v] of labels) {
    if (n.labels[k] !== v) return `${n.name}: label ${k}=${v} missing`;
  }
  return undefined;
}

/** The first resource that would not fit, as a sentence; undefined when all fit. */
function capacityRefusal(n: NodeSnapshot, r: Resources, a: Resources = allocatable(n)): string | undefined {
  const free = { cpus: a.cpus - n.allocated.cpus, memoryBytes: a.memoryBytes - n.allocated.memoryBytes, diskBytes: a.diskBytes - n.allocated.diskBytes };
  if (free.cpus < r.cpus) return `${n.name}: cpus ${Math.max(0, free.cpus)} free < ${r.cpus}`;
  if (free.memoryBytes < r.memoryBytes) return `${n.name}: memory ${humanSize(Math.max(0, free.memoryBytes))} free < ${humanSize(r.memoryBytes)}`;
  if (free.diskBytes < r.diskBytes) return `${n.name}: disk ${humanSize(Math.max(0, free.diskBytes))} free < ${humanSize(r.diskBytes)}`;
  return undefined;
}

/** Fraction of memory (the scarce resource) still free after this placement. */
function freeAfter(n: NodeSnapshot, r: Resources, a: Resources): number {
  return a.memoryBytes === 0 ? 0 : (a.memoryBytes - n.allocated.memoryBytes - r.memoryBytes) / a.memoryBytes;
}

export function schedule(nodes: readonly NodeSnapshot[], req: PlacementRequest): Placement {
  const candidates = req.node !== undefined ? nodes.filter((n) => n.name === req.node) : nodes;
  if (candidates.length === 0) return { ok: false, reasons: [req.node !== undefined ? `node ${req.node} does not exist` : 'no nodes registered'] };

  const reasons: string[] = [];
  const fits: { n: NodeSnapshot; free: number }[] = [];
  const forced: { n: NodeSnapshot; free: number; why: string }[] = [];
  const labels = Object.entries(req.labels ?? {});
  for (const n of candidates) {
    const hard = constraintRefusal(n, req, labels);
    if (hard) {
      reasons.push(hard);
      continue;
    }
    const a = allocatable(n);
    const soft = capacityRefusal(n, req, a);
    if (!soft) fits.push({ n, free: freeAfter(n, req, a) });
    else {
      reasons.push(soft);
      // --force may go beyond the overcommit ratios, but a VM larger than the host never fits.
      const physical = capacityRefusal({ ...n, ratios: { cpu: 1, memory: 1, disk: 1 }, allocated: { cpus: 0, memoryBytes: 0, diskBytes: 0 } }, req);
      if (req.force && !physical) forced.push({ n, free: freeAfter(n, req, a), why: soft });
    }
  }
  const pool = fits.length ? fits : forced;
  if (pool.length === 0) return { ok: false, reasons };

  // Rank: fewest of the spread key in the zone, then on the node, then the policy's score
  // (spread: most memory free after placement; binpack: least), then VM count. This loop runs
  // over every node for every placement, so it compares numbers and allocates nothing.
  const key = req.spreadKey;
  const zoneCount = new Map<string, number>();
  if (key !== undefined) for (const n of nodes) zoneCount.set(n.zone, (zoneCount.get(n.zone) ?? 0) + (n.spread[key] ?? 0));
  const sign = (req.policy ?? 'spread') === 'spread' ? -1 : 1;
  const rank = (c: { n: NodeSnapshot; free: number }) => [
    key !== undefined ? (zoneCount.get(c.n.zone) ?? 0) : 0,
    key !== undefined ? (c.n.spread[key] ?? 0) : 0,
    sign * c.free,
    -sign * c.n.vmCount,
  ];
  let best = pool[0]!;
  let bestRank = rank(best);
  for (let i = 1; i < pool.length; i++) {
    const c = pool[i]!;
    // Cheap first: with no spread key the first two ranks are equal for everyone.
    if (key === undefined && sign * c.free > bestRank[2]!) continue;
    const r = rank(c);
    for (let k = 0; k < 4; k++) {
      if (r[k]! < bestRank[k]!) {
        best = c;
        bestRank = r;
        break;
      }
      if (r[k]! > bestRank[k]!) break;
    }
  }
  const warnings = fits.length ? [] : [`placed beyond overcommit with --force: ${forced.find((f) => f.n === best.n)!.why}`];
  return { ok: true, node: best.n.name, warnings };
}
