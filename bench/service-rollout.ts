/**
 * Figure (k): a rolling update of a 10-instance service on simulated nodes: how long it takes,
 * and the most instances ever missing from the service's DNS answer meanwhile.
 *
 * The control plane is `butter server` in its own process (server-process.ts); the nodes are
 * real `Agent`s with the simulated driver in this process (as in (f)), so each replacement
 * really goes `running` through an agent's reconcile and report before the rollout takes an
 * old instance away. The DNS answer is what the nodes are sent: the desired state's
 * `networks[].services[].ips` (each agent renders it into dnsmasq's addn-hosts). A watcher per
 * node long-polls that node's desired state exactly as its agent does (`since` the last
 * revision), so it sees every state the node can be sent; each answer is counted, and
 * "missing" is the service's count less the running addresses in it.
 *
 * The update changes one template variable; then a rollback to revision 1 is measured the
 * same way. Time: from the request until the service shows every instance running at the
 * new revision with the rollout done.
 * `node --import tsx bench/service-rollout.ts` runs it alone and prints it.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { Service } from '../src/api/schemas/service.ts';
import type { Client } from '../src/sdk/client.ts';
import { registerCleanup } from './cleanup.ts';
import { withServerProcess, type ServerProcess } from './server-process.ts';
import { round, sleep, within } from './stats.ts';

export interface ServiceRolloutOptions {
  nodes: number;
  zones: number;
  instances: number;
}

export const SERVICE_ROLLOUT_DEFAULTS: ServiceRolloutOptions = { nodes: 5, zones: 2, instances: 10 };

export interface RolloutPhase {
  /** From the request to every instance running at the new revision, rollout done, ms. */
  ms: number;
  /** Instances replaced (each a new VM running before an old one went). */
  replaced: number;
  /** Desired states the watchers received over the phase (all nodes together). */
  samples: number;
  /** The most instances missing from any DNS answer sent to any node (count less running addresses). */
  maxMissing: number;
  /** The most addresses in one answer (the count, plus a replacement running beside the one it replaces). */
  maxIps: number;
}

export interface ServiceRolloutResult {
  nodes: number;
  zones: number;
  instances: number;
  update: RolloutPhase;
  rollback: RolloutPhase;
  transport: 'https' | 'http';
  options: ServiceRolloutOptions;
}

const GiB = 1024 ** 3;
const NETWORK = 'bench';

const blueprint = (o: ServiceRolloutOptions) => `network: { subnetwork_max_instance_count: 32 }
placement: { availability_zones: ${o.zones} }
instance: { memory: 256M, cpus: 1 }
image: { name: bench }
initialization:
  - path: app.sh
    vars: { Version: { required: true } }
count: ${o.instances}
`;
const files = { 'app.sh': '#!/bin/sh\necho "{{ service }} #{{ index }} version {{ Version }}"\n' };

interface Watch {
  samples: number;
  maxMissing: number;
  maxIps: number;
}

interface WatchState {
  watch: Watch;
  /** The latest answer's address count, per node sent one. */
  latest: Map<string, number>;
  stopped: boolean;
  error?: Error;
}

/**
 * Long-polls each node's desired state as its agent does and records, in `watch` (replaced
 * per phase), every answer's DNS addresses of the service. Stops when `stopped()` is true.
 */
function watchDns(admin: Client, nodes: string[], service: string, count: number, state: WatchState): Promise<void[]> {
  return Promise.all(
    nodes.map(async (node) => {
      let since: number | undefined;
      while (!state.stopped) {
        let d;
        try {
          d = await admin.call('nodeDesired', { params: { name: node }, query: since === undefined ? {} : { since, wait: 1 } });
        } catch (e) {
          // Counting stops here: the figure would miss answers, so it fails (checked by the phases).
          state.error ??= e instanceof Error ? e : new Error(String(e));
          return;
        }
        since = d.revision;
        if ('unchanged' in d) continue;
        const net = d.networks.find((n) => n.name === NETWORK);
        // A node that hosts no instance of the network is sent none of it: no DNS answer there.
        if (!net) continue;
        const ips = new Set(net.services?.find((s) => s.name === service)?.ips ?? []);
        state.latest.set(node, ips.size);
        const w = state.watch;
        w.samples++;
        w.maxMissing = Math.max(w.maxMissing, count - ips.size);
        w.maxIps = Math.max(w.maxIps, ips.size);
      }
    }),
  );
}

