/**
 * Figure (f): 1,000 simulated agents heartbeating every 5 s against one control plane, then
 * the same with 10,000 VMs on them: heartbeat round-trip percentiles, and the control plane's
 * resident memory holding 10,000 VMs.
 *
 * The control plane is `butter server` in its own process (server-process.ts). The agents are
 * the real `Agent` class with the simulated driver, 1,000 of them in this process, each with
 * its own node token, state dir and HTTPS connection (HTTP/2): they long-poll their desired state,
 * reconcile, report every 5 s and after every reconcile, and ship their consoles, as
 * `butter sim` does. Every `nodeReport` call is timed from just before the SDK call to its
 * decoded answer. The agents share this process's two cores with the server, so what the
 * agents themselves cost lands in the figure too. To tell the two apart, event-loop delay and
 * CPU are recorded alongside, and a quiet process of its own (heartbeat-probe.ts) sends the
 * same report for one more, cordoned node every 100 ms: the control plane's side alone.
 *
 * `node --import tsx bench/cluster-scale.ts [NODES] [VMS]` runs this figure alone and prints it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { Agent } from '../src/agent/agent.ts';
import type { HostCapacity } from '../src/agent/capacity.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { Client } from '../src/sdk/client.ts';
import { registerCleanup } from './cleanup.ts';
import { readRss } from './rss.ts';
import { withServerProcess, type ServerProcess } from './server-process.ts';
import { percentile, pool, round, sleep, within } from './stats.ts';

export interface ClusterScaleOptions {
  nodes: number;
  vms: number;
  /** Heartbeats measured with no VMs, after every agent has joined. */
  steadyS: number;
  /** Heartbeats measured while the cluster holds all the VMs (after they all run). */
  loadedS: number;
  createConcurrency: number;
  /** Agents are started this far apart, so their 5 s heartbeats are spread over the period as independent agents' are. */
  startSpacingMs: number;
  capacity: HostCapacity;
  vm: { cpus: number; memory: string; disk: string };
}

const GiB = 1024 ** 3;
export const CLUSTER_DEFAULTS: ClusterScaleOptions = {
  nodes: 1000,
  vms: 10_000,
  steadyS: 30,
  loadedS: 30,
  createConcurrency: 32,
  startSpacingMs: 10,
  capacity: { cpus: 64, memoryBytes: 256 * GiB, diskBytes: 10 * 1024 * GiB },
  vm: { cpus: 1, memory: '512M', disk: '1G' },
};

export interface HeartbeatPhase {
  /** Measured window, s. */
  windowS: number;
  /** `nodeReport` calls started in the window and answered. */
  reports: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** This (the agents') process: event-loop delay p99 and max, and CPU used, in cores. */
  agentsLoopDelayP99Ms: number;
  agentsLoopDelayMaxMs: number;
  agentsCpuCores: number;
  /** The control plane's CPU over the window, in cores. */
  serverCpuCores: number;
  /** The whole machine's CPU busy over the window (0–1 of all cores). */
  machineBusy: number;
  /** The same report from a quiet process of its own every 100 ms (heartbeat-probe.ts): the control plane's side. */
  quiet: { reports: number; errors: number; p50Ms: number; p99Ms: number; maxMs: number };
}

export interface ClusterScaleResult {
  nodes: number;
  vms: number;
  /** Registering the nodes through the API (POST /v1/nodes), s. */
  registerS: number;
  /** Starting every agent until each has reported once, s. */
  joinS: number;
  /** Nodes `ready` in the control plane after the joins. */
  readyNodes: number;
  steady: HeartbeatPhase;
  /** While the VMs are being created (not judged; for context). */
  creating: HeartbeatPhase;
  loaded: HeartbeatPhase;
  /** Creating the VMs through the API, `createConcurrency` requests in flight, s. */
  createS: number;
  createsPerSecond: number;
  createErrors: number;
  createErrorSamples: string[];
  /** From the last create answered until every VM runs on a sim agent, s. */
  convergeS: number;
  /** VMs `running` in the control plane at the end (GET /v1/vms, after the RSS was read). */
  runningVms: number;
  /** Control-plane RSS (VmRSS) at start-up, with the nodes joined, and with all the VMs. */
  idleRssMiB: number;
  joinedRssMiB: number;
  rssMiB: number;
  /** The control plane's open sockets (one HTTP/2 connection per agent) with the nodes joined, and at the end. */
  joinedSockets: number;
  sockets: number;
  peakMiB: number;
  /** Resident memory of this (the agents') process at the end. */
  agentsRssMiB: number;
  transport: 'https' | 'http';
  options: ClusterScaleOptions;
}

function clockTicks(): number {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout?.trim()) || 100;
}

