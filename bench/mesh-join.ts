/**
 * Time from a node joining to full mesh connectivity: a control plane and real agents whose
 * WireGuard ends (`LinuxMeshHost`, wireguard-go) live in network namespaces joined by an
 * underlay bridge. Two nodes form the mesh first; then each new agent starts (its first report
 * carries its public key) and the clock runs until every node pings every other over the mesh.
 *
 * The agents run in this process (simulated driver: no VMs are involved), so their API traffic
 * is over loopback; only their WireGuard interfaces are in the namespaces, and each gives its
 * underlay address as its endpoint (`--wg-endpoint`), since the control plane sees 127.0.0.1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.ts';
import { SystemExec } from '../src/agent/host/exec.ts';
import { LinuxMeshHost } from '../src/agent/host/linux-mesh.ts';
import { NetnsExec } from '../src/agent/host/netns-exec.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { loadOrCreateKey } from '../src/agent/wireguard-key.ts';
import { createControlPlane } from '../src/server/control-plane.ts';
import { Client } from '../src/sdk/client.ts';
import { stopWireguardGo } from '../test/host/wireguard-go.ts';
import { registerCleanup } from './cleanup.ts';

export interface MeshJoinResult {
  /** One per join: milliseconds from the agent's start to every pair pinging over the mesh. */
  joinsMs: number[];
  medianMs: number;
  maxMs: number;
  /** Nodes in the mesh after each join. */
  meshSizes: number[];
}

function sh(args: string[], allowFail = false): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0 && !allowFail) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * When `ns` first gets an answer from `addr`: one `ping` sending every 20 ms, stopped at its
 * first reply, so the probe's own cost (a process per attempt, 20 pairs at once on two cores)
 * does not count as join time. A ping that exits unanswered (no route yet: the interface or its
 * address is not there) is started again, until `deadline`.
 */
async function firstReply(ns: string, addr: string, deadline: number): Promise<number> {
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`no answer from ${addr} in ${ns}`);
    const at = await new Promise<number | undefined>((resolve) => {
      const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-i', '0.02', '-w', String(Math.ceil(left / 1000)), addr], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      let done = false;
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (!done && /bytes from/.test(out)) {
          done = true;
          resolve(performance.now());
          p.kill();
        }
      });
      p.on('exit', () => {
        if (!done) resolve(undefined);
      });
    });
    if (at !== undefined) return at;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function benchMeshJoin(o = { base: 2, joins: 3 }, log: (m: string) => void = () => {}): Promise<MeshJoinResult> {
  const id = randomBytes(2).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'butter-bench-meshjoin-'));
  const sw = `bm-sw-${id}`;
  const nodes: { name: string; ns: string; wg: string; agent?: Agent; mesh?: LinuxMeshHost }[] = [];
  const cp = createControlPlane({ dataDir: join(dir, 'cp') });
  const cleanup = async () => {
    for (const n of nodes) {
      await n.agent?.stop().catch(() => {});
      await n.mesh?.teardown().catch(() => {});
    }
    await stopWireguardGo(nodes.map((n) => ({ ns: n.ns, iface: n.wg })));
    for (const n of nodes) sh(['ip', 'netns', 'del', n.ns], true);
    sh(['ip', 'netns', 'del', sw], true);
    await cp.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  const undo = registerCleanup(`mesh-join namespaces ${id}`, cleanup);
  try {
    const url = await cp.listen('127.0.0.1', 0);
    const admin = new Client({ url, token: cp.adminToken! });
    sh(['ip', 'netns', 'add', sw]);
    sh(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    sh(['ip', '-n', sw, 'link', 'set', 'br0', 'up']);

    const addNode = async (i: number) => {
      const n = { name: `j${i}`, ns: `bm-n${i}-${id}`, wg: `bwj${id}${i}` };
      nodes.push(n);
      sh(['ip', 'netns', 'add', n.ns]);
      sh(['ip', 'link', 'add', `bm${id}h${i}`, 'netns', n.ns, 'type', 'veth', 'peer', 'name', `bm${id}s${i}`, 'netns', sw]);
      sh(['ip', '-n', n.ns, 'addr', 'add', `10.253.0.${10 + i}/24`, 'dev', `bm${id}h${i}`]);
      sh(['ip', '-n', n.ns, 'link', 'set', `bm${id}h${i}`, 'up']);
      sh(['ip', '-n', n.ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', sw, 'link', 'set', `bm${id}s${i}`, 'master', 'br0', 'up']);
      const { token } = await admin.call('createNode', { body: { name: n.name } });
      const stateDir = join(dir, n.name);
      mkdirSync(stateDir);
      const key = loadOrCreateKey(stateDir);
      const mesh = new LinuxMeshHost({ exec: new NetnsExec(new SystemExec(), n.ns), stateDir, key, iface: n.wg, listenPort: 51820 });
      Object.assign(n, { mesh });
      const agent = new Agent({
        client: new Client({ url, token }),
        node: n.name,
        stateDir,
        driver: new SimDriver({ stateDir }),
        accel: { accel: 'tcg', reason: 'mesh benchmark' },
        mesh: { host: mesh, publicKey: key.publicKey, listenPort: 51820, endpoint: `10.253.0.${10 + i}:51820` },
      });
      Object.assign(n, { agent });
      return { n, agent };
    };
    /** Every node's mesh address, as soon as the control plane has given each one. */
    const meshIps = async (ms: number): Promise<Map<string, string>> => {
      const t0 = performance.now();
      for (;;) {
        const ips = new Map((await admin.call('listNodes', {})).items.map((x) => [x.name, x.mesh?.address]));
        if (nodes.every((n) => ips.get(n.name))) return ips as Map<string, string>;
        if (performance.now() - t0 > ms) throw new Error(`a node has no mesh address after ${ms / 1000} s`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    /**
     * Every ordered pair pings (one ping process each, a packet every 20 ms) until it gets an
     * answer; the result is when the last pair first got through, from `t0`.
     */
    const until = async (what: string, t0: number, ms: number): Promise<number> => {
      const ips = await meshIps(ms);
      const pairs = nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => firstReply(a.ns, ips.get(b.name)!, t0 + ms).catch((e: Error) => Promise.reject(new Error(`no full mesh (${what}): ${a.name} → ${b.name}: ${e.message}`)))));
      return Math.max(...(await Promise.all(pairs))) - t0;
    };

    for (let i = 1; i <= o.base; i++) await (await addNode(i)).agent.start();
    await until('the first nodes', performance.now(), 30_000);
    const joinsMs: number[] = [];
    const meshSizes: number[] = [];
    for (let j = 0; j < o.joins; j++) {
      const { agent } = await addNode(o.base + j + 1);
      const t0 = performance.now();
      await agent.start(); // returns after its first report: the join
      const ms = Math.round(await until(`join ${j + 1}`, t0, 30_000));
      joinsMs.push(ms);
      meshSizes.push(nodes.length);
      log(`join ${j + 1}: ${nodes.length} nodes fully meshed ${ms} ms after the new agent started`);
    }
    const sorted = [...joinsMs].sort((a, b) => a - b);
    return { joinsMs, medianMs: sorted[Math.floor(sorted.length / 2)]!, maxMs: sorted.at(-1)!, meshSizes };
  } finally {
    await cleanup();
    undo();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchMeshJoin(undefined, (m) => console.log(m)), null, 2));
}
