/**
 * A service's DNS name on a real dnsmasq: LinuxNetworkHost builds a network inside a
 * throwaway namespace (the "host"), a second namespace plays a VM on its bridge, and asks the
 * network's gateway (dnsmasq) by UDP from there (dns-query.ts). The service's addresses are
 * names only: no packet goes to them. Nothing here has a route out of the namespaces.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SystemExec, type ExecOptions } from '../../src/agent/host/exec.ts';
import { LinuxNetworkHost } from '../../src/agent/host/linux-network.ts';
import { NetnsExec } from '../../src/agent/host/netns-exec.ts';
import type { LocalNetwork } from '../../src/agent/host/network.ts';
import { UPLINK_TABLE_BASE, uplinkOf } from '../../src/core/gateway-ns.ts';
import { requires } from '../requires.ts';
import { RCODE_NOERROR, RCODE_NXDOMAIN, type DnsAnswer } from './dns-query.ts';

const id = randomBytes(3).toString('hex');
const NS = `bt-sdns-${id}`;
const GUEST = `bt-sdg-${id}`;
const VETH_HOST = `vs${id}`;
const VETH_GUEST = `vt${id}`;
const GUEST_MAC = '52:54:00:3b:00:0a';
const GW = `bt-sgw-${id}-`;
const DNS = '10.232.0.1';
const QUERY = fileURLToPath(new URL('./dns-query.ts', import.meta.url));

/** Three instances of service `api`; their VMs run on other nodes (names only). */
const A = '10.232.0.21';
const B = '10.232.0.22';
const C = '10.232.0.23';
const instances = [
  { ip: A, hostname: 'api-1' },
  { ip: B, hostname: 'api-2' },
  { ip: C, hostname: 'api-3' },
];

const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/dnsmasq');
const skip = requires(canRun, 'needs root and dnsmasq');
const sys = new SystemExec();

let work: string;
let stateDir: string;
let host: LinuxNetworkHost;

const net = (ips: string[]): LocalNetwork => ({
  name: 'svc',
  bridge: `bts${id}`,
  cidr: '10.232.0.0/24',
  gateway: DNS,
  mtu: 1400,
  nat: false,
  dnsForward: false,
  ports: [{ tap: VETH_HOST, mac: GUEST_MAC, ip: '10.232.0.10', hostname: 'client' }],
  remoteNames: instances,
  services: [{ name: 'api', ips }],
  gatewayPort: `bgs${id}`,
  uplink: { device: `bus${id}`, ...uplinkOf(102), table: UPLINK_TABLE_BASE + 102 },
});

const inGuest = (args: string[], opts?: ExecOptions) => sys.run('ip', ['netns', 'exec', GUEST, ...args], opts);
/** The command that runs dns-query.ts inside the guest, with this process's loader (tsx). */
const queryArgv = (...args: string[]) => ['netns', 'exec', GUEST, process.execPath, ...process.execArgv, QUERY, ...args];

/** One question from inside the guest. */
async function ask(name: string, type: 'A' | 'PTR' = 'A'): Promise<DnsAnswer> {
  const r = await sys.run('ip', queryArgv('once', DNS, name, type), { timeoutMs: 30_000 });
  return JSON.parse(r.stdout) as DnsAnswer;
}
const sorted = (a: DnsAnswer) => [...a.records].sort();

function dnsmasqPid(): number | undefined {
  const pidFile = join(stateDir, 'net/svc/dnsmasq.pid');
  return existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined;
}

function mentions(pid: number, text: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
  } catch {
    return false;
  }
}

before(async () => {
  if (!canRun) return;
  work = mkdtempSync(join(tmpdir(), 'bt-sdns-'));
  stateDir = join(work, 'state');
  chmodSync(work, 0o755); // dnsmasq, unprivileged, rereads its files under it
  process.umask(0o077); // as the agent runs (daemon/private-files.ts)
  await sys.run('ip', ['netns', 'add', NS]);
  await sys.run('ip', ['netns', 'add', GUEST]);
  await sys.run('ip', ['link', 'add', VETH_HOST, 'netns', NS, 'type', 'veth', 'peer', 'name', VETH_GUEST, 'netns', GUEST]);
  await inGuest(['ip', 'link', 'set', VETH_GUEST, 'address', GUEST_MAC, 'up']);
  // Its reserved address, set by hand: this test is about DNS, not DHCP.
  await inGuest(['ip', 'addr', 'add', '10.232.0.10/24', 'dev', VETH_GUEST]);
  host = new LinuxNetworkHost({ exec: new NetnsExec(sys, NS), stateDir, netnsPrefix: GW });
});

