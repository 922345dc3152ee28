/**
 * The scheduler's cluster view kept hot: the same decisions as `schedule()`, over columns of
 * numbers instead of a thousand scattered node objects.
 *
 * Why: placement scans every node for every VM. Over node objects built from database rows
 * (each with nested capacity, allocation and spread objects spread across the heap) that scan
 * cost about 1 ms for 1,000 nodes, nearly all of it cache misses; over typed arrays it costs a
 * few microseconds. A property test holds this index to `schedule()`'s answers, node for node.
 *
 * The index owns the snapshots it was built from and patches them in `place()`, so the
 * per-node refusal sentences (built only when nothing fits) come from `schedule()` itself.
 */
import { compareRank, hasLabels, schedule, type NodeSnapshot, type Placement, type PlacementRequest } from './scheduler.ts';

type Mutable = NodeSnapshot & { allocated: { cpus: number; memoryBytes: number; diskBytes: number }; vmCount: number; spread: Record<string, number> };

export class PlacementIndex<N extends NodeSnapshot = NodeSnapshot> {
  private readonly at = new Map<string, number>();
  /** Ready, with a known capacity; cordoned nodes are admitted only when named. */
  private readonly usable: Uint8Array;
  private readonly cordoned: Uint8Array;
  private readonly groupOf: Int32Array;
  private readonly zoneOf: Int32Array;
  private readonly groups = new Map<string, number>();
  private readonly zones = new Map<string, number>();
  // Allocatable (overcommit included) and allocated, per resource.
  private readonly allocCpu: Float64Array;
  private readonly allocMem: Float64Array;
  private readonly allocDisk: Float64Array;
  private readonly usedCpu: Float64Array;
  private readonly usedMem: Float64Array;
  private readonly usedDisk: Float64Array;
  private readonly vmCount: Float64Array;
  /** Per spread key: instances per node, and per zone. Built on first use of a key. */
  private readonly spread = new Map<string, { perNode: Int32Array; perZone: Float64Array }>();

  constructor(readonly nodes: readonly N[]) {
    const n = nodes.length;
    this.usable = new Uint8Array(n);
    this.cordoned = new Uint8Array(n);
    this.groupOf = new Int32Array(n);
    this.zoneOf = new Int32Array(n);
    this.allocCpu = new Float64Array(n);
    this.allocMem = new Float64Array(n);
    this.allocDisk = new Float64Array(n);
    this.usedCpu = new Float64Array(n);
    this.usedMem = new Float64Array(n);
    this.usedDisk = new Float64Array(n);
    this.vmCount = new Float64Array(n);
    nodes.forEach((node, i) => {
      this.at.set(node.name, i);
      this.usable[i] = node.ready && node.capacity ? 1 : 0;
      this.cordoned[i] = node.cordoned ? 1 : 0;
      this.groupOf[i] = indexOf(this.groups, node.group);
      this.zoneOf[i] = indexOf(this.zones, node.zone);
      const c = node.capacity ?? { cpus: 0, memoryBytes: 0, diskBytes: 0 };
      // The same arithmetic as `allocatable()`, so both reach the same floating-point answers.
      this.allocCpu[i] = Math.max(0, c.cpus - node.reserved.cpus) * node.ratios.cpu;
      this.allocMem[i] = Math.floor(Math.max(0, c.memoryBytes - node.reserved.memoryBytes) * node.ratios.memory);
      this.allocDisk[i] = Math.floor(Math.max(0, c.diskBytes - node.reserved.diskBytes) * node.ratios.disk);
      this.usedCpu[i] = node.allocated.cpus;
      this.usedMem[i] = node.allocated.memoryBytes;
      this.usedDisk[i] = node.allocated.diskBytes;
      this.vmCount[i] = node.vmCount;
    });
  }

  get(name: string): N | undefined {
    const i = this.at.get(name);
    return i === undefined ? undefined : this.nodes[i];
  }

