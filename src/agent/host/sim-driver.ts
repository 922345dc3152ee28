/**
 * A driver with no guest: VMs are entries in a table, for demos and scale tests where
 * thousands of "VMs" must be cheap. The table is persisted to `<stateDir>/sim-vms.json` so a
 * restarted sim agent still has its VMs, like a real agent adopting running QEMUs. Each start
 * appends a line to a console log so log plumbing can be exercised end to end.
 *
 * No synchronous file I/O after construction, and the table is not fsync'ed: `butter sim` and
 * bench (f) run 1,000 agents in one process, where every blocking write stalls all their
 * heartbeats. Its files are the simulation's own: a host crash that loses the newest table
 * loses simulated VMs, which the agent then starts again, as after a real host's reboot; no
 * user's data is in them. Every write is awaited by the call that made it, so once `start`,
 * `stop` or `destroy` returns, a restarted driver (or the next process) reads the new table.
 */
import { mkdirSync, promises as fsp, renameSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { MemoryStates, ObservedVm, VmDriver, VmSpec, WarmStates } from './driver.ts';
import { WARM_READY_TIMEOUT_MS } from '../../core/warm.ts';
import type { VmSample, VmStats } from './vm-stats.ts';
import { guestDevice } from '../../core/vm-spec.ts';
import { formatSize } from '../../core/units.ts';
import { CoalescedWriter } from '../../lib/coalesced-writer.ts';
import { CorruptStateError, checkWith, readJsonState } from '../../lib/state-file.ts';
import { SimSnapshots } from './sim-snapshots.ts';
import { byCodeUnit } from '../../core/code-unit-order.ts';

export interface SimDriverOptions {
  stateDir: string;
  /** Keep the table in memory only (default: persisted). */
  persist?: boolean;
  log?: (msg: string) => void;
  /**
   * A start that fails (the reason, or undefined to start): how tests make a VM fail to boot,
   * as a broken image or a full disk would. Consulted at every start.
   */
  failStart?: (spec: VmSpec) => string | undefined;
  /** A warm image's template whose guest never says it is ready (a stock cloud image): the warm state fails as a real one would. */
  neverWarmReady?: (template: VmSpec) => boolean;
}

interface SimVm {
  running: boolean;
  spec: VmSpec;
  /** The restore generation its disk was last restored at. */
  restoreGen?: number;
  /** Suspended: its "memory state" is the file `vms/<id>/memory.state`. */
  suspended?: boolean;
}

// Checked only as far as the driver reads it; the spec is the agent's own, kept as it was.
const SavedTable = z.record(z.string(), z.object({ running: z.boolean(), spec: z.looseObject({ id: z.string() }), restoreGen: z.number().optional(), suspended: z.boolean().optional() }));

export class SimDriver implements VmDriver {
  readonly name = 'sim' as const;
  private readonly stateDir: string;
  private readonly file: string;
  private readonly vms = new Map<string, SimVm>();
  private readonly table: CoalescedWriter | undefined;
  /** When each VM was last started by this process: its made-up counters grow from then. */
  private readonly startedAt = new Map<string, number>();
  /**
   * Made-up counters that grow with the time a VM has run (from this process's start of it, or
   * first sight of it): a simulated node's `/metrics` has the real one's series and shapes.
   */
  readonly stats: VmStats = {
    sample: async (id: string, taps: readonly string[]): Promise<VmSample | undefined> => {
      const vm = this.vms.get(id);
      if (!vm?.running) return undefined;
      if (!this.startedAt.has(id)) this.startedAt.set(id, Date.now());
      const s = (Date.now() - this.startedAt.get(id)!) / 1000;
      const memory = vm.spec.memoryMiB * 1024 * 1024;
      return {
        cpuSeconds: 0.5 + s * 0.02 * vm.spec.cpus,
        rssBytes: Math.min(memory, 32 * 1024 * 1024 + Math.floor(s * 1024 * 1024)),
        diskReadBytes: 4 * 1024 * 1024 + Math.floor(s * 4096),
        diskWriteBytes: 1024 * 1024 + Math.floor(s * 1024),
        netRxBytes: taps.length * (1500 + Math.floor(s * 100)),
        netTxBytes: taps.length * (1000 + Math.floor(s * 50)),
      };
    },
  };

  readonly snapshots: SimSnapshots;

  /** Memory snapshots on files only: a small file stands for the saved RAM, so the agent's and control plane's paths run as with QEMU. */
  readonly memory: MemoryStates = {
    suspend: async (id) => {
      const vm = this.vms.get(id);
      if (!vm?.running) throw new Error(`vm ${id} is not running`);
      const body = `[sim] memory state of ${id}, saved ${new Date().toISOString()}\n`;
      await fsp.writeFile(this.memoryFile(id), body, { mode: 0o600 });
      vm.running = false;
      vm.suspended = true;
      await fsp.appendFile(this.consoleLogPath(id), `[sim] ${new Date().toISOString()} suspended\n`);
      await this.save();
      return { ms: 0, sizeBytes: Buffer.byteLength(body) };
    },
    resume: async (spec) => {
      const vm = this.vms.get(spec.id);
      if (!vm?.suspended) throw new Error(`vm ${spec.id} has no saved memory state`);
      await fsp.access(this.memoryFile(spec.id)); // throws when the file is gone
      vm.running = true;
      vm.suspended = false;
      vm.spec = spec;
      this.startedAt.set(spec.id, Date.now());
      await fsp.rm(this.memoryFile(spec.id), { force: true });
      await fsp.appendFile(this.consoleLogPath(spec.id), `[sim] ${new Date().toISOString()} resumed\n`);
      await this.save();
      return { ms: 0 };
    },
    discard: async (id) => {
      const vm = this.vms.get(id);
      if (vm) vm.suspended = false;
      await fsp.rm(this.memoryFile(id), { force: true });
      await this.save();
    },
    launchFrom: async (spec, from) => {
      await this.start(spec, from);
      return { ms: 0 };
    },
  };

  /** Warm states as small files in `warm/<id>/` (a template "boots" at once); warm starts are starts. */
  readonly warm: WarmStates = {
    has: (id) => this.warmIds.has(id),
    list: () => [...this.warmIds].sort(),
    make: async (t) => {
      const dir = `${this.stateDir}/warm/${t.id}`;
      if (this.opts.neverWarmReady?.(t)) throw new Error(`guest never signalled warm-ready within ${WARM_READY_TIMEOUT_MS / 1000} s`);
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      const body = `[sim] warm state of ${t.name}: ${t.cpus} vCPU, ${t.memoryMiB} MiB\n`;
      await fsp.writeFile(`${dir}/memory.state`, body, { mode: 0o600 });
      this.warmIds.add(t.id);
      return { ms: 0, sizeBytes: Buffer.byteLength(body) };
    },
    start: async (spec, id, address) => {
      if (!this.warmIds.has(id)) throw new Error(`no warm state ${id} here`);
      await this.start(spec);
      // The address its identity would carry, said where a test can see it.
      const at = address ? ` at ${address.ip}/${address.prefix} via ${address.gateway}, mtu ${address.mtu}, domain ${address.domain}` : '';
      await fsp.appendFile(this.consoleLogPath(spec.id), `[sim] started warm from ${id}${at}\n`);
      return { ms: 0 };
    },
    remove: async (id) => {
      this.warmIds.delete(id);
      await fsp.rm(`${this.stateDir}/warm/${id}`, { recursive: true, force: true });
    },
  };
  private readonly warmIds = new Set<string>();

  /** The file that stands for a suspended VM's saved RAM. */
  memoryFile(id: string): string {
    return resolve(this.consoleLogPath(id), '..', 'memory.state');
  }

  constructor(private readonly opts: SimDriverOptions) {
    this.stateDir = resolve(opts.stateDir);
    this.snapshots = new SimSnapshots(this.stateDir, (id) => this.vms.has(id), (id) => this.vms.get(id)?.running === true);
    this.file = `${this.stateDir}/sim-vms.json`;
    if (opts.persist !== false) {
      this.load();
      mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
      // Concurrent starts share writes; each write is of the table as it is when it starts.
      this.table = new CoalescedWriter(this.file, () => JSON.stringify(Object.fromEntries(this.vms), null, 1), 0o600, { fsync: false });
    }
  }

  /** A simulated serial line echoes what is typed, like a terminal would. */
  async writeConsole(id: string, data: Buffer): Promise<void> {
    if (!this.vms.get(id)?.running) throw new Error(`vm ${id} is not running`);
    await fsp.appendFile(this.consoleLogPath(id), data);
  }

  consoleLogPath(id: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(id)) throw new Error(`invalid VM id: ${JSON.stringify(id)}`);
    return `${this.stateDir}/vms/${id}/console.log`;
  }

  /** `from`: launched from the memory state of that snapshot (a restore of a memory snapshot, a warm start). */
  async start(spec: VmSpec, from?: { vm: string; snapshot: string }): Promise<{ resumed?: boolean }> {
    const log = this.consoleLogPath(spec.id);
    const had = this.vms.get(spec.id);
    if (had?.running) return {};
    if (had?.suspended) {
      had.suspended = false;
      await fsp.rm(this.memoryFile(spec.id), { force: true });
    }
    const failure = this.opts.failStart?.(spec);
    if (failure !== undefined) throw new Error(failure);
    // The disk is made at the first start (its initial snapshot with it), restored once per generation.
    if (!had && (spec.initialSnapshot !== undefined || spec.base !== undefined || spec.baseFile !== undefined)) await this.snapshots.create(spec.id, spec.initialSnapshot, spec.base, spec.baseFile);
    let restoreGen = had?.restoreGen;
    if (spec.restore && (restoreGen ?? 0) < spec.restore.gen) {
      if (spec.restore.memory) from ??= { vm: spec.id, snapshot: spec.restore.snapshot };
      await this.snapshots.restore(spec.id, spec.restore.snapshot);
      restoreGen = spec.restore.gen;
    }
    if (from) {
      try {
        await fsp.access(this.snapshots.memoryFile(from.vm, from.snapshot));
      } catch {
        throw new Error(`snapshot ${from.snapshot} of vm ${from.vm} has no memory state on this host`);
      }
    }
    this.vms.set(spec.id, { running: true, spec, ...(restoreGen !== undefined ? { restoreGen } : {}) });
    this.startedAt.set(spec.id, Date.now());
    const data = [...(spec.dataDisks ?? [])].sort((a, b) => a.index - b.index);
    const disks = data.length ? `data disks ${data.map((d) => `${guestDevice(d.index)} ${formatSize(d.sizeBytes)}`).join(', ')}, ` : '';
    await fsp.mkdir(resolve(log, '..'), { recursive: true, mode: 0o700 });
    await fsp.appendFile(
      log,
      from
        ? `[sim] ${new Date().toISOString()} ${spec.name} (${spec.id}) resumed from the memory state of snapshot ${from.snapshot} of ${from.vm}: no boot\n`
        : `[sim] ${new Date().toISOString()} ${spec.name} (${spec.id}) booted: ${spec.cpus} vCPU, ${spec.memoryMiB} MiB, ${disks}no guest\n`,
      { mode: 0o600 },
    );
    await this.save();
    this.opts.log?.(`sim started ${spec.id}`);
    return from ? { resumed: true } : {};
  }

  /** The data disks the VM was last started with (kept in the table, as a real host keeps the files). */
  dataDisks(id: string): { index: number; sizeBytes: number }[] {
    return this.vms.get(id)?.spec.dataDisks ?? [];
  }

  async stop(id: string, _timeoutMs: number): Promise<void> {
    const vm = this.vms.get(id);
    if (!vm?.running) return;
    vm.running = false;
    await fsp.appendFile(this.consoleLogPath(id), `[sim] ${new Date().toISOString()} powered off\n`);
    await this.save();
  }

  async destroy(id: string): Promise<void> {
    const log = this.consoleLogPath(id);
    this.vms.delete(id);
    await fsp.rm(resolve(log, '..'), { recursive: true, force: true });
    await this.save();
  }

  async list(): Promise<ObservedVm[]> {
    return [...this.vms.entries()].sort(([a], [b]) => byCodeUnit(a, b)).map(([id, vm]) => ({ id, running: vm.running, ...(vm.suspended && !vm.running ? { suspended: true } : {}) }));
  }

  /** A torn or corrupt table is set aside: the agent then starts the VMs that should run. */
  private load(): void {
    let saved: Record<string, SimVm> | undefined;
    try {
      saved = readJsonState(this.file, checkWith(SavedTable)) as Record<string, SimVm> | undefined;
    } catch (e) {
      if (!(e instanceof CorruptStateError)) throw e;
      renameSync(this.file, `${this.file}.corrupt`);
      this.opts.log?.(`${e.message}: moved to ${this.file}.corrupt, starting with no VMs`);
    }
    for (const [id, vm] of Object.entries(saved ?? {})) this.vms.set(id, vm);
  }

  /** Atomic (temp file, rename), so a crash mid-write never leaves a torn table; not fsync'ed (above). */
  private async save(): Promise<void> {
    await this.table?.save();
  }
}
