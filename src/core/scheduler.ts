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

/**
 * Why a node was refused, as a word from a fixed set (the sentence names numbers and nodes):
 * what `butter_scheduler_refusals_total{reason}` counts, so its labels stay few.
 */
export const REFUSAL_KINDS = ['no_nodes', 'no_such_node', 'not_ready', 'cordoned', 'capacity_unknown', 'group', 'zone', 'labels', 'cpus', 'memory', 'disk'] as const;
export type RefusalKind = (typeof REFUSAL_KINDS)[number];

/** A refusal gives each node's sentence and the distinct kinds among them (in REFUSAL_KINDS order). */
export type Placement = { ok: true; node: string; warnings: string[] } | { ok: false; reasons: string[]; kinds: RefusalKind[] };

/** How much of each resource the node may hand out, overcommit included. */
export function allocatable(n: NodeSnapshot): Resources {
  const c = n.capacity ?? { cpus: 0, memoryBytes: 0, diskBytes: 0 };
  return {
    cpus: Math.max(0, c.cpus - n.reserved.cpus) * n.ratios.cpu,
    memoryBytes: Math.floor(Math.max(0, c.memoryBytes - n.reserved.memoryBytes) * n.ratios.memory),
    diskBytes: Math.floor(Math.max(0, c.diskBytes - n.reserved.diskBytes) * n.ratios.disk),
  };
}

type Refusal = [RefusalKind, string];

function constraintRefusal(n: NodeSnapshot, r: PlacementRequest, labels: readonly [string, string][]): Refusal | undefined {
  if (!n.ready) return ['not_ready', `${n.name}: not ready`];
  if (n.cordoned && r.node !== n.name) return ['cordoned', `${n.name}: cordoned`];
  if (!n.capacity) return ['capacity_unknown', `${n.name}: capacity unknown`];
  if (r.group !== undefined && n.group !== r.group) return ['group', `${n.name}: group ${n.group} ≠ ${r.group}`];
  if (r.zone !== undefined && n.zone !== r.zone) return ['zone', `${n.name}: zone ${n.zone} ≠ ${r.zone}`];
  for (const [k, v] of labels) {
    if (n.labels[k] !== v) return ['labels', `${n.name}: label ${k}=${v} missing`];
  }
  return undefined;
}

/** The first resource that would not fit, as a sentence; undefined when all fit. */
function capacityRefusal(n: NodeSnapshot, r: Resources, a: Resources = allocatable(n)): Refusal | undefined {
  const free = { cpus: a.cpus - n.allocated.cpus, memoryBytes: a.memoryBytes - n.allocated.memoryBytes, diskBytes: a.diskBytes - n.allocated.diskBytes };
  if (free.cpus < r.cpus) return ['cpus', `${n.name}: cpus ${Math.max(0, free.cpus)} free < ${r.cpus}`];
  if (free.memoryBytes < r.memoryBytes) return ['memory', `${n.name}: memory ${humanSize(Math.max(0, free.memoryBytes))} free < ${humanSize(r.memoryBytes)}`];
  if (free.diskBytes < r.diskBytes) return ['disk', `${n.name}: disk ${humanSize(Math.max(0, free.diskBytes))} free < ${humanSize(r.diskBytes)}`];
  return undefined;
}

/** The hard constraints alone, without building a sentence: the hot loop's test. */
function admits(n: NodeSnapshot, r: PlacementRequest, labels: readonly [string, string][]): boolean {
  if (!n.ready || !n.capacity || (n.cordoned && r.node !== n.name)) return false;
  if ((r.group !== undefined && n.group !== r.group) || (r.zone !== undefined && n.zone !== r.zone)) return false;
  return hasLabels(n, labels);
}

export function hasLabels(n: NodeSnapshot, labels: readonly [string, string][]): boolean {
  for (const [k, v] of labels) if (n.labels[k] !== v) return false;
  return true;
}

/**
 * Ranking, best first: fewest of the spread key in the zone, then on the node, then the
 * policy's score (spread: most memory free after placement; binpack: least), then VM count.
 * Returns < 0 when (zoneA, nodeA, freeA, countA) ranks before (zoneB, …).
 */
export function compareRank(zoneA: number, nodeA: number, freeA: number, countA: number, zoneB: number, nodeB: number, freeB: number, countB: number, sign: number): number {
  return zoneA - zoneB || nodeA - nodeB || sign * (freeA - freeB) || -sign * (countA - countB);
}

/**
 * Runs for every node on every placement (1,000 nodes × thousands of placements a second),
 * so the pass that finds the best node compares numbers and allocates nothing; the sentences
 * explaining a refusal are built only when nothing fits.
 */
