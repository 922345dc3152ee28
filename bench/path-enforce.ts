/**
 * Path change → enforcement on a remote node (issue 14): a control plane and two real agents
 * whose network hosts (`LinuxNetworkHost`: bridge, gateway namespace, dnsmasq, `inet butter`,
 * `inet butter_paths`, ...) each live in a "machine" network namespace. Services `web` (on n1)
 * and `db` (on n2) have one simulated instance each: the network host makes its tap, no QEMU
 * runs. On n2, a probe port on the network's bridge (the design of `path verify`'s probe,
 * core/paths/probe-table.ts) sends a TCP SYN from web's address to db's address:5432 every
 * 10 ms, and a bridge table counts each probe twice: before the `inet` forward hook runs
 * (priority -100: sent) and after it admitted the packet (priority 100: admitted, then
 * dropped, so nothing reaches anyone). So the verdict is that of n2's real `inet butter_paths`,
 * as n2's agent applied it from its desired state.
 *
 * Each round: `paths.add(web, db, 5432)`, clock until the admitted counter moves; then
 * `paths.remove`, clock until a probe is sent and not admitted. The time includes the API
 * call, the control plane's commit, the agent's watch, its apply and `nft -f`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent } from '../src/agent/agent.ts';
import { SystemExec } from '../src/agent/host/exec.ts';
import { LinuxNetworkHost } from '../src/agent/host/linux-network.ts';
import { NetnsExec } from '../src/agent/host/netns-exec.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { bridgeName } from '../src/core/vm-spec.ts';
import { createControlPlane } from '../src/server/control-plane.ts';
import { Client } from '../src/sdk/client.ts';
import { Butter } from '../src/sdk/connect.ts';
import { registerCleanup } from './cleanup.ts';

export interface PathEnforceResult {
  rounds: number;
  /** Per round: from calling `paths.add` to the first probe admitted on db's node. */
  addMs: number[];
  /** Per round: from calling `paths.remove` to the first probe dropped there. */
  removeMs: number[];
  add: { p50Ms: number; p99Ms: number };
  remove: { p50Ms: number; p99Ms: number };
  /** How often the counters were read (median gap): the figures' resolution, with the 10 ms probes. */
  pollMs: number;
  nodes: { web: string; db: string };
}

const GiB = 1024 ** 3;
const NETWORK = 'lan';
const blueprint = `network: { subnetwork_max_instance_count: 8 }
placement: { availability_zones: 1 }
instance: { memory: 256M, cpus: 1 }
image: { name: bench }
initialization:
  - path: app.sh
count: 1
`;
const files = { 'app.sh': '#!/bin/sh\necho "{{ service }}"\n' };

/** Sends a SYN every 10 ms from `src` (each a new connection, dropped after 200 ms: its retransmits never come). */
const SENDER = `
const net = require('node:net');
const [src, dst, port] = process.argv.slice(1);
setInterval(() => {
  const s = net.connect({ host: dst, port: Number(port), localAddress: src });
  s.on('error', () => {});
  setTimeout(() => s.destroy(), 200);
}, 10);
`;

