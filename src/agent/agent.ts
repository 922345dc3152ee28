/**
 * The node agent: watch desired state (long-poll keyed by revision) → plan → apply through
 * the host adapters → report observed state. Heartbeats double as reports.
 */
import type { NodeDesired, DesiredNetwork, DesiredVm } from '../api/schemas/desired.ts';
import type { ProbeBatch } from '../api/schemas/verify.ts';
import type { MeshReport, NetworkReport, ObservedVmReport } from '../api/schemas/node.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { plan, type Op } from '../core/reconcile.ts';
import { SnapshotSync } from './snapshot-sync.ts';
import { ExportSync } from './export-sync.ts';
import { WarmSync } from './warm-sync.ts';
import { AGENT_BACKOFF, backoffDelay } from '../core/backoff.ts';
import { ControlPlaneLink } from '../core/connection-state.ts';
import type { Client } from '../sdk/client.ts';
import { callFailure, describeFailure } from '../sdk/failure.ts';
import { AgentState } from './agent-state.ts';
import { hostCapacity, type HostCapacity } from './capacity.ts';
import { ConsoleShipper } from './console-shipper.ts';
import { punchConsole } from './host/console-trim.ts';
import type { ObservedVm, VmDriver } from './host/driver.ts';
import { SystemExec, type Exec } from './host/exec.ts';
import type { MeshHost } from './host/mesh.ts';
import type { MeshClient } from '../core/wireguard-config.ts';
import { NetworkApplyError, VPN_TABLE_BASE, type LocalNetwork, type LocalVpn, type NetworkHost } from './host/network.ts';
import { ImageCache } from './image-cache.ts';
import { createMetadataServer, type MetadataServer } from './metadata/server.ts';
import type { VmMetadata } from './metadata/types.ts';
import { vmBySource } from './metadata/lookup.ts';
import { blobsOf, bridgeName, tapName, vmSpec, vpnDevices, vxlanName, warmTemplateSpec } from '../core/vm-spec.ts';
import { gatewayDevices } from '../core/gateway-ns.ts';
import { networkDomain } from '../core/dns-name.ts';
import { splitCidr } from '../core/ipv4.ts';
import type { WarmAddress } from '../core/warm.ts';
import { exitReason } from '../core/restart-policy.ts';
import { AgentMetrics } from './metrics.ts';
import { join } from 'node:path';
import { Activators, type WakeCall } from './host/activator.ts';
import { procTapBytes, type TapBytes } from './host/tap-traffic.ts';
import { idleReason, idleSample, parseIdleStop, type IdleWatch } from '../core/scale-to-zero/idle-plan.ts';

export interface AgentOptions {
  client: Client;
  node: string;
  stateDir: string;
  driver: VmDriver;
  /** Absent for the simulated driver: no taps, bridges or metadata server. */
  network?: NetworkHost;
  accel: { accel: 'kvm' | 'tcg'; reason?: string };
  /** Keep guests off the outside world: no NAT, no DNS forwarding (tests, air-gapped hosts). */
  noEgress?: boolean;
  /** The metadata server's port, on each network's uplink address (guests' port 80 is forwarded there). */
  metadataPort?: number;
  /** The node's end of the WireGuard mesh; absent for simulated nodes. */
  mesh?: {
    host: MeshHost;
    publicKey: string;
    listenPort: number;
    endpoint?: string;
    underlayMtu?: number;
    /** Its address on its default route: VPN peers' endpoint when the control plane sees this node only on loopback. */
    defaultAddress?: string;
    /** Its interface: VPN peers' traffic arrives there. */
    iface?: string;
  };
  log?: (msg: string) => void;
  heartbeatMs?: number;
  stopTimeoutMs?: number;
  /** Report this instead of the host's real size (simulated nodes). */
  capacity?: HostCapacity;
  /** How often console output is shipped; short, because `vm console` is interactive through it. */
  consoleShipMs?: number;
  /** Runs `qemu-img info` on disk blobs before use (image-cache.ts) and trims console logs; the real one by default. */
  exec?: Exec;
  /** Console output kept per VM on the node once shipped (console-shipper.ts); 1 MiB by default. */
  consoleKeepBytes?: number;
  /** Cached images no VM on the node uses are deleted after `unusedGraceMs` (1 h), or at once below `minFreePercent` (10) free. */
  imageCache?: { unusedGraceMs?: number; minFreePercent?: number };
  /** What a user can do when the control plane refuses this node's token (logged once with the refusal). */
  rejectedHint?: string;
  /**
   * Sends `path verify`'s probes from a probe port on `bridge` (agent/host/path-probe.ts) and
   * says which every table admitted. Absent (simulated nodes): batches are answered with an error.
   */
  probe?: (bridge: string, probes: ProbeBatch['probes']) => Promise<Record<string, boolean>>;
  /** Keep Prometheus metrics (`agent.metrics`, served by metrics-server.ts); off for `butter sim`'s many agents. */
  metrics?: boolean;
  /** Told the node's mesh address after each mesh apply that succeeded (its metrics listener binds there). */
  onMeshAddress?: (address: string) => void;
  /** Scale to zero: the bytes a VM's taps carried (both ways); `/proc/net/dev` by default (tests give their own). */
  tapBytes?: TapBytes;
}

/** A wake by the activator, as the report carries it (ObservedVmReport.wake). */
type WakeReport = NonNullable<ObservedVmReport['wake']>;

/** How often VMs with `idleStop` have their taps' counters read (idle-plan.ts decides). */
const IDLE_SAMPLE_MS = 1000;

/** A call failed because the link to the control plane is down: already logged (once, by the link), so callers stay quiet. */
class LinkDown extends Error {}

export const WATCH_WAIT_S = 10;