after(async () => {
  if (!canRun || !work) return;
  // dnsmasq and any prober left by a failure, by pid: a live process keeps its namespace.
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (Number.isInteger(pid) && pid !== process.pid && (mentions(pid, work) || mentions(pid, QUERY))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await sys.run('ip', ['netns', 'del', GUEST], { allowFail: true });
  for (const name of readdirSync('/run/netns').filter((n) => n.startsWith(GW))) await sys.run('ip', ['netns', 'del', name], { allowFail: true });
  await sys.run('ip', ['netns', 'del', NS], { allowFail: true });
  rmSync(work, { recursive: true, force: true });
});

test('a service of two running instances answers both addresses by its name; each instance keeps its own name', { skip }, async () => {
  await host.apply([net([A, B])]);
  const both = await ask('api.svc.internal');
  assert.equal(both.rcode, RCODE_NOERROR);
  assert.deepEqual(sorted(both), [A, B]);
  assert.deepEqual((await ask('api-1.svc.internal')).records, [A]);
  assert.deepEqual((await ask('api-3.svc.internal')).records, [C]);
  // The reverse name of an instance's address is its VM's, not the service's.
  assert.deepEqual((await ask('21.0.232.10.in-addr.arpa', 'PTR')).records, ['api-1.svc.internal']);
});

test('down to one address it answers one; down to none, NXDOMAIN, not the last address', { skip }, async () => {
  const pid = dnsmasqPid();
  await host.apply([net([B])]);
  assert.deepEqual((await ask('api.svc.internal')).records, [B]);
  await host.apply([net([])]);
  const none = await ask('api.svc.internal');
  assert.deepEqual(none, { rcode: RCODE_NXDOMAIN, records: [] });
  // The instances' own names stay.
  assert.deepEqual((await ask('api-2.svc.internal')).records, [B]);
  assert.equal(dnsmasqPid(), pid, 'reloaded (SIGHUP), never restarted');
});

test('while the instances switch between {a,b} and {b,c} again and again, every answer is one of the two sets, never none', { skip }, async (t) => {
  await host.apply([net([A, B])]);
  const pid = dnsmasqPid();
  const prober = spawn('ip', queryArgv('loop', DNS, 'api.svc.internal'), { stdio: ['pipe', 'pipe', 'pipe'] });
  const answers: (DnsAnswer | { error: string })[] = [];
  let partial = '';
  let stderr = '';
  prober.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) answers.push(JSON.parse(l) as DnsAnswer | { error: string });
  });
  prober.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => prober.once('exit', resolve));
  /** Waits until the prober has seen `want` answered (the reload landed), or gives up. */
  const seen = async (want: string[], from: number): Promise<boolean> => {
    for (let i = 0; i < 600; i++) {
      if (answers.slice(from).some((a) => 'records' in a && sorted(a).join() === want.join())) return true;
      if (prober.exitCode !== null) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  };
  try {
    assert.ok(await seen([A, B], 0), `the prober answers: ${stderr}`);
    for (let round = 0; round < 10; round++) {
      const want = round % 2 === 0 ? [B, C] : [A, B];
      const from = answers.length;
      await host.apply([net(want)]);
      assert.ok(await seen(want, from), `round ${round}: the name comes to answer ${want.join(', ')}`);
    }
  } finally {
    prober.stdin.end();
    const code = await exited;
    assert.equal(code, 0, `the prober ended cleanly: ${stderr}`);
  }
  const bad = answers.filter((a) => !('records' in a) || a.rcode !== RCODE_NOERROR || ![`${A},${B}`, `${B},${C}`].includes(sorted(a).join()));
  t.diagnostic(`${answers.length} answers over 10 switches`);
  assert.deepEqual(bad, [], `of ${answers.length} answers, these were neither {a,b} nor {b,c}`);
  assert.equal(dnsmasqPid(), pid, 'reloaded (SIGHUP), never restarted');
});
