/**
 * The control plane's Prometheus metrics (`GET /metrics`): names in base units with
 * `_total`, `_seconds` and `_bytes`, as node_exporter and Incus name theirs, prefix `butter_`.
 *
 * Two kinds. Counters and histograms of what happens (API requests, scheduler decisions) are
 * kept in memory and counted where it happens (http.ts, vms.ts). Everything that is state
 * (nodes' capacity and allocation, VMs by state, the store's revision) is read from the store
 * only when scraped, in the gauges' `collect()`, once per scrape: no request pays for it and
 * nothing is written for it.
 *
 * Labels are bounded: a route's id (never the raw URL, which carries names), a method, a status;
 * a node's name (nodes are few and named by an admin); a refusal's kind from REFUSAL_KINDS.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processMetrics } from '../lib/process-metrics.ts';
import type { Node } from '../api/schemas/node.ts';
import { NodeState } from '../api/schemas/node.ts';
import { VmState } from '../api/schemas/vm.ts';
import { REFUSAL_KINDS, type RefusalKind } from '../core/scheduler.ts';

/** What the metrics read from the store at a scrape. */
export interface MetricsSource {
  nodes(): Node[];
  /** VMs per state (states with none may be missing). */
  vmStates(): Record<string, number>;
  revision(): number;
}

/** What vms.ts tells of its placements. */
export interface SchedulerObserver {
  placed(): void;
  refused(kinds: readonly RefusalKind[]): void;
  /** A plan found stale at commit (another write changed the node) and made again. */
  replanned(): void;
}

/** What http.ts tells of each answered request. */
export interface RequestObserver {
  answered(route: string, method: string, status: number, seconds: number): void;
}

interface Snapshot {
  nodes: Node[];
  vms: Record<string, number>;
  revision: number;
}

const RESOURCES = [
  ['cpus', 'cpus', 'CPUs'],
  ['memory_bytes', 'memoryBytes', 'memory in bytes'],
  ['disk_bytes', 'diskBytes', 'disk in bytes'],
] as const;

export class ControlPlaneMetrics implements SchedulerObserver, RequestObserver {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly latency: Histogram<'route' | 'method'>;
  private readonly placements: Counter;
  private readonly refusals: Counter<'reason'>;
  private readonly replans: Counter;
  /** Read once per scrape, by whichever gauge collects first. */
  private snap: Snapshot | undefined;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    processMetrics(this.registry);
    this.requests = new Counter({ name: 'butter_api_requests_total', help: 'API requests answered, by route id, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.latency = new Histogram({
      name: 'butter_api_request_duration_seconds',
      help: 'Time from a request to its answer, by route id and method (long-polls wait up to their `wait`)',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.placements = new Counter({ name: 'butter_scheduler_placements_total', help: 'VMs the scheduler placed on a node (creates, drains, evacuations)', registers });
    this.refusals = new Counter({ name: 'butter_scheduler_refusals_total', help: 'Placements refused because no node fits, by reason; a refusal counts once under each reason some node gave', labelNames: ['reason'], registers });
    // Every reason from the start, at 0: a rate over a series that appears only at its first
    // refusal misses that refusal.
    for (const reason of REFUSAL_KINDS) this.refusals.inc({ reason }, 0);
    this.replans = new Counter({ name: 'butter_scheduler_replans_total', help: 'Placements planned again because the chosen node changed before the commit', registers });

    const snap = () => (this.snap ??= { nodes: this.source.nodes(), vms: this.source.vmStates(), revision: this.source.revision() });
    const nodeGauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, n: Node) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const n of snap().nodes) fill(this, n);
        },
      });
    for (const [unit, key, words] of RESOURCES) {
      // A node that never reported has no capacity: no sample, rather than a false zero.
      nodeGauge(`butter_node_capacity_${unit}`, `The node's ${words}, as its agent reports them`, ['node'], (g, n) => {
        if (n.capacity) g.set({ node: n.name }, n.capacity[key]);
      });
      nodeGauge(`butter_node_reserved_${unit}`, `The node's ${words} kept for the host itself`, ['node'], (g, n) => g.set({ node: n.name }, n.reserved[key]));
      nodeGauge(`butter_node_allocatable_${unit}`, `The node's ${words} the scheduler may hand out: (capacity - reserved) x the group's overcommit ratio`, ['node'], (g, n) => g.set({ node: n.name }, n.allocatable[key]));
      nodeGauge(`butter_node_allocated_${unit}`, `The node's ${words} held by its VMs`, ['node'], (g, n) => g.set({ node: n.name }, n.allocated[key]));
    }
    nodeGauge('butter_node_state', 'The node\'s state: 1 for the state it is in, 0 for the others', ['node', 'state'], (g, n) => {
      for (const s of NodeState.options) g.set({ node: n.name, state: s }, n.state === s ? 1 : 0);
    });
    nodeGauge('butter_node_cordoned', '1 when no new VM is placed on the node', ['node'], (g, n) => g.set({ node: n.name }, n.cordoned ? 1 : 0));
    nodeGauge('butter_node_vms', 'VMs on the node', ['node'], (g, n) => g.set({ node: n.name }, n.vmCount));
    new Gauge({
      name: 'butter_vms',
      help: 'VMs by state',
      labelNames: ['state'],
      registers,
      collect() {
        const vms = snap().vms;
        for (const s of VmState.options) this.set({ state: s }, vms[s] ?? 0);
      },
    });
    new Gauge({
      name: 'butter_store_revision',
      help: "The store's revision: it grows by one with every committed write",
      registers,
      collect() {
        this.set(snap().revision);
      },
    });
  }

  /** The exposition text, with the state read from the store once. */
  async scrape(): Promise<string> {
    this.snap = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.snap = undefined;
    }
  }

  answered(route: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ route, method, status: String(status) });
    this.latency.observe({ route, method }, seconds);
  }

  placed(): void {
    this.placements.inc();
  }

  refused(kinds: readonly RefusalKind[]): void {
    for (const reason of kinds) this.refusals.inc({ reason });
  }

  replanned(): void {
    this.replans.inc();
  }
}