export class Agent {
  private readonly state: AgentState;
  private readonly images: ImageCache;
  private readonly shipper: ConsoleShipper;
  private readonly log: (msg: string) => void;
  private desired: NodeDesired | undefined;
  private readonly working = new Map<string, 'creating' | 'stopping' | 'suspending'>();
  private readonly errors = new Map<string, string>();
  /** Disk snapshots (issue 16), when the driver keeps them. */
  private readonly snapshots: SnapshotSync | undefined;
  /** Snapshots flattened and uploaded for an image or a clone on another node (issue 16). */
  private readonly exports: ExportSync;
  /** Warm images (issue 16), when the driver keeps warm states. */
  private readonly warm: WarmSync | undefined;
  /** VMs whose first start was to be warm and was not: why (reported until they are gone). */
  private readonly coldFallbacks = new Map<string, string>();
  /** Each local network as the last apply left it: its error, or undefined when built. Unset before the first apply. */
  private networkStates: Map<string, string | undefined> | undefined;
  /** One metadata server per local network, on the host's end of its uplink: the address it is reached on tells the network. */
  private readonly metadata = new Map<string, { address: string; server: MetadataServer }>();
  /** The VPN peers on the mesh interface: added only after the network apply that fences them succeeded. */
  private meshClients: MeshClient[] | undefined;
  private running = false;
  /** Set by stop(): no report goes out after it (one may be sent before start(), by hand). */
  private stopped = false;
  private abort = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  private loopDone: Promise<void> | undefined;
  private reporting: Promise<void> = Promise.resolve();
  /** The link to the control plane: its state changes are logged, one line each; attempts are not. */
  private readonly link: ControlPlaneLink;
  /** Set with `opts.metrics`. */
  readonly metrics: AgentMetrics | undefined;
  /** Scale to zero: holds the taps of VMs asleep for idleness; only where the agent has a network (not simulated nodes). */
  private readonly activators: Activators | undefined;
  private readonly tapBytes: TapBytes;
  /** Per VM with `idleStop` that runs: its taps' counters at the last sample, and since when they stood still. */
  private readonly idleWatch = new Map<string, IdleWatch>();
  private idleBusy = false;
  /** The last wake of each VM by its activator, reported until it sleeps again. */
  private readonly wakes = new Map<string, WakeReport>();
  /** Reconciles, idle suspends and wakes run one at a time: each reads and changes the same VMs. */
  private serial: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.log ?? (() => {});
    this.link = new ControlPlaneLink(opts.client.url, opts.rejectedHint, AGENT_BACKOFF.maxMs / 1000);
    this.state = new AgentState(opts.stateDir, undefined, this.log);
    this.snapshots = opts.driver.snapshots ? new SnapshotSync(opts.driver.snapshots, this.log) : undefined;
    this.exports = new ExportSync(opts.stateDir, opts.node, opts.client, opts.driver.snapshots, this.log);
    this.warm = opts.driver.warm
      ? new WarmSync(
          opts.driver.warm,
          async (w) => {
            for (const b of blobsOf(w)) await this.images.ensure(b.sha256, b.format);
            return warmTemplateSpec(w, (sha) => this.images.path(sha));
          },
          () => void this.report().catch((e) => this.log(`report failed: ${describeFailure(e)}`)),
          this.log,
        )
      : undefined;
    // Blobs a hypervisor will open are inspected first; the simulated driver opens none.
    this.images = new ImageCache(opts.stateDir, opts.client, opts.driver.name === 'sim' ? undefined : (opts.exec ?? new SystemExec()));
    // Shipped console output is freed on the node past its cap, by punching a hole (console-trim.ts).
    this.shipper = new ConsoleShipper(opts.client, opts.node, (id) => opts.driver.consoleLogPath(id), {
      trim: punchConsole(opts.exec ?? new SystemExec()),
      log: this.log,
      ...(opts.consoleKeepBytes !== undefined ? { keepBytes: opts.consoleKeepBytes } : {}),
    });
    this.tapBytes = opts.tapBytes ?? procTapBytes();
    this.activators = opts.network ? new Activators({ exec: opts.exec ?? new SystemExec(), dir: join(opts.stateDir, 'activator'), log: this.log }) : undefined;
    this.metrics = opts.metrics
      ? new AgentMetrics({
          node: opts.node,
          // The VMs the node should have: names and sizes come from the desired state.
          vms: () =>
            (this.desired?.vms ?? []).filter((v) => v.power !== 'deleted').map((v) => ({ id: v.id, name: v.name, memoryBytes: v.memoryBytes, cpus: v.cpus, taps: v.nics.map((_, i) => tapName(v.id, i)) })),
          stats: opts.driver.stats,
          images: () => this.images.cached(),
        })
      : undefined;
  }

  /**
   * Starts even when the control plane cannot be reached (or refuses us): the watch loop keeps
   * trying with backoff, and VMs already running are left alone meanwhile.
   */
  async start(): Promise<void> {
    this.running = true;
    // socats an earlier agent left (a crash): ended; the first reconcile holds the sleeping VMs' taps again.
    await this.activators?.sweep().catch((e) => this.log(`activator sweep: ${String(e)}`));
    await this.report().catch((e) => this.log(`report failed: ${describeFailure(e)}`));
    // While the link is down the watch loop alone probes it (with backoff); heartbeats and
    // console uploads wait for it instead of failing every few seconds.
    this.timers.push(setInterval(() => void (this.linkUp() ? this.report().catch((e) => this.log(`report failed: ${describeFailure(e)}`)) : undefined), this.opts.heartbeatMs ?? 5000));
    // Console output is shipped often: `vm console` is interactive through it.
    this.timers.push(setInterval(() => void (this.linkUp() ? this.shipConsoles() : undefined), this.opts.consoleShipMs ?? 250));
    // Scale to zero: VMs with `idleStop` are watched for traffic, whatever the link's state.
    this.timers.push(setInterval(() => void this.idleTick(), IDLE_SAMPLE_MS));
    this.loopDone = this.loop();
  }

  private linkUp(): boolean {
    return this.link.state === 'connected';
  }

  /** One call to the control plane, its outcome noted on the link; a link failure becomes LinkDown (logged once per change). */
  private async viaLink<T>(call: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await call();
    } catch (e) {
      const kind = callFailure(e);
      if (kind === 'answered' || !this.running) {
        if (kind === 'answered') this.noteLine(this.link.succeeded());
        throw e;
      }
      this.noteLine(this.link.failed(kind, describeFailure(e)));
      throw new LinkDown(describeFailure(e), { cause: e });
    }
    this.noteLine(this.link.succeeded());
    return result;
  }

  private noteLine(line: string | undefined): void {
    if (line) this.log(line);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    await this.loopDone;
    // A heartbeat under way arrives (or fails) before stop() resolves, and report() sends no
    // more: whatever the control plane hears of this node afterwards is not from this agent.
    await this.reporting.catch(() => {});
    for (const m of this.metadata.values()) await m.server.close();
    this.metadata.clear();
    // After the last reconcile or wake: the taps are let go (a restarted agent holds them again).
    await this.serial.catch(() => {});
    await this.activators?.releaseAll().catch((e) => this.log(`activators: ${String(e)}`));
    // A heartbeat or metadata fetch may have changed it last: on disk before the next agent reads it.
    await this.state.flush();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const desired = await this.watch();
      if (!desired) continue;
      try {
        // The same watch carries console input; it is typed before any (slow) reconcile.
        if (desired.consoleInput) await this.typeConsoleInput(desired.consoleInput);
        // Probes run beside the loop, one batch at a time: a reconcile need not wait for them.
        if (desired.probes) for (const b of desired.probes) this.probing = this.probing.then(() => this.runProbeBatch(b));
        if ('unchanged' in desired) {
          // A timeout, nothing new upstream: still re-check the host against what we have
          // (drift), and report only if that changed something (heartbeats report anyway).
          // An answer woken by console input or probes skips this: no drift check per keystroke.
          if (!desired.consoleInput && !desired.probes && this.desired && (await this.reconcile(this.desired))) await this.report();
          continue;
        }
        const { consoleInput: _typed, probes: _probes, ...state } = desired;
        this.desired = state;
        await this.reconcile(state);
        await this.report();
      } catch (e) {
        if (!this.running) return;
        this.log(`reconcile failed: ${describeFailure(e)}`);
        await sleep(1000, undefined, { signal: this.abort.signal }).catch(() => {});
      }
    }
  }

  private watchFailures = 0;

  /** One long-poll of the desired state; undefined when it failed, after the backoff's wait. */
  private async watch() {
    try {
      const since = this.desired?.revision;
      const desired = await this.viaLink(() =>
        this.opts.client.call('nodeDesired', { params: { name: this.opts.node }, query: since === undefined ? {} : { since, wait: WATCH_WAIT_S } }, this.abort.signal),
      );
      this.watchFailures = 0;
      return desired;
    } catch (e) {
      if (!this.running) return undefined;
      // Down: the link logged it once. An answer (a 4xx) is news each time, but rare.
      if (!(e instanceof LinkDown)) this.log(`watch failed: ${describeFailure(e)}`);
      // Never give up; wait longer after each failure, up to the cap (stop() cuts the wait short).
      await sleep(backoffDelay(++this.watchFailures), undefined, { signal: this.abort.signal }).catch(() => {});
      return undefined;
    }
  }

  /** Keystrokes from `butter vm console`, typed into the VMs' serial consoles. */
  private probing: Promise<void> = Promise.resolve();

  /** One batch of `path verify` probes, and its answer; never throws (a lost answer is the control plane's timeout). */
  private async runProbeBatch(b: ProbeBatch): Promise<void> {
    let answer: { admitted: Record<string, boolean> } | { error: string };
    try {
      if (!this.opts.probe) throw new Error('this node cannot send probes (simulated driver: no bridges)');
      answer = { admitted: await this.opts.probe(bridgeName(b.network), b.probes) };
    } catch (e) {
      answer = { error: describeFailure(e).slice(0, 4000) };
      this.log(`path verify probes for ${b.network}: ${answer.error}`);
    }
    await this.opts.client
      .call('nodeProbeResults', { params: { name: this.opts.node }, body: { job: b.job, network: b.network, ...answer } }, this.abort.signal)
      .catch((e) => this.log(`path verify results for ${b.network} not delivered: ${describeFailure(e)}`));
  }

  private async typeConsoleInput(items: readonly { id: string; base64: string }[]): Promise<void> {
    for (const i of items) {
      await this.opts.driver.writeConsole(i.id, Buffer.from(i.base64, 'base64')).catch((e) => this.log(`console input for ${i.id} lost: ${String(e)}`));
    }
    if (items.length) void this.shipConsoles();
  }

  /** Brings the host to `desired`; true when it had to do anything. */
  reconcile(desired: NodeDesired): Promise<boolean> {
    return this.exclusively(() => (this.metrics ? this.metrics.timeReconcile(() => this.reconcileOnce(desired)) : this.reconcileOnce(desired)));
  }

  /** Runs `fn` after everything queued before it (reconciles, idle suspends, wakes). */
  private exclusively<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.catch(() => {}).then(fn);
    this.serial = run;
    return run;
  }

  private async reconcileOnce(desired: NodeDesired): Promise<boolean> {
    // The mesh first (networks ride on it), with the VPN peers that are already fenced in...
    await this.applyMesh(desired, (this.meshClients ??= await this.fencedClients(desired)));
    // Guests that powered off are ended (and recorded as such) first, so the plan sees how each VM ended.
    await this.opts.driver.reap?.().catch((e) => this.log(`reap: ${String(e)}`));
    const observed = await this.opts.driver.list();
    const live = desired.vms.filter((v) => v.power !== 'deleted');
    // Taps must exist before QEMU opens them and outlive the VMs being destroyed this pass.
    const keep = new Set([...live.map((v) => v.id), ...observed.map((o) => o.id)]);
    const netsBefore = JSON.stringify([...(this.networkStates ?? [])]);
    const kept = desired.vms.filter((v) => keep.has(v.id));
    const failed = await this.applyNetwork(desired, kept);
    // ...and new peers only once the network's rules (which fence them) are in place: not for a
    // network that failed here (its peers already on the interface were fenced before, and stay).
    const had = new Set((this.meshClients ?? []).map((c) => c.publicKey));
    const clients = vpnClients(desired).filter((c) => !failed.has(c.network) || had.has(c.publicKey));
    if (JSON.stringify(clients) !== JSON.stringify(this.meshClients)) {
      await this.applyMesh(desired, clients);
      this.meshClients = clients;
    }
    // Templates of warm images boot beside the loop (seconds each); their results go in the reports.
    this.warm?.run(desired.warm);
    // Snapshots first: a clone started below needs its starting point to exist.
    const snapped = (await this.snapshots?.take(desired.vms).catch((e) => (this.log(`snapshots: ${String(e)}`), false))) ?? false;
    // Exports of snapshots (taken above if just asked for) run beside the loop: queued, not awaited.
    this.exports.run(desired.exports);
    const ops = plan(desired.vms, observed, this.state.applied, Date.now());
    let done = snapped ? 1 : 0;
    const destroyed = new Set<string>();
    for (const op of ops) {
      // A VM is not started on a network this host could not build (its report says why);
      // every other VM, and every stop and delete, goes ahead.
      const vm = op.kind === 'start' || op.kind === 'restart' || op.kind === 'resume' ? op.vm : undefined;
      const blocked = vm && networkFailure(vm, failed);
      if (vm && blocked) {
        this.errors.delete(vm.id);
        this.log(`${op.kind} ${vm.id}: waiting, ${blocked}`);
        continue;
      }
      if ((await this.apply(op)) && op.kind === 'destroy') destroyed.add(op.id);
      done++;
    }
    // Before the network apply below, which removes the taps of VMs destroyed this pass.
    await this.syncActivators(desired, observed);
    // A VM that never came up has nothing on the host to destroy: just forget it.
    const liveIds = new Set(live.map((v) => v.id));
    for (const id of [...this.errors.keys(), ...Object.keys(this.state.applied)]) {
      if (!liveIds.has(id) && !observed.some((o) => o.id === id)) {
        this.errors.delete(id);
        if (this.state.applied[id]) this.state.forget(id);
      }
    }
    // The taps of VMs destroyed this pass go now. A pass with none to destroy applies the same
    // networks as above: not again (each apply reads the host, a dozen `ip`/`nft` runs, right
    // when a VM just started wants the CPU: a warm clone's first half second).
    if (kept.length !== live.length || destroyed.size > 0) await this.applyNetwork(desired, live);
    // After the ops: a restore has let go of what it discarded, a new VM's initial point exists.
    await this.snapshots?.prune(desired.vms).catch((e) => this.log(`snapshots: ${String(e)}`));
    await this.warm?.prune(desired.warm).catch((e) => this.log(`warm states: ${String(e)}`));
    for (const id of this.coldFallbacks.keys()) if (!liveIds.has(id)) this.coldFallbacks.delete(id);
    // What is on the host now: what was, but for what this pass destroyed (its starts are all
    // desired VMs, which evictImages counts anyway). No second list(): a QEMU host reads every
    // VM's pidfile and /proc entry for it.
    this.evictImages(desired, observed.filter((o) => !destroyed.has(o.id)));
    return done > 0 || JSON.stringify([...(this.networkStates ?? [])]) !== netsBefore;
  }

  /**
   * Deletes cached images no VM on this node uses. Every VM the desired state lists (any power,
   * being deleted too) keeps its blobs; a VM on the host that it does not list (one left from
   * before, not yet destroyed) has a base image we cannot name, so nothing is evicted until it
   * is gone.
   */
  private evictImages(desired: NodeDesired, present: readonly { id: string }[]): void {
    const known = new Set(desired.vms.map((v) => v.id));
    if (present.some((p) => !known.has(p.id))) return;
    // A warm state's template is booted from its image: kept like a VM's.
    const inUse = new Set([...desired.vms, ...(desired.warm ?? [])].flatMap((v) => blobsOf(v).map((b) => b.sha256)));
    try {
      const gone = this.images.evictUnused(inUse, { graceMs: this.opts.imageCache?.unusedGraceMs ?? 3_600_000, minFreePercent: this.opts.imageCache?.minFreePercent ?? 10 });
      for (const sha of gone) this.log(`image ${sha.slice(0, 12)} evicted from the cache: no VM on this node uses it`);
    } catch (e) {
      this.log(`image cache eviction failed: ${String(e)}`);
    }
  }

  /** Carries out one op; false when it failed (the error is kept for the report). */
  private async apply(op: Op): Promise<boolean> {
    if (op.kind === 'note') {
      this.state.note(op.id, op.reason);
      this.log(`${op.id}: ${op.reason}`);
      return true;
    }
    const id = op.kind === 'start' || op.kind === 'restart' || op.kind === 'resume' ? op.vm.id : op.id;
    const timeout = this.opts.stopTimeoutMs ?? 20_000;
    try {
      this.errors.delete(id);
      if (op.kind === 'destroy' || op.kind === 'discard') {
        await this.activators?.release(id);
        this.state.awake(id);
      }
      if (op.kind === 'destroy') {
        this.working.set(id, 'stopping');
        await this.opts.driver.destroy(id);
        this.state.forget(id);
        this.shipper.forget(id);
      } else if (op.kind === 'stop') {
        this.working.set(id, 'stopping');
        await this.opts.driver.stop(id, timeout);
      } else if (op.kind === 'suspend' || op.kind === 'discard' || op.kind === 'resume') {
        await this.memoryOp(op);
      } else {
        if (op.kind === 'restart') {
          this.working.set(id, 'stopping');
          await this.opts.driver.stop(id, timeout);
        }
        if (op.kind === 'start' && op.restart) {
          this.state.restarting(id, Date.now(), op.restart.reason);
          this.log(`${id}: ${op.restart.reason}`);
          // Counted on disk before it is tried (agent-state.ts): an agent crashing with its VM keeps the count.
          await this.state.flush();
        }
        this.working.set(id, 'creating');
        await this.startVm(op.vm);
      }
      this.log(`${op.kind} ${id}: done`);
      return true;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.errors.set(id, msg.split('\n')[0]!.slice(0, 500));
      this.log(`${op.kind} ${id} failed: ${msg}`);
      return false;
    } finally {
      this.working.delete(id);
    }
  }

  /** Suspend, resume, discard (issue 16): the driver's memory states. */
  private async memoryOp(op: Extract<Op, { kind: 'suspend' | 'resume' | 'discard' }>): Promise<void> {
    const memory = this.opts.driver.memory;
    if (!memory) throw new Error(`the ${this.opts.driver.name} driver cannot suspend or resume VMs`);
    if (op.kind === 'suspend') {
      this.working.set(op.id, 'suspending');
      const r = await memory.suspend(op.id);
      this.log(`${op.id}: suspended in ${r.ms} ms, memory state ${r.sizeBytes} bytes`);
    } else if (op.kind === 'discard') {
      await memory.discard(op.id);
    } else {
      this.working.set(op.vm.id, 'creating');
      for (const b of blobsOf(op.vm)) await this.images.ensure(b.sha256, b.format);
      // Asleep for idleness and woken by a user's `vm resume`: its QEMU needs its taps back.
      await this.activators?.release(op.vm.id);
      const r = await memory.resume(vmSpec(op.vm, (sha) => this.images.path(sha)));
      this.state.awake(op.vm.id);
      // The guest goes on where it was: ready if it was, and its restarts counted in this generation.
      this.state.resumed(op.vm.id, op.vm.restartGen);
      if (this.opts.driver.name === 'sim') this.state.markReady(op.vm.id);
      this.log(`${op.vm.id}: resumed in ${r.ms} ms`);
    }
  }

  /**
   * Scale to zero, once a second: each VM with `idleStop` that runs and is up has its taps'
   * counters read; one idle for its whole period is suspended (core/scale-to-zero/idle-plan.ts).
   */
  private async idleTick(): Promise<void> {
    if (this.idleBusy || !this.desired || !this.running) return;
    this.idleBusy = true;
    try {
      const vms = this.desired.vms.filter((v) => v.idleStop !== undefined && v.power === 'running');
      const watched = new Set(vms.map((v) => v.id));
      for (const id of this.idleWatch.keys()) if (!watched.has(id)) this.idleWatch.delete(id);
      for (const v of vms) {
        // Not one that boots, is being worked on, sleeps already or failed: its watch begins again after.
        if (this.working.has(v.id) || this.errors.has(v.id) || this.state.applied[v.id]?.idle || !this.state.isReady(v.id)) {
          this.idleWatch.delete(v.id);
          continue;
        }
        const bytes = await this.tapBytes(v.nics.map((_, i) => tapName(v.id, i)));
        const d = idleSample(this.idleWatch.get(v.id), bytes, Date.now(), parseIdleStop(v.idleStop!) ?? Number.POSITIVE_INFINITY);
        this.idleWatch.set(v.id, d.watch);
        if (d.suspend) {
          this.idleWatch.delete(v.id);
          await this.idleSuspend(v.id);
        }
      }
    } catch (e) {
      this.log(`idle watch: ${String(e)}`);
    } finally {
      this.idleBusy = false;
    }
  }

  /** Suspends a VM for idleness (its power stays `running`) and holds its taps. A failure leaves it running, watched again. */
  private async idleSuspend(id: string): Promise<void> {
    const memory = this.opts.driver.memory;
    if (!memory) return;
    const changed = await this.exclusively(async () => {
      const d = this.desired?.vms.find((x) => x.id === id);
      if (!d?.idleStop || d.power !== 'running' || this.state.applied[id]?.idle || this.working.has(id)) return false;
      const observed = await this.opts.driver.list();
      if (!observed.find((o) => o.id === id)?.running) return false;
      const reason = idleReason(d.idleStop);
      try {
        this.working.set(id, 'suspending');
        const r = await memory.suspend(id);
        this.state.idle(id, reason, d.wakeGen ?? 0);
        this.wakes.delete(id);
        this.log(`${id}: ${reason}: suspended in ${r.ms} ms, memory state ${r.sizeBytes} bytes`);
      } catch (e) {
        this.log(`${id}: idle suspend failed, it runs on: ${firstLine(e)}`);
        return false;
      } finally {
        this.working.delete(id);
      }
      await this.syncActivators(this.desired!, await this.opts.driver.list());
      return true;
    });
    if (changed) await this.report();
  }

  /**
   * The activators match the VMs asleep for idleness: held for each one that should run,
   * sleeps, and was not woken by a `vm resume` since; let go of (and the VM's idle mark
   * cleared) once a user's suspend, stop or delete takes it over.
   */
  private async syncActivators(desired: NodeDesired, observed: readonly ObservedVm[]): Promise<void> {
    const want = new Map<string, DesiredVm>();
    for (const d of desired.vms) {
      const idle = this.state.applied[d.id]?.idle;
      if (!idle) continue;
      const o = observed.find((x) => x.id === d.id);
      if (d.power === 'running' && o?.suspended && idle.wakeGen === (d.wakeGen ?? 0)) want.set(d.id, d);
      else if (d.power !== 'running') this.state.awake(d.id);
    }
    if (!this.activators) return;
    for (const id of this.activators.held()) if (!want.has(id)) await this.activators.release(id);
    for (const [id, d] of want) {
      if (this.activators.isHolding(id)) continue;
      const nics = d.nics.map((n, i) => ({ tap: tapName(d.id, i), bridge: bridgeName(n.network), mac: n.mac, ip: n.ip }));
      try {
        await this.activators.hold(id, nics, (w) => void this.wake(id, w));
      } catch (e) {
        this.log(`${id}: its activator could not hold its taps (a connection will not wake it): ${firstLine(e)}`);
      }
    }
  }

  /** A frame that should wake the VM reached its activator: let go of its taps, resume it, send it the frames held meanwhile. */
  private async wake(id: string, w: WakeCall): Promise<void> {
    const memory = this.opts.driver.memory;
    const woke = await this.exclusively(async () => {
      const d = this.desired?.vms.find((x) => x.id === id);
      if (!memory || !this.activators?.isHolding(id) || !d || d.power !== 'running') return false;
      const activators = this.activators;
      try {
        this.errors.delete(id);
        // Not marked `creating` meanwhile: reported `suspended` until it runs, it stays in its
        // service's DNS answer and published ports' backends (server/store/rows.ts SERVING_SQL).
        for (const b of blobsOf(d)) await this.images.ensure(b.sha256, b.format);
        const steps = await activators.wake(id, async () => {
          await memory.resume(vmSpec(d, (sha) => this.images.path(sha)));
          this.state.resumed(id, d.restartGen);
          this.state.awake(id);
        });
        const ms = Math.round((performance.now() - w.at) * 10) / 10;
        this.wakes.set(id, { at: new Date().toISOString(), trigger: w.trigger, port: w.port, ms });
        this.metrics?.woke(w.trigger, ms / 1000);
        this.log(`${id}: woken by ${w.trigger} from ${w.from} to port ${w.port}: running again ${ms} ms after it arrived (taps let go ${steps.releaseMs} ms, resume ${steps.resumeMs} ms, ${steps.frames} frame(s) sent again ${steps.reinjectMs} ms)`);
        return true;
      } catch (e) {
        // Still asleep: the next reconcile holds its taps again, and says why meanwhile.
        this.errors.set(id, `wake failed: ${firstLine(e)}`);
        this.log(`${id}: wake failed: ${firstLine(e)}`);
        return true;
      }
    });
    if (woke) await this.report().catch(() => {});
  }

  /** A warm clone's first NIC's address, as its DHCP lease would give it (dnsmasq-config.ts): the guest sets it itself. */
  private warmAddress(vm: DesiredVm): WarmAddress | undefined {
    const eth0 = vm.nics[0];
    const net = eth0 && this.desired?.networks.find((n) => n.name === eth0.network);
    if (!eth0 || !net) return undefined;
    return { ip: eth0.ip, prefix: splitCidr(net.cidr).prefix, gateway: net.gateway, mtu: net.mtu, domain: networkDomain(net.name) };
  }

  private async startVm(vm: DesiredVm): Promise<void> {
    for (const b of blobsOf(vm)) await this.images.ensure(b.sha256, b.format);
    const spec = vmSpec(vm, (sha) => this.images.path(sha));
    // Warm (issue 16): only the first start of a VM the control plane placed on a warm state.
    const firstStart = this.state.applied[vm.id] === undefined;
    if (vm.warm && firstStart) {
      const warm = this.opts.driver.warm;
      let why: string | undefined;
      if (!warm?.has(vm.warm.id)) why = `warm state ${vm.warm.id} is not on this node`;
      else {
        try {
          const r = await warm.start(spec, vm.warm.id, this.warmAddress(vm));
          this.metrics?.warmStarted();
          this.log(`${vm.id}: started warm from ${vm.warm.id} in ${r.ms} ms`);
        } catch (e) {
          why = `warm start failed: ${firstLine(e)}`;
        }
      }
      if (why === undefined) {
        this.state.started(vm.id, vm.restartGen);
        if (this.opts.driver.name === 'sim') this.state.markReady(vm.id);
        return;
      }
      this.log(`${vm.id}: ${why}; booting it cold`);
      this.coldFallbacks.set(vm.id, why);
    }
    const r = await this.opts.driver.start(spec);
    if (!r?.resumed) this.metrics?.coldStarted(vm.warm && firstStart ? 'fallback' : firstStart ? 'not_warm' : 'restart');
    this.state.started(vm.id, vm.restartGen);
    // A simulated VM has no guest to fetch metadata: it is up as soon as it "runs". Nor does a
    // guest resumed from a memory snapshot (it goes on where it was): a snapshot of a running
    // guest, so it is up too.
    if (this.opts.driver.name === 'sim' || r?.resumed) this.state.markReady(vm.id);
  }

  /**
   * The mesh first: networks ride on it. A failure is logged, not thrown: local VMs and
   * networks still converge, and the next watch or timeout tries again.
   */
  private async applyMesh(desired: NodeDesired, clients: readonly MeshClient[]): Promise<void> {
    if (!this.opts.mesh || !desired.mesh) return;
    try {
      await this.opts.mesh.host.apply(desired.mesh, clients);
      this.opts.onMeshAddress?.(desired.mesh.address);
    } catch (e) {
      this.log(`mesh: ${String(e)}`);
    }
  }

  /**
   * At the agent's start, the VPN peers already fenced in: those still on the mesh interface.
   * After an agent restart they are all there, and so are the host's rules (which outlive the
   * agent): keeping them means a restart cuts no laptop off. After a reboot the interface and
   * the rules are both gone, so every peer waits for its network's rules like a new one.
   */
  private async fencedClients(desired: NodeDesired): Promise<MeshClient[]> {
    if (!this.opts.mesh || !desired.mesh) return [];
    const present = await this.opts.mesh.host.peerKeys().catch(() => new Set<string>());
    return vpnClients(desired).filter((c) => present.has(c.publicKey));
  }

  /**
   * Applies the local networks; returns those that failed, each with its error (also kept for
   * the report). A failure the host could not pin on one network is every network's.
   */
  private async applyNetwork(desired: NodeDesired, vms: readonly DesiredVm[]): Promise<ReadonlyMap<string, string>> {
    if (!this.opts.network) return new Map();
    const nets: LocalNetwork[] = desired.networks.map((n) => ({
      name: n.name,
      bridge: bridgeName(n.name),
      cidr: n.cidr,
      gateway: n.gateway,
      mtu: n.mtu,
      nat: n.nat && !this.opts.noEgress,
      dnsForward: !this.opts.noEgress,
      ...gatewayDevices(n.name, n.vni),
      ports: vms.flatMap((v) => v.nics.flatMap((nic, i) => (nic.network === n.name ? [{ tap: tapName(v.id, i), mac: nic.mac, ip: nic.ip, hostname: v.name, primary: i === 0 }] : []))),
      // Across nodes only when this node is in the mesh (its address is the tunnels' source).
      ...(this.opts.mesh && desired.mesh
        ? { overlay: { device: vxlanName(n.name), vni: n.vni, local: desired.mesh.address, remotes: n.remotes.map((r) => ({ address: r.address, macs: [...r.vms.map((v) => v.mac), ...(r.router ? [r.router.mac] : [])] })) } }
        : {}),
      remoteNames: n.remotes.flatMap((r) => r.vms.map((v) => ({ ip: v.ip, hostname: v.name }))),
      // Every node of the network answers a service's name alike, wherever its instances run.
      services: (n.services ?? []).map((s) => ({ name: s.name, ips: [...s.ips], ...(s.block ? { block: s.block } : {}) })),
      // The paths table (default deny for service instances) is rendered from these and the blocks.
      ...(n.paths ? { paths: n.paths } : {}),
      ...(n.vpn && this.opts.mesh?.iface && desired.mesh ? { vpn: vpnOf(n, n.vpn, this.opts.mesh.iface) } : {}),
    }));
    const failed = new Map<string, string>();
    try {
      await this.opts.network.apply(nets, {
        node: this.opts.node,
        published: desired.published ?? [],
        ...(this.opts.mesh && desired.mesh ? { mesh: { address: desired.mesh.address, peers: desired.mesh.peers.map((p) => ({ node: p.node, address: p.address })) } } : {}),
      });
    } catch (e) {
      if (e instanceof NetworkApplyError) for (const [name, err] of e.failures) failed.set(name, firstLine(err));
      else for (const n of nets) failed.set(n.name, firstLine(e));
      this.log(`network apply: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.networkStates = new Map(nets.map((n) => [n.name, failed.get(n.name)]));
    // Networks that did apply get their metadata server even when another failed.
    if (this.opts.metadataPort !== undefined) await this.syncMetadata(nets);
    return failed;
  }

  /** A metadata server on each network's uplink address (which exists once the network is applied); none for networks gone. */
  private async syncMetadata(nets: readonly LocalNetwork[]): Promise<void> {
    const want = new Map(nets.map((n) => [n.name, n.uplink.root]));
    for (const [name, m] of this.metadata) {
      if (want.get(name) === m.address) continue;
      await m.server.close();
      this.metadata.delete(name);
    }
    for (const [name, address] of want) {
      if (this.metadata.has(name)) continue;
      const server = createMetadataServer({
        lookup: (ip) => this.metadataFor(name, ip),
        onFetch: (vmId) => {
          if (this.state.markReady(vmId)) void this.report().catch((e) => this.log(`report failed: ${String(e)}`));
        },
      });
      try {
        await server.listen(address, this.opts.metadataPort!);
      } catch (e) {
        this.log(`metadata server for network ${name} on ${address}: ${String(e)}`);
        continue;
      }
      this.metadata.set(name, { address, server });
      this.log(`metadata server for network ${name} on ${address}:${this.opts.metadataPort}`);
    }
  }

  /** Identity is the network and the source address, which the bridge's anti-spoofing rules tie to one tap. */
  private metadataFor(network: string, ip: string): VmMetadata | undefined {
    const vm = vmBySource(this.desired, network, ip);
    if (!vm) return undefined;
    const mtuOf = (network: string) => this.desired!.networks.find((n) => n.name === network)?.mtu;
    const eth0 = vm.nics[0]!;
    const mtu = mtuOf(eth0.network);
    return {
      vmId: vm.id,
      instanceId: `i-${vm.id}`,
      hostname: vm.name,
      localIpv4: eth0.ip,
      mac: eth0.mac,
      userData: vm.userData,
      vendorData: '',
      sshKeys: vm.sshKeys,
      metadataTokens: vm.metadataTokens,
      ...(mtu !== undefined ? { mtu } : {}),
      ...(vm.nics.length > 1 ? { moreNics: vm.nics.slice(1).map((n) => ({ mac: n.mac, ...(mtuOf(n.network) !== undefined ? { mtu: mtuOf(n.network)! } : {}) })) } : {}),
    };
  }

  /**
   * Heartbeat + observed state; serialized so reports never overtake each other. A report
   * lost to a down link resolves (the link logged it; the next one after it is back says it all).
   */
  report(): Promise<void> {
    this.reporting = this.reporting
      .catch(() => {})
      .then(() => (this.stopped ? undefined : this.sendReport()))
      .catch((e) => {
        this.metrics?.heartbeatFailed();
        if (!(e instanceof LinkDown)) throw e;
      });
    return this.reporting;
  }

  private async sendReport(): Promise<void> {
    const observed = await this.opts.driver.list();
    const desired = new Map((this.desired?.vms ?? []).map((v) => [v.id, v]));
    const vms: ObservedVmReport[] = [];
    // A VM on a network that failed here: its reason says so, and one that should run is in error.
    const failedNets = new Map([...(this.networkStates ?? [])].filter((e): e is [string, string] => e[1] !== undefined));
    const netFailure = (d: DesiredVm | undefined) => (d && d.power !== 'deleted' ? networkFailure(d, failedNets) : undefined);
    const blocked = [...desired.values()].filter((d) => d.power === 'running' && netFailure(d)).map((d) => d.id);
    const ids = new Set([...observed.map((o) => o.id), ...this.working.keys(), ...this.errors.keys(), ...blocked]);
    for (const id of ids) {
      const o = observed.find((x) => x.id === id);
      const d = desired.get(id);
      const work = this.working.get(id);
      const err = this.errors.get(id);
      const netErr = netFailure(d);
      let state: ObservedVmReport['state'];
      if (work) state = work;
      else if (o?.running) state = this.state.isReady(id) ? 'running' : 'booting';
      else if (err || (netErr && d?.power === 'running')) state = 'error';
      else if (o?.suspended) state = 'suspended';
      else state = 'stopped';
      // A suspend that failed leaves the VM running: say why it is not suspended.
      const suspendFailed = err && d?.power === 'suspended' && o?.running ? `suspend failed: ${err}` : undefined;
      const reason = state === 'error' ? (err ?? netErr) : (netErr ?? suspendFailed ?? this.reasonOf(id, state, d, o));
      const snaps = this.snapshots?.report(d) ?? [];
      const wake = this.wakes.get(id);
      const fallback = this.coldFallbacks.get(id);
      vms.push({ id, state, ...(reason ? { reason } : {}), ...(o?.pid ? { pid: o.pid } : {}), ...(snaps.length ? { snapshots: snaps } : {}), ...(wake ? { wake } : {}), ...(fallback ? { start: { kind: 'cold' as const, reason: fallback } } : {}) });
    }
    const warm = this.warm?.report(this.desired?.warm) ?? [];
    const body = {
      capacity: this.opts.capacity ?? hostCapacity(this.opts.stateDir),
        accel: this.opts.accel.accel,
        ...(this.opts.accel.reason ? { accelReason: this.opts.accel.reason } : {}),
        driver: this.opts.driver.name,
        vms,
        ...(this.opts.mesh ? { mesh: meshReport(this.opts.mesh) } : {}),
      ...(this.networkStates ? { networks: networkReport(this.networkStates) } : {}),
      ...(warm.length ? { warm } : {}),
    };
    await this.viaLink(() => this.opts.client.call('nodeReport', { params: { name: this.opts.node }, body }));
  }

  /**
   * Why a VM is in its state, as far as the agent knows: what it noted in this generation
   * (how the VM ended, a restart after a crash, a crash loop), else, for one that should run
   * and does not, how it ended.
   */
  private reasonOf(id: string, state: ObservedVmReport['state'], d: DesiredVm | undefined, o: ObservedVm | undefined): string | undefined {
    // A VM stopped on request needs no explanation (and `vm stop` keeps the generation).
    if (d?.power !== 'running') return undefined;
    const a = this.state.applied[id];
    if (state === 'suspended' && a?.idle) return a.idle.reason;
    if (a?.note !== undefined && a.gen === d.restartGen) return a.note;
    if (state !== 'stopped') return undefined;
    return o?.exit ? exitReason(o.exit) : 'stopped by itself (how is unknown: started by an older agent)';
  }

  private shipping = false;
  private async shipConsoles(): Promise<void> {
    if (this.shipping) return; // one pass at a time: offsets must not race
    this.shipping = true;
    try {
      await this.viaLink(() => this.shipper.ship(Object.keys(this.state.applied)));
    } catch (e) {
      if (!(e instanceof LinkDown)) this.log(`console upload failed: ${describeFailure(e)}`);
    } finally {
      this.shipping = false;
    }
  }
}

/** The first line of an error, bounded: what the control plane shows. */
function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 500);
}

/** `network NAME: why` for the first of the VM's NICs whose network failed here, else undefined. */
function networkFailure(vm: DesiredVm, failed: ReadonlyMap<string, string>): string | undefined {
  const nic = vm.nics.find((n) => failed.has(n.network));
  return nic ? `network ${nic.network}: ${failed.get(nic.network)}` : undefined;
}

function networkReport(states: ReadonlyMap<string, string | undefined>): NetworkReport[] {
  return [...states].map(([name, error]) => (error === undefined ? { name, state: 'ready' } : { name, state: 'error', error }));
}

/** What the report says of the node's mesh end: never the private key. */
function meshReport(m: NonNullable<AgentOptions['mesh']>): MeshReport {
  return {
    publicKey: m.publicKey,
    listenPort: m.listenPort,
    // A chosen endpoint says it all; only without one is the default-route address a candidate.
    ...(m.endpoint ? { endpoint: m.endpoint } : m.defaultAddress ? { defaultAddress: m.defaultAddress } : {}),
    ...(m.underlayMtu ? { underlayMtu: m.underlayMtu } : {}),
  };
}

/** The VPN router of a network this node is the VPN gateway of (see LinuxNetworkHost.ensureVpn). */
function vpnOf(n: DesiredNetwork, vpn: NonNullable<DesiredNetwork['vpn']>, meshIface: string): LocalVpn {
  return { ...vpnDevices(n.name), address: vpn.address, mac: vpn.mac, peers: vpn.peers.map((p) => p.ip), mesh: meshIface, table: VPN_TABLE_BASE + n.vni };
}

/** The VPN peers of the networks this node is the VPN gateway of: peers of its mesh interface. */
function vpnClients(desired: NodeDesired): MeshClient[] {
  return desired.networks.flatMap((n) => (n.vpn?.peers ?? []).map((p) => ({ name: p.name, network: n.name, publicKey: p.publicKey, address: p.ip })));
}
