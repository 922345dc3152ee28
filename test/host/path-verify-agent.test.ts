/**
 * `path verify`'s probes through everything the agent's network host applies (issue 14), on a
 * real kernel: a "machine" namespace with one network built by `LinuxNetworkHost.apply` (bridge,
 * gateway namespace, dnsmasq, `inet butter`, `bridge butter`, `inet butter_paths`,
 * `inet butter_publish` with a published port), two service instances as namespaces on veths
 * standing in for taps. The planner's probes agree with the paths, no instance sees one, and
 * after a path is removed by a new apply the same plan, made before, is caught disagreeing.
 * (test/host/path-verify.test.ts has the probe's design checks; this one is the agent's real rules.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { LinuxNetworkHost } from '../../src/agent/host/linux-network.ts';
import { NetnsExec } from '../../src/agent/host/netns-exec.ts';
import type { LocalNetwork } from '../../src/agent/host/network.ts';
import { runProbes } from '../../src/agent/host/path-probe.ts';
import type { DesiredPath, DesiredPublished } from '../../src/api/schemas/desired.ts';
import { UPLINK_TABLE_BASE, uplinkOf } from '../../src/core/gateway-ns.ts';
import type { PathModel } from '../../src/core/paths/model.ts';
import { compareResults, planVerify } from '../../src/core/paths/verify-plan.ts';
import { requires } from '../requires.ts';

const id = randomBytes(3).toString('hex');
const M = `bt-pvam-${id}`;
const WEB = `bt-pvaw-${id}`;
const DB = `bt-pvad-${id}`;
const GW = `bt-pvag-${id}-`;
const BRIDGE = `btv${id}`;
const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/dnsmasq') && existsSync('/usr/sbin/nft') && existsSync('/proc/sys/net/bridge');
const skip = requires(canRun, 'needs root, dnsmasq, nft and br_netfilter');
const sys = new SystemExec();
const machine = new NetnsExec(sys, M);
const inNs = (ns: string, ...args: string[]) => sys.run('ip', ['netns', 'exec', ns, ...args]);
let work: string;
let host: LinuxNetworkHost;

const WEB_IP = '10.232.0.20';
const DB_IP = '10.232.0.33';
const ports = [
  { tap: `vw${id}`, mac: '52:54:00:3c:00:20', ip: WEB_IP, hostname: 'web-1', ns: WEB },
  { tap: `vd${id}`, mac: '52:54:00:3c:00:33', ip: DB_IP, hostname: 'db-1', ns: DB },
];
const services = [
  { name: 'web', ips: [WEB_IP], block: '10.232.0.16/28' },
  { name: 'db', ips: [DB_IP], block: '10.232.0.32/29' },
];
const WEB_DB: DesiredPath = { from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [5432, 5432] };
const NET_WEB: DesiredPath = { from: { cidr: '0.0.0.0/0' }, to: 'web', proto: 'tcp', ports: [80, 80] };
const DB_DB: DesiredPath = { from: { service: 'db' }, to: 'db', proto: 'udp', ports: [7946, 7946] };
const published: DesiredPublished[] = [{ network: 'lan', service: 'web', proto: 'tcp', ports: [80, 80], hostPorts: [8080, 8080], sources: ['0.0.0.0/0'], backends: [{ ip: WEB_IP, node: 'm' }] }];
const lan = (paths: DesiredPath[]): LocalNetwork => ({
  name: 'lan',
  bridge: BRIDGE,
  cidr: '10.232.0.0/24',
  gateway: '10.232.0.1',
  mtu: 1500,
  nat: false,
  dnsForward: false,
  ports: ports.map(({ ns: _ns, ...p }) => p),
  gatewayPort: `bg${id}`,
  uplink: { device: `bu${id}`, ...uplinkOf(102), table: UPLINK_TABLE_BASE + 102 },
  services,
  paths,
});
const apply = (paths: DesiredPath[]) => host.apply([lan(paths)], { node: 'm', published });
const model = (paths: DesiredPath[]): PathModel => ({ services: services.map((s) => ({ network: 'lan', name: s.name, block: s.block })), paths: paths.map((p) => ({ network: 'lan', ...p })) });
const instances = ports.map((p) => ({ service: p.hostname.split('-')[0]!, node: 'm', ip: p.ip, mac: p.mac }));

before(async () => {
  if (!canRun) return;
  work = mkdtempSync(join(tmpdir(), 'bt-pva-'));
  chmodSync(work, 0o755); // dnsmasq (nobody) reads its files under it
  for (const ns of [M, WEB, DB]) {
    await sys.run('ip', ['netns', 'add', ns]);
    await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  for (const p of ports) {
    await sys.run('ip', ['link', 'add', p.tap, 'netns', M, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns]);
    await inNs(p.ns, 'ip', 'link', 'set', 'eth0', 'address', p.mac, 'up');
    await inNs(p.ns, 'ip', 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0');
  }
  host = new LinuxNetworkHost({ exec: machine, stateDir: join(work, 'state'), netnsPrefix: GW });
});

after(async () => {
  if (!canRun || !work) return;
  await host.teardown().catch(() => {});
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    try {
      if (Number.isInteger(pid) && pid !== process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(work)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const ns of readdirSync('/run/netns').filter((n) => n.startsWith(GW))) await sys.run('ip', ['netns', 'del', ns], { allowFail: true });
  for (const ns of [WEB, DB, M]) await sys.run('ip', ['netns', 'del', ns], { allowFail: true });
  rmSync(work, { recursive: true, force: true });
});

async function guestCounters(): Promise<string> {
  const out: string[] = [];
  for (const ns of [WEB, DB]) {
    const snmp = (await inNs(ns, 'cat', '/proc/net/snmp')).stdout.split('\n');
    for (const proto of ['Tcp:', 'Udp:']) {
      const [names, values] = snmp.filter((l) => l.startsWith(proto)).map((l) => l.split(/\s+/));
      for (const k of ['InSegs', 'InDatagrams', 'NoPorts']) if (names!.includes(k)) out.push(`${ns} ${proto}${k}=${values![names!.indexOf(k)]}`);
    }
  }
  return out.join(' ');
}

test("the probes through the agent's own rules agree with the paths; a path removed by the next apply is caught", { skip }, async () => {
  const paths = [WEB_DB, NET_WEB, DB_DB];
  await apply(paths);
  const tables = (await machine.run('nft', ['list', 'tables'])).stdout;
  for (const t of ['inet butter', 'bridge butter', 'inet butter_paths', 'inet butter_publish']) assert.ok(tables.includes(`table ${t}\n`), `${t} is loaded:\n${tables}`);

  const plan = planVerify(model(paths), 'lan', instances);
  const allowed = plan.probes.filter((p) => p.expect).map((p) => `${p.from}->${p.to}:${p.port}/${p.proto}`);
  assert.deepEqual(allowed, ['db->db:7946/udp', 'web->db:5432/tcp', 'db->web:80/tcp', 'web->web:80/tcp']);
  const seen = await guestCounters();
  const report = compareResults(plan, [{ node: 'm', admitted: await runProbes(machine, BRIDGE, plan.batches[0]!.probes) }]);
  assert.deepEqual(report.disagreements, []);
  assert.equal(report.ok, true);
  assert.equal(await guestCounters(), seen, 'no probe reached an instance');

  // The node now enforces fewer paths than the plan (made from the old model) says.
  await apply([NET_WEB, DB_DB]);
  const stale = compareResults(plan, [{ node: 'm', admitted: await runProbes(machine, BRIDGE, plan.batches[0]!.probes) }]);
  assert.deepEqual(
    stale.disagreements.map((d) => `${d.from}->${d.to}:${d.port} expected ${d.expected}, ${d.observed}`),
    ['web->db:5432/tcp expected allowed, dropped'],
  );
  const left = JSON.parse((await machine.run('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[];
  assert.deepEqual(left.filter((l) => l.ifname.startsWith('bprobe')), []);
  assert.ok(!(await machine.run('nft', ['list', 'tables'])).stdout.includes('butter_probe'));
});