function sh(args: string[], allowFail = false, input?: string): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 60_000, ...(input === undefined ? {} : { input }) });
  if (r.status !== 0 && !allowFail) throw new Error(`${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchPathEnforce(o = { rounds: 20 }, log: (m: string) => void = () => {}): Promise<PathEnforceResult> {
  const id = randomBytes(2).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'butter-bench-paths-'));
  chmodSync(dir, 0o755); // dnsmasq (nobody) reads its files under it
  const sys = new SystemExec();
  const nodes = [1, 2].map((i) => ({ name: `n${i}`, ns: `bm-pe${i}-${id}`, gw: `bm-peg${i}${id}-`, agent: undefined as Agent | undefined, host: undefined as LinuxNetworkHost | undefined }));
  const probeNs = `bm-pep-${id}`;
  const port = `bpe${id}`;
  const table = `bench_paths_${id}`;
  let sender: ChildProcess | undefined;
  // The agents' own log, kept to say why when something is not seen in time.
  const agentLog: string[] = [];
  const keep = (node: string) => (m: string) => {
    agentLog.push(`${node}: ${m}`);
    if (agentLog.length > 20) agentLog.shift();
  };
  const why = () => (agentLog.length ? `; the agents said last: ${agentLog.slice(-5).join(' | ')}` : '');
  const cp = createControlPlane({ dataDir: join(dir, 'cp') });
  const cleanup = async () => {
    sender?.kill('SIGKILL');
    for (const n of nodes) await n.agent?.stop().catch(() => {});
    for (const n of nodes) await n.host?.teardown().catch(() => {});
    // dnsmasq of the networks (their files are under dir), should teardown have missed one.
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      try {
        if (Number.isInteger(pid) && pid !== process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    sh(['ip', 'netns', 'del', probeNs], true);
    const all = sh(['ip', 'netns', 'list'], true);
    for (const n of nodes) for (const line of all.split('\n')) if (line.startsWith(n.gw)) sh(['ip', 'netns', 'del', line.split(' ')[0]!], true);
    for (const n of nodes) sh(['ip', 'netns', 'del', n.ns], true);
    await cp.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  const undo = registerCleanup(`path-enforce namespaces ${id}`, cleanup);
  try {
    const url = await cp.listen('127.0.0.1', 0);
    const admin = new Butter({ url, token: cp.adminToken! });
    for (const n of nodes) {
      sh(['ip', 'netns', 'add', n.ns]);
      sh(['ip', '-n', n.ns, 'link', 'set', 'lo', 'up']);
      const { token } = await admin.call('createNode', { body: { name: n.name } });
      await admin.call('updateNode', { params: { name: n.name }, body: { zone: 'z1' } });
      const stateDir = join(dir, n.name);
      mkdirSync(stateDir);
      n.host = new LinuxNetworkHost({ exec: new NetnsExec(sys, n.ns), stateDir: join(stateDir, 'net'), netnsPrefix: n.gw, mark: `bench-${id}`, log: keep(n.name) });
      n.agent = new Agent({
        client: new Client({ url, token }),
        node: n.name,
        stateDir,
        driver: new SimDriver({ stateDir }),
        network: n.host,
        noEgress: true,
        accel: { accel: 'tcg', reason: 'paths benchmark' },
        capacity: { cpus: 16, memoryBytes: 32 * GiB, diskBytes: 500 * GiB },
        log: keep(n.name),
      });
      await n.agent.start();
    }
    const blob = await admin.uploadBlob(Readable.from([Buffer.alloc(64 * 1024, 0x5a)]));
    await admin.call('createImage', { body: { name: 'bench', kind: 'disk', disk: blob.sha256 } });
    await admin.call('createNetwork', { body: { name: NETWORK, cidr: '10.233.0.0/24' } });
    // db on n2, web on n1: the other node is cordoned while each is placed.
    const place = async (service: string, on: string, off: string) => {
      await admin.call('cordonNode', { params: { name: off } });
      await admin.call('createService', { body: { network: NETWORK, name: service, blueprint, files } });
      await admin.call('uncordonNode', { params: { name: off } });
      const t0 = performance.now();
      for (;;) {
        const s = await admin.call('getService', { params: { name: service } });
        const i = s.instances[0];
        if (i?.state === 'running' && i.ip) {
          if (i.node !== on) throw new Error(`${service} was placed on ${i.node}, not ${on}`);
          const vm = await admin.call('getVm', { params: { name: i.name } });
          return { ip: i.ip, mac: vm.nics[0]!.mac };
        }
        if (performance.now() - t0 > 30_000) throw new Error(`${service} has no running instance after 30 s${why()}`);
        await sleep(50);
      }
    };
    const db = await place('db', 'n2', 'n1');
    const web = await place('web', 'n1', 'n2');
    const n2 = nodes[1]!;
    const bridge = bridgeName(NETWORK);
    // n2's agent has built the network and loaded its paths table (default deny for db).
    for (const t0 = performance.now(); ; await sleep(50)) {
      const tables = sh(['ip', 'netns', 'exec', n2.ns, 'nft', 'list', 'tables'], true);
      const hasBridge = spawnSync('ip', ['-n', n2.ns, 'link', 'show', 'dev', bridge]).status === 0;
      if (hasBridge && tables.includes('table inet butter_paths')) break;
      if (performance.now() - t0 > 30_000) throw new Error(`n2 has not built ${NETWORK} after 30 s${why()}`);
    }
    log(`db ${db.ip} on n2, web ${web.ip} on n1; probing ${web.ip} → ${db.ip}:5432 on n2's ${bridge}`);

    // The probe port, as path-probe.ts makes it: counted and dropped before it is on the bridge.
    const match = `iifname "${port}" ip saddr ${web.ip} ip daddr ${db.ip} tcp dport 5432`;
    sh(['ip', 'netns', 'exec', n2.ns, 'nft', '-f', '-'], false, [
      `table bridge ${table} {`,
      // Declared (and listed) before `admitted`: a reading never counts a packet as sent but not yet admitted that was admitted.
      '\tcounter sent {\n\t}',
      '\tcounter admitted {\n\t}',
      '\tchain early {\n\t\ttype filter hook forward priority -100; policy accept;',
      `\t\t${match} counter name "sent"`,
      '\t}',
      '\tchain late {\n\t\ttype filter hook forward priority 100; policy accept;',
      `\t\t${match} counter name "admitted" drop`,
      `\t\tiifname "${port}" drop`,
      '\t}',
      '\tchain input {\n\t\ttype filter hook input priority filter; policy accept;',
      `\t\tiifname "${port}" drop`,
      '\t}',
      '}',
      '',
    ].join('\n'));
    sh(['ip', 'netns', 'add', probeNs]);
    for (const key of ['all', 'default']) sh(['ip', 'netns', 'exec', probeNs, 'sysctl', '-qw', `net.ipv6.conf.${key}.disable_ipv6=1`], true);
    sh(['ip', '-n', n2.ns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'probe', 'netns', probeNs]);
    sh(['ip', '-n', probeNs, 'link', 'set', 'dev', 'probe', 'arp', 'off', 'up']);
    sh(['ip', '-n', n2.ns, 'link', 'set', 'dev', port, 'master', bridge, 'up']);
    sh(['ip', '-n', probeNs, 'addr', 'add', `${web.ip}/32`, 'dev', 'probe']);
    sh(['ip', '-n', probeNs, 'route', 'replace', 'default', 'dev', 'probe']);
    sh(['ip', '-n', probeNs, 'neigh', 'replace', db.ip, 'lladdr', db.mac, 'dev', 'probe', 'nud', 'permanent']);
    sender = spawn('ip', ['netns', 'exec', probeNs, process.execPath, '-e', SENDER, web.ip, db.ip, '5432'], { stdio: 'ignore' });

    const gaps: number[] = [];
    let lastRead = 0;
    const read = async (): Promise<{ sent: number; admitted: number }> => {
      const out = await sys.run('ip', ['netns', 'exec', n2.ns, 'nft', 'list', 'counters', 'table', 'bridge', table]);
      const now = performance.now();
      if (lastRead) gaps.push(now - lastRead);
      lastRead = now;
      const get = (name: string) => Number(new RegExp(`counter ${name} \\{\\s*packets (\\d+)`).exec(out.stdout)?.[1] ?? NaN);
      return { sent: get('sent'), admitted: get('admitted') };
    };
    /** Reads every ~10 ms until `done`; the time of the reading that saw it, from `t0`. */
    const until = async (t0: number, what: string, done: (c: { sent: number; admitted: number }) => boolean): Promise<number> => {
      lastRead = 0;
      for (;;) {
        const c = await read();
        if (done(c)) return Math.round(lastRead - t0);
        if (performance.now() - t0 > 10_000) throw new Error(`${what}: not seen after 10 s (sent ${c.sent}, admitted ${c.admitted})${why()}`);
        await sleep(10);
      }
    };
    // Default deny first: probes go out and none is admitted.
    const start = await read();
    await sleep(300);
    const quiet = await read();
    if (!(quiet.sent > start.sent)) throw new Error(`the probes do not reach n2's bridge (sent ${start.sent} → ${quiet.sent})`);
    if (quiet.admitted !== 0) throw new Error(`a probe was admitted with no path (${quiet.admitted})`);

    const addMs: number[] = [];
    const removeMs: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const before = await read();
      let t0 = performance.now();
      await admin.paths.add('web', 'db', 5432);
      addMs.push(await until(t0, `round ${r + 1}: path add`, (c) => c.admitted > before.admitted));
      await sleep(100);
      const held = await read();
      t0 = performance.now();
      await admin.paths.remove('web', 'db', 5432);
      removeMs.push(await until(t0, `round ${r + 1}: path remove`, (c) => c.sent - c.admitted > held.sent - held.admitted));
      log(`round ${r + 1}: admitted ${addMs.at(-1)} ms after add, dropped ${removeMs.at(-1)} ms after remove`);
      await sleep(100);
    }
    const sa = [...addMs].sort((a, b) => a - b);
    const sr = [...removeMs].sort((a, b) => a - b);
    const sg = [...gaps].sort((a, b) => a - b);
    return {
      rounds: o.rounds,
      addMs,
      removeMs,
      add: { p50Ms: quantile(sa, 0.5), p99Ms: quantile(sa, 0.99) },
      remove: { p50Ms: quantile(sr, 0.5), p99Ms: quantile(sr, 0.99) },
      pollMs: Math.round(quantile(sg, 0.5)),
      nodes: { web: 'n1', db: 'n2' },
    };
  } finally {
    await cleanup();
    undo();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchPathEnforce({ rounds: Number(process.env.ROUNDS ?? 20) }, (m) => console.log(m)), null, 2));
}
