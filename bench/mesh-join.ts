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

/** One ping with a short wait, asynchronously (the agents in this process must keep running meanwhile). */
function pings(ns: string, addr: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '0.1', addr], { stdio: 'ignore' });
    p.on('exit', (code) => resolve(code === 0));
  });
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
    const meshIps = async () => new Map((await admin.call('listNodes', {})).items.map((x) => [x.name, x.mesh?.address]));
    /**
     * Every ordered pair pings until it gets an answer, each pair on its own, 100 ms per
     * attempt at most (addresses are read from the API as they appear); the result is when
     * the last pair first got through.
     */
    const until = async (what: string, ms: number): Promise<number> => {
      const t0 = performance.now();
      const pair = async (a: (typeof nodes)[number], b: (typeof nodes)[number]) => {
        for (;;) {
          if (performance.now() - t0 > ms) throw new Error(`no full mesh (${what}) within ${ms / 1000} s: ${a.name} → ${b.name}`);
          const addr = (await meshIps()).get(b.name);
          if (addr && (await pings(a.ns, addr))) return;
        }
      };
      await Promise.all(nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => pair(a, b))));
      return performance.now() - t0;
    };

    for (let i = 1; i <= o.base; i++) await (await addNode(i)).agent.start();
    await until('the first nodes', 30_000);
    const joinsMs: number[] = [];
    const meshSizes: number[] = [];
    for (let j = 0; j < o.joins; j++) {
      const { agent } = await addNode(o.base + j + 1);
      const t0 = performance.now();
      await agent.start(); // returns after its first report: the join
      await until(`join ${j + 1}`, 30_000);
      const ms = Math.round(performance.now() - t0);
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
