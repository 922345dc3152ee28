/**
 * The agent's Prometheus metrics (its `/metrics`, served by metrics-server.ts): per VM CPU
 * seconds, memory, disk and network bytes (from the driver's `stats`: procfs, QMP and the taps'
 * counters on a QEMU node, made-up numbers on a simulated one), labelled by the VM's name and
 * id; the reconcile's duration, failed heartbeats, the image cache; the process's own.
 *
 * The VMs' counters are read only when scraped (each gauge's `collect()`, one sampling per
 * scrape shared by all of them), never on the agent's own loop.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processMetrics } from '../lib/process-metrics.ts';
import type { VmSample, VmStats } from './host/vm-stats.ts';
import { byCodeUnit } from '../core/code-unit-order.ts';

/** A VM the node should have, as the desired state names it. */
export interface MetricsVm {
  id: string;
  name: string;
  memoryBytes: number;
  cpus: number;
  taps: readonly string[];
}

export interface AgentMetricsSource {
  node: string;
  /** The VMs of the last desired state (not being deleted). */
  vms(): readonly MetricsVm[];
  stats: VmStats;
  images(): Promise<{ count: number; bytes: number }>;
}

type Sampled = { vm: MetricsVm; sample: VmSample }[];
type Labels = 'vm' | 'id';

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly reconciles: Histogram<'result'>;
  private readonly heartbeatFailures: Counter;
  private readonly sampleErrors: Counter;
  private readonly wakeDurations: Histogram<'trigger'>;
  private readonly wakes: Counter<'trigger'>;
  private readonly warmStarts: Counter;
  private readonly coldStarts: Counter<'reason'>;
  private sampled: Promise<Sampled> | undefined;

  constructor(private readonly source: AgentMetricsSource) {
    const registers = [this.registry];
    processMetrics(this.registry);
    this.reconciles = new Histogram({
      name: 'butter_agent_reconcile_duration_seconds',
      help: 'Time one reconcile took (mesh, networks, VMs), by result',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.heartbeatFailures = new Counter({ name: 'butter_agent_heartbeat_failures_total', help: 'Reports (heartbeats) to the control plane that failed', registers });
    // Scale to zero (issue 16): from the frame that woke a VM to its guest running again.
    this.wakeDurations = new Histogram({
      name: 'butter_vm_wake_duration_seconds',
      help: 'Time from the connection (or datagram) that woke an idle-suspended VM to the VM running again, by trigger',
      labelNames: ['trigger'],
      buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
      registers,
    });
    this.wakes = new Counter({ name: 'butter_vm_wakes_total', help: 'Idle-suspended VMs woken by traffic, by trigger', labelNames: ['trigger'], registers });
    this.warmStarts = new Counter({ name: 'butter_vm_warm_starts_total', help: "VM starts restored from a warm image's saved state (issue 16)", registers });
    this.coldStarts = new Counter({ name: 'butter_vm_cold_starts_total', help: 'VM starts that booted the guest, by why not warm: not_warm (a first start with no warm state to use), fallback (a warm start failed or its state was missing), restart (a later start)', labelNames: ['reason'], registers });
    for (const reason of ['not_warm', 'fallback', 'restart']) this.coldStarts.inc({ reason }, 0);
    const sampledFirst = () => this.sampled ??= this.sample();
    this.sampleErrors = new Counter({
      name: 'butter_agent_vm_stats_errors_total',
      help: "Scrapes in which a running VM's counters could not be read (its series are missing from that scrape)",
      registers,
      // This scrape's sampling counts its own failure before the counter is written out.
      async collect() {
        await sampledFirst();
      },
    });
    new Gauge({ name: 'butter_agent_info', help: 'The node this agent runs, as a label (always 1)', labelNames: ['node'], registers }).set({ node: source.node }, 1);
    new Gauge({
      name: 'butter_agent_images_cached',
      help: 'Images (blobs) held in the node\'s image cache',
      registers,
      async collect() {
        this.set((await source.images()).count);
      },
    });
    new Gauge({
      name: 'butter_agent_image_cache_bytes',
      help: "Bytes of the node's image cache",
      registers,
      async collect() {
        this.set((await source.images()).bytes);
      },
    });

    const sampled = sampledFirst;
    const labelNames: Labels[] = ['vm', 'id'];
    const perVm = (kind: 'gauge' | 'counter', name: string, help: string, value: (s: VmSample, vm: MetricsVm) => number) => {
      const Metric = kind === 'gauge' ? Gauge : Counter;
      new Metric({
        name,
        help,
        labelNames,
        registers,
        async collect(this: Gauge<Labels> | Counter<Labels>) {
          this.reset();
          for (const { vm, sample } of await sampled()) {
            const labels = { vm: vm.name, id: vm.id };
            if (this instanceof Gauge) this.set(labels, value(sample, vm));
            else this.inc(labels, value(sample, vm));
          }
        },
      } as never);
    };
    perVm('counter', 'butter_vm_cpu_seconds_total', "CPU time of the VM's hypervisor process (user + system)", (s) => s.cpuSeconds);
    perVm('gauge', 'butter_vm_memory_rss_bytes', "Resident memory of the VM's hypervisor process", (s) => s.rssBytes);
    perVm('gauge', 'butter_vm_memory_bytes', 'Memory the VM was given', (_s, vm) => vm.memoryBytes);
    perVm('gauge', 'butter_vm_cpus', 'vCPUs the VM was given', (_s, vm) => vm.cpus);
    perVm('counter', 'butter_vm_disk_read_bytes_total', 'Bytes the guest read from its disks', (s) => s.diskReadBytes);
    perVm('counter', 'butter_vm_disk_written_bytes_total', 'Bytes the guest wrote to its disks', (s) => s.diskWriteBytes);
    perVm('counter', 'butter_vm_network_receive_bytes_total', "Bytes the guest received on its NICs (sent into its taps)", (s) => s.netRxBytes);
    perVm('counter', 'butter_vm_network_transmit_bytes_total', 'Bytes the guest sent on its NICs (received from its taps)', (s) => s.netTxBytes);
  }

  /** The exposition text; the VMs are sampled once for it. */
  async scrape(): Promise<string> {
    this.sampled = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.sampled = undefined;
    }
  }

  /** Times one reconcile. */
  async timeReconcile<T>(run: () => Promise<T>): Promise<T> {
    const end = this.reconciles.startTimer();
    try {
      const out = await run();
      end({ result: 'ok' });
      return out;
    } catch (e) {
      end({ result: 'error' });
      throw e;
    }
  }

  heartbeatFailed(): void {
    this.heartbeatFailures.inc();
  }

  /** One wake by the activator (scale to zero). */
  woke(trigger: 'tcp' | 'udp', seconds: number): void {
    this.wakes.inc({ trigger });
    this.wakeDurations.observe({ trigger }, seconds);
  }

  warmStarted(): void {
    this.warmStarts.inc();
  }

  /** `reason`: one of a fixed list (never free text as a label). */
  coldStarted(reason: 'not_warm' | 'fallback' | 'restart'): void {
    this.coldStarts.inc({ reason });
  }

  /** Every VM that runs, with its counters; one that cannot be read is left out (and counted). */
  private async sample(): Promise<Sampled> {
    const out: Sampled = [];
    let failed = false;
    await Promise.all(
      this.source.vms().map(async (vm) => {
        try {
          const sample = await this.source.stats.sample(vm.id, vm.taps);
          if (sample) out.push({ vm, sample });
        } catch {
          failed = true;
        }
      }),
    );
    if (failed) this.sampleErrors.inc();
    out.sort((a, b) => byCodeUnit(a.vm.name, b.vm.name));
    return out;
  }
}