/** CPU seconds (user + system) a process has used so far. */
function processCpuS(pid: number, hz: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / hz; // utime, stime: fields 14 and 15
}

/** Open sockets of a process (its listening socket, clients' connections, and the like). */
function openSockets(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

function machineTimes(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** The event-loop monitor's timer period; its readings include it, so it is subtracted. */
const LOOP_RESOLUTION_MS = 10;

interface Sample {
  /** performance.now() at the send (the agents) or epoch ms (the quiet probe). */
  at: number;
  ms: number;
}

const PROBE = fileURLToPath(new URL('./heartbeat-probe.ts', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));
const PROBE_NODE = 'quiet-probe';
const PROBE_EVERY_MS = 100;

/** Starts heartbeat-probe.ts for `PROBE_NODE`; its samples land in `samples`, its failures in `errors`. */
function startProbe(server: ServerProcess, token: string, samples: Sample[], errors: Sample[]): { child: ChildProcess; stop: () => Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', PROBE, server.url, PROBE_NODE, String(PROBE_EVERY_MS), '900'], {
    cwd: REPO,
    env: { ...process.env, BUTTER_PROBE_TOKEN: token, ...(server.transport === 'https' ? { BUTTER_PROBE_CA: join(server.dataDir, 'tls', 'ca.crt') } : {}) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const x = JSON.parse(line) as { at: number; ms?: number; error?: string };
      if (typeof x.ms === 'number') samples.push({ at: x.at, ms: x.ms });
      else errors.push({ at: x.at, ms: NaN });
    } catch {
      // not ours
    }
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end(); // it stops when its stdin closes
    if (await within(exited.then(() => false), 3000, true)) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return { child, stop };
}

/** What is recorded over one window: CPU, event-loop delay; the samples are cut from the shared log afterwards. */
class Window {
  private readonly t0 = performance.now();
  private readonly epoch0 = Date.now();
  private readonly cpu0 = process.cpuUsage();
  private readonly server0: number;
  private readonly machine0 = machineTimes();
  private readonly loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });

  constructor(
    private readonly serverPid: number,
    private readonly hz: number,
  ) {
    this.server0 = processCpuS(serverPid, hz);
    this.loop.enable();
  }

  close(samples: readonly Sample[], errors: readonly Sample[], quiet: readonly Sample[], quietErrors: readonly Sample[]): HeartbeatPhase {
    const t1 = performance.now();
    const epoch1 = Date.now();
    this.loop.disable();
    const s = (t1 - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    const m = machineTimes();
    const inWindow = (x: Sample) => x.at >= this.t0 && x.at < t1;
    const ms = samples
      .filter(inWindow)
      .map((x) => x.ms)
      .sort((a, b) => a - b);
    const r = (x: number) => round(x, 2);
    const inEpoch = (x: Sample) => x.at >= this.epoch0 && x.at < epoch1;
    const q = quiet
      .filter(inEpoch)
      .map((x) => x.ms)
      .sort((a, b) => a - b);
    return {
      windowS: r(s),
      reports: ms.length,
      errors: errors.filter(inWindow).length,
      p50Ms: r(percentile(ms, 50)),
      p90Ms: r(percentile(ms, 90)),
      p99Ms: r(percentile(ms, 99)),
      maxMs: r(ms[ms.length - 1] ?? NaN),
      agentsLoopDelayP99Ms: r(Math.max(0, this.loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS)),
      agentsLoopDelayMaxMs: r(Math.max(0, this.loop.max / 1e6 - LOOP_RESOLUTION_MS)),
      agentsCpuCores: r((cpu.user + cpu.system) / 1e6 / s),
      serverCpuCores: r((processCpuS(this.serverPid, this.hz) - this.server0) / s),
      machineBusy: r(m.total > this.machine0.total ? (m.busy - this.machine0.busy) / (m.total - this.machine0.total) : NaN),
      quiet: { reports: q.length, errors: quietErrors.filter(inEpoch).length, p50Ms: r(percentile(q, 50)), p99Ms: r(percentile(q, 99)), maxMs: r(q[q.length - 1] ?? NaN) },
    };
  }
}

/** The agent's client, with every `nodeReport` round-trip timed (the heartbeat; the other calls pass through). */
function timedReports(client: Client, samples: Sample[], errors: Sample[]): Client {
  const call = client.call.bind(client);
  client.call = (async (id, args, signal) => {
    if (id !== 'nodeReport') return call(id, args, signal);
    const at = performance.now();
    try {
      const res = await call(id, args, signal);
      samples.push({ at, ms: performance.now() - at });
      return res;
    } catch (e) {
      errors.push({ at, ms: performance.now() - at });
      throw e;
    }
  }) as Client['call'];
  return client;
}

/** Starts its own `butter server`, runs the figure against it, and stops it. */
export async function benchClusterScale(o: ClusterScaleOptions = CLUSTER_DEFAULTS, log: (m: string) => void = () => {}): Promise<ClusterScaleResult> {
  return withServerProcess(log, (server) => measure(server, o, log));
}

async function measure(server: ServerProcess, o: ClusterScaleOptions, log: (m: string) => void): Promise<ClusterScaleResult> {
  const { admin } = server;
  const hz = clockTicks();
  const idleRssMiB = readRss(server.pid).rssMiB;
  const dir = mkdtempSync(join(tmpdir(), 'butter-bench-cluster-'));
  const agents: Agent[] = [];
  const drivers: SimDriver[] = [];
  let probe: ReturnType<typeof startProbe> | undefined;
  let stopping: Promise<void> | undefined;
  const stopAgents = () =>
    (stopping ??= (async () => {
      await probe?.stop();
      await within(Promise.all(agents.map((a) => a.stop())), 30_000, undefined);
      rmSync(dir, { recursive: true, force: true });
    })());
  const undo = registerCleanup(`${o.nodes} simulated agents in ${dir}`, stopAgents);
  const samples: Sample[] = [];
  const errors: Sample[] = [];
  const quiet: Sample[] = [];
  const quietErrors: Sample[] = [];
  const close = (w: Window) => w.close(samples, errors, quiet, quietErrors);
  try {
    // Register the nodes: each gets its node token, as `butter sim` does.
    let t0 = performance.now();
    const names = Array.from({ length: o.nodes }, (_, i) => `sim-${i + 1}`);
    const tokens = new Map<string, string>();
    await pool(names, 16, async (name) => {
      const { token } = await admin.call('createNode', { body: { name } });
      tokens.set(name, token);
    });
    const registerS = round((performance.now() - t0) / 1000, 1);
    log(`${o.nodes} nodes registered in ${registerS} s`);
    // One more node, cordoned so it gets no VMs, for the quiet probe's heartbeats.
    const { token: probeToken } = await admin.call('createNode', { body: { name: PROBE_NODE } });
    await admin.call('cordonNode', { params: { name: PROBE_NODE } });
    probe = startProbe(server, probeToken, quiet, quietErrors);

    // Start the agents, `startSpacingMs` apart; each start() returns after its first report.
    t0 = performance.now();
    const started: Promise<void>[] = [];
    for (const [i, name] of names.entries()) {
      const wait = t0 + i * o.startSpacingMs - performance.now();
      if (wait > 0) await sleep(wait);
      const stateDir = join(dir, name);
      mkdirSync(stateDir);
      const driver = new SimDriver({ stateDir });
      drivers.push(driver);
      const agent = new Agent({
        client: timedReports(server.client(tokens.get(name)!), samples, errors),
        node: name,
        stateDir,
        driver,
        accel: { accel: 'tcg', reason: 'simulated node' },
        capacity: o.capacity,
        consoleShipMs: 5000,
      });
      agents.push(agent);
      started.push(agent.start());
    }
    await Promise.all(started);
    const joinS = round((performance.now() - t0) / 1000, 1);
    const readyNodes = (await admin.call('listNodes', {})).items.filter((n) => n.state === 'ready' && n.name !== PROBE_NODE).length;
    log(`${agents.length} agents started in ${joinS} s; ${readyNodes} nodes ready`);
    if (readyNodes !== o.nodes) throw new Error(`only ${readyNodes} of ${o.nodes} nodes are ready after the agents started`);
    await sleep(5000); // one full heartbeat period, so the start-up burst is over
    const joinedRssMiB = readRss(server.pid).rssMiB;
    const joinedSockets = openSockets(server.pid);

    let w = new Window(server.pid, hz);
    await sleep(o.steadyS * 1000);
    const steady = close(w);
    log(`no VMs: ${steady.reports} heartbeats, p50 ${steady.p50Ms} ms, p99 ${steady.p99Ms} ms (quiet probe p99 ${steady.quiet.p99Ms} ms; agents' loop delay p99 ${steady.agentsLoopDelayP99Ms} ms; CPU agents ${steady.agentsCpuCores}, server ${steady.serverCpuCores})`);

    // The VMs, through the API, spread over the nodes by the scheduler.
    const blob = await admin.uploadBlob(Readable.from([Buffer.alloc(4096, 0x5a)]));
    await admin.call('createImage', { body: { name: 'bench', kind: 'disk', disk: blob.sha256 } });
    const createErrors: string[] = [];
    w = new Window(server.pid, hz);
    t0 = performance.now();
    await pool(
      Array.from({ length: o.vms }, (_, i) => `vm-${i + 1}`),
      o.createConcurrency,
      async (name) => {
        await admin.call('createVm', { body: { name, image: 'bench', ...o.vm } }).catch((e: Error) => void createErrors.push(`${name}: ${e.message}`));
      },
    );
    const createS = round((performance.now() - t0) / 1000, 1);
    log(`${o.vms - createErrors.length} VMs created in ${createS} s (${createErrors.length} errors)`);

    // Wait until every VM runs on its agent; the report after each reconcile tells the control plane.
    t0 = performance.now();
    const want = o.vms - createErrors.length;
    const runningOnAgents = async () => (await Promise.all(drivers.map((d) => d.list()))).reduce((n, vms) => n + vms.filter((v) => v.running).length, 0);
    let running = 0;
    while ((running = await runningOnAgents()) < want) {
      if (performance.now() - t0 > 120_000) throw new Error(`only ${running} of ${want} VMs running on the agents 120 s after the last create`);
      await sleep(1000);
    }
    const convergeS = round((performance.now() - t0) / 1000, 1);
    await sleep(5000); // every agent has reported its VMs since
    const creating = close(w);
    log(`all ${running} VMs running on the agents ${convergeS} s after the last create`);

    w = new Window(server.pid, hz);
    await sleep(o.loadedS * 1000);
    const loaded = close(w);
    log(`with ${running} VMs: ${loaded.reports} heartbeats, p50 ${loaded.p50Ms} ms, p99 ${loaded.p99Ms} ms (quiet probe p99 ${loaded.quiet.p99Ms} ms; agents' loop delay p99 ${loaded.agentsLoopDelayP99Ms} ms; CPU agents ${loaded.agentsCpuCores}, server ${loaded.serverCpuCores})`);
    const rss = readRss(server.pid); // before the listing below allocates in the server
    const sockets = openSockets(server.pid);
    const runningVms = (await admin.call('listVms', {})).items.filter((v) => v.state === 'running').length;

    return {
      nodes: o.nodes,
      vms: o.vms,
      registerS,
      joinS,
      readyNodes,
      steady,
      creating,
      loaded,
      createS,
      createsPerSecond: Math.round(want / createS),
      createErrors: createErrors.length,
      createErrorSamples: createErrors.slice(0, 5),
      convergeS,
      runningVms,
      idleRssMiB,
      joinedRssMiB,
      rssMiB: rss.rssMiB,
      peakMiB: rss.peakMiB,
      joinedSockets,
      sockets,
      agentsRssMiB: round(process.memoryUsage.rss() / 2 ** 20, 1),
      transport: server.transport,
      options: o,
    };
  } finally {
    await stopAgents();
    undo();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `node --import tsx bench/cluster-scale.ts [nodes] [vms]`: this figure alone, printed.
  const [nodes, vms] = process.argv.slice(2).map(Number);
  const o = { ...CLUSTER_DEFAULTS, ...(nodes ? { nodes } : {}), ...(vms ? { vms } : {}) };
  console.log(JSON.stringify(await benchClusterScale(o, (m) => console.log(m)), null, 2));
}