async function waitWatch(state: WatchState, ok: (w: Watch, latest: number[]) => boolean, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!ok(state.watch, [...state.latest.values()])) {
    if (state.error) throw state.error;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Every audit event (the API pages them by id, 1,000 at a time). */
async function allEvents(admin: Client): Promise<{ id: number; revision: number; resource: string; action: string; name: string }[]> {
  const all = [];
  for (let since = 0; ; ) {
    const { items } = await admin.call('listEvents', { query: { since, limit: 1000 } });
    all.push(...items);
    if (items.length < 1000) return all;
    since = items.at(-1)!.id;
  }
}

/** Polls until every instance runs at `revision` with the rollout done; a failed rollout throws. */
async function settledAt(admin: Client, name: string, revision: number, count: number): Promise<Service> {
  const end = Date.now() + 120_000;
  for (;;) {
    const s = await admin.call('getService', { params: { name } });
    if (s.rollout.state === 'failed') throw new Error(`service ${name}: rollout ${s.rollout.message}`);
    if (s.rollout.state === 'done' && s.revision === revision && s.instances.length === count && s.instances.every((i) => i.state === 'running' && i.revision === revision)) return s;
    if (Date.now() > end) throw new Error(`service ${name} not settled at revision ${revision} within 120 s (rollout ${s.rollout.state}, ${s.instances.filter((i) => i.state === 'running').length} running)`);
    await sleep(20);
  }
}

/** Starts its own `butter server`, runs the figure against it, and stops it. */
export async function benchServiceRollout(o: ServiceRolloutOptions = SERVICE_ROLLOUT_DEFAULTS, log: (m: string) => void = () => {}): Promise<ServiceRolloutResult> {
  return withServerProcess(log, (server) => measure(server, o, log));
}

async function measure(server: ServerProcess, o: ServiceRolloutOptions, log: (m: string) => void): Promise<ServiceRolloutResult> {
  const { admin } = server;
  const dir = mkdtempSync(join(tmpdir(), 'butter-bench-rollout-'));
  const agents: Agent[] = [];
  const state: WatchState = { watch: { samples: 0, maxMissing: 0, maxIps: 0 }, latest: new Map(), stopped: false };
  let watching: Promise<void[]> | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      state.stopped = true;
      await within(watching ?? Promise.resolve([]), 5_000, undefined);
      await within(Promise.all(agents.map((a) => a.stop())), 30_000, undefined);
      rmSync(dir, { recursive: true, force: true });
    })());
  const undo = registerCleanup(`${o.nodes} simulated agents in ${dir}`, stopAll);
  try {
    const names = Array.from({ length: o.nodes }, (_, i) => `sim-${i + 1}`);
    for (const [i, name] of names.entries()) {
      const { token } = await admin.call('createNode', { body: { name } });
      await admin.call('updateNode', { params: { name }, body: { zone: `zone-${(i % o.zones) + 1}` } });
      const stateDir = join(dir, name);
      mkdirSync(stateDir);
      const agent = new Agent({ client: server.client(token), node: name, stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'simulated node' }, capacity: { cpus: 16, memoryBytes: 32 * GiB, diskBytes: 500 * GiB } });
      agents.push(agent);
      await agent.start();
    }
    const blob = await admin.uploadBlob(Readable.from([Buffer.alloc(64 * 1024, 0x5a)]));
    await admin.call('createImage', { body: { name: 'bench', kind: 'disk', disk: blob.sha256 } });
    await admin.call('createNetwork', { body: { name: NETWORK, cidr: '10.81.0.0/16' } });
    const name = 'app';
    await admin.call('createService', { body: { network: NETWORK, name, blueprint: blueprint(o), files, vars: { Version: 1 } } });
    let s = await settledAt(admin, name, 1, o.instances);
    log(`${o.instances} instances running on ${new Set(s.instances.map((i) => i.node)).size} of ${o.nodes} agents`);

    watching = watchDns(admin, names, name, o.instances, state);
    const full = (_w: Watch, latest: number[]) => latest.length > 0 && latest.every((n) => n === o.instances);
    await waitWatch(state, full, `the DNS answer to hold ${o.instances} addresses before the update`);

    // The watchers can see an instance go missing: one is stopped, then started again.
    state.watch = { samples: 0, maxMissing: 0, maxIps: 0 };
    const probe = s.instances[0]!.name;
    await admin.call('stopVm', { params: { name: probe } });
    await waitWatch(state, (w) => w.maxMissing >= 1, `the DNS answer to lose ${probe} when it stopped`);
    await admin.call('startVm', { params: { name: probe } });
    s = await settledAt(admin, name, 1, o.instances);
    await waitWatch(state, full, `the DNS answer to hold ${o.instances} addresses again`);
    log(`the watchers saw ${probe} leave the DNS answer when stopped, and come back`);

    const phase = async (what: string, start: () => Promise<Service>, revision: number): Promise<RolloutPhase> => {
      const since = (await admin.call('health', {})).revision;
      state.watch = { samples: 0, maxMissing: 0, maxIps: 0 };
      const t0 = performance.now();
      await start();
      s = await settledAt(admin, name, revision, o.instances);
      const ms = round(performance.now() - t0, 1);
      await sleep(1000); // what the nodes are sent right after counts too
      if (state.error) throw new Error(`watching the DNS answers failed: ${state.error.message}`);
      const w = state.watch;
      // Replacements take the lowest free index, so names come back: count the VMs made instead.
      const events = (await allEvents(admin)).filter((e) => e.revision > since);
      const replaced = events.filter((e) => e.resource === 'vm' && e.action === 'create' && e.name.startsWith(`${name}-`)).length;
      const r = { ms, replaced, samples: w.samples, maxMissing: w.maxMissing, maxIps: w.maxIps };
      log(`${what}: ${r.replaced} instances replaced in ${ms} ms; ${w.samples} DNS answers sent, at most ${w.maxMissing} missing (at most ${w.maxIps} addresses)`);
      return r;
    };
    const update = await phase('update (Version 1 → 2)', () => admin.call('updateService', { params: { name }, body: { blueprint: blueprint(o), files, vars: { Version: 2 } } }), 2);
    const rollback = await phase('rollback to revision 1', () => admin.call('rollbackService', { params: { name }, body: { to: 1 } }), 1);
    return { nodes: o.nodes, zones: o.zones, instances: o.instances, update, rollback, transport: server.transport, options: o };
  } finally {
    await stopAll();
    undo();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await benchServiceRollout(undefined, (m) => console.log(m)), null, 2));