  /** `schedule(nodes, req)`, less the node named `exclude` (one being drained or evacuated). */
  schedule(req: PlacementRequest, exclude?: string): Placement {
    const only = req.node !== undefined ? this.at.get(req.node) : undefined;
    const skip = exclude !== undefined ? (this.at.get(exclude) ?? -1) : -1;
    const group = req.group === undefined ? -1 : (this.groups.get(req.group) ?? -2);
    const zone = req.zone === undefined ? -1 : (this.zones.get(req.zone) ?? -2);
    const labels = req.labels ? Object.entries(req.labels) : [];
    const keyed = req.spreadKey !== undefined ? this.spreadOf(req.spreadKey) : undefined;
    const sign = (req.policy ?? 'spread') === 'spread' ? -1 : 1;
    const { cpus, memoryBytes, diskBytes } = req;

    let best = -1, bestZone = 0, bestNode = 0, bestFree = 0;
    const from = only ?? 0, to = only !== undefined ? only + 1 : req.node !== undefined ? 0 : this.nodes.length;
    for (let i = from; i < to; i++) {
      if (i === skip || this.usable[i] === 0 || (this.cordoned[i] === 1 && only === undefined)) continue;
      if ((group !== -1 && this.groupOf[i] !== group) || (zone !== -1 && this.zoneOf[i] !== zone)) continue;
      if (labels.length && !hasLabels(this.nodes[i]!, labels)) continue;
      if (this.allocCpu[i]! - this.usedCpu[i]! < cpus || this.allocMem[i]! - this.usedMem[i]! < memoryBytes || this.allocDisk[i]! - this.usedDisk[i]! < diskBytes) continue;
      const z = keyed ? keyed.perZone[this.zoneOf[i]!]! : 0;
      const k = keyed ? keyed.perNode[i]! : 0;
      const a = this.allocMem[i]!;
      const free = a === 0 ? 0 : (a - this.usedMem[i]! - memoryBytes) / a;
      if (best < 0 || compareRank(z, k, free, this.vmCount[i]!, bestZone, bestNode, bestFree, this.vmCount[best]!, sign) < 0) [best, bestZone, bestNode, bestFree] = [i, z, k, free];
    }
    if (best >= 0) return { ok: true, node: this.nodes[best]!.name, warnings: [] };
    // Nothing fits within the ratios (the rare path): the reference implementation decides
    // whether --force may place it anyway, and otherwise says why, node by node.
    return schedule(skip < 0 ? this.nodes : this.nodes.filter((_, i) => i !== skip), req);
  }

  /** A VM was placed on `name`: patch the columns and the node's snapshot. */
  place(name: string, res: { cpus: number; memoryBytes: number; diskBytes: number }, spreadKey: string | undefined): void {
    const i = this.at.get(name);
    if (i === undefined) return;
    this.usedCpu[i]! += res.cpus;
    this.usedMem[i]! += res.memoryBytes;
    this.usedDisk[i]! += res.diskBytes;
    this.vmCount[i]!++;
    const n = this.nodes[i] as unknown as Mutable;
    n.allocated.cpus += res.cpus;
    n.allocated.memoryBytes += res.memoryBytes;
    n.allocated.diskBytes += res.diskBytes;
    n.vmCount++;
    if (spreadKey !== undefined) {
      const s = this.spreadOf(spreadKey);
      s.perNode[i]!++;
      s.perZone[this.zoneOf[i]!]!++;
      n.spread[spreadKey] = (n.spread[spreadKey] ?? 0) + 1;
    }
  }

  private spreadOf(key: string): { perNode: Int32Array; perZone: Float64Array } {
    let s = this.spread.get(key);
    if (!s) {
      s = { perNode: new Int32Array(this.nodes.length), perZone: new Float64Array(this.zones.size) };
      for (let i = 0; i < this.nodes.length; i++) {
        const c = this.nodes[i]!.spread[key] ?? 0;
        s.perNode[i] = c;
        s.perZone[this.zoneOf[i]!]! += c;
      }
      this.spread.set(key, s);
    }
    return s;
  }
}

function indexOf(m: Map<string, number>, v: string): number {
  let i = m.get(v);
  if (i === undefined) m.set(v, (i = m.size));
  return i;
}