export function schedule(nodes: readonly NodeSnapshot[], req: PlacementRequest): Placement {
  const labels = req.labels ? Object.entries(req.labels) : [];
  const key = req.spreadKey;
  const sign = (req.policy ?? 'spread') === 'spread' ? -1 : 1;
  // Instances of the spread key per zone; zones are few, so a small map.
  const zoneCount = new Map<string, number>();
  if (key !== undefined) {
    for (let i = 0; i < nodes.length; i++) {
      const c = nodes[i]!.spread[key];
      if (c) zoneCount.set(nodes[i]!.zone, (zoneCount.get(nodes[i]!.zone) ?? 0) + c);
    }
  }
  // The best node that fits, and (for --force) the best that fits only the physical host.
  let fit: NodeSnapshot | undefined;
  let fitZone = 0, fitNode = 0, fitFree = 0;
  let forced: NodeSnapshot | undefined;
  let forcedZone = 0, forcedNode = 0, forcedFree = 0;
  let candidates = 0;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    if (req.node !== undefined && n.name !== req.node) continue;
    candidates++;
    if (!admits(n, req, labels)) continue;
    const c = n.capacity!;
    const cpus = Math.max(0, c.cpus - n.reserved.cpus), mem = Math.max(0, c.memoryBytes - n.reserved.memoryBytes), disk = Math.max(0, c.diskBytes - n.reserved.diskBytes);
    const allocMem = Math.floor(mem * n.ratios.memory);
    const fits = cpus * n.ratios.cpu - n.allocated.cpus >= req.cpus && allocMem - n.allocated.memoryBytes >= req.memoryBytes && Math.floor(disk * n.ratios.disk) - n.allocated.diskBytes >= req.diskBytes;
    if (!fits && !(req.force && !fit && cpus >= req.cpus && mem >= req.memoryBytes && disk >= req.diskBytes)) continue;
    const z = key !== undefined ? (zoneCount.get(n.zone) ?? 0) : 0;
    const k = key !== undefined ? (n.spread[key] ?? 0) : 0;
    const free = allocMem === 0 ? 0 : (allocMem - n.allocated.memoryBytes - req.memoryBytes) / allocMem;
    if (fits) {
      if (!fit || compareRank(z, k, free, n.vmCount, fitZone, fitNode, fitFree, fit.vmCount, sign) < 0) [fit, fitZone, fitNode, fitFree] = [n, z, k, free];
    } else if (!forced || compareRank(z, k, free, n.vmCount, forcedZone, forcedNode, forcedFree, forced.vmCount, sign) < 0) {
      [forced, forcedZone, forcedNode, forcedFree] = [n, z, k, free];
    }
  }
  if (candidates === 0) return req.node !== undefined ? { ok: false, reasons: [`node ${req.node} does not exist`], kinds: ['no_such_node'] } : { ok: false, reasons: ['no nodes registered'], kinds: ['no_nodes'] };
  if (fit) return { ok: true, node: fit.name, warnings: [] };
  // Nothing fits within the ratios: say why, node by node.
  const reasons: string[] = [];
  const kinds = new Set<RefusalKind>();
  for (const n of nodes) {
    if (req.node !== undefined && n.name !== req.node) continue;
    const why = constraintRefusal(n, req, labels) ?? capacityRefusal(n, req);
    if (why) {
      kinds.add(why[0]);
      reasons.push(why[1]);
    }
  }
  // --force may go beyond the overcommit ratios, but a VM larger than the host never fits.
  if (forced) return { ok: true, node: forced.name, warnings: [`placed beyond overcommit with --force: ${capacityRefusal(forced, req)?.[1]}`] };
  return { ok: false, reasons, kinds: REFUSAL_KINDS.filter((k) => kinds.has(k)) };
}

/**
 * Refusal reasons for a message: every node when few, else the first `max` and a count of the
 * rest by kind (a thousand "not ready" lines help nobody).
 */
export function summarizeReasons(reasons: readonly string[], max = 10): string {
  if (reasons.length <= max) return reasons.join('; ');
  const kinds = new Map<string, number>();
  for (const r of reasons.slice(max)) {
    // "node-b: memory 3.1G free < 4G" → "memory"; "node-c: not ready" → "not ready".
    const what = r.replace(/^[^:]*: /, '').replace(/ \S*\d.*$/, '').replace(/ [^ ]+ ≠ .*$/, '');
    kinds.set(what, (kinds.get(what) ?? 0) + 1);
  }
  const rest = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
  return `${reasons.slice(0, max).join('; ')}; and ${reasons.length - max} more nodes (${rest})`;
}
