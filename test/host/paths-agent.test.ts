/**
 * Paths as the agent's network host applies them (issue 14), on a real kernel, in throwaway
 * namespaces: a "machine" with one network (bridge, gateway namespace, dnsmasq) whose two
 * service instances are namespaces wired to the bridge by veths standing in for taps, and an
 * "outside" namespace on the machine's underlay, with two addresses. Through
 * `LinuxNetworkHost.apply` only: default deny between services until a path, a path's removal,
 * an unchanged apply that loads no table, an open connection that lives through a change of
 * other paths, and a published port reachable from its sources only, with the client's
 * address kept. (Across nodes, over the mesh: test/host/paths.test.ts, with real agents.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { LinuxNetworkHost } from '../../src/agent/host/linux-network.ts';
import { NetnsExec } from '../../src/agent/host/netns-exec.ts';
import type { HostPolicy, LocalNetwork } from '../../src/agent/host/network.ts';
import type { DesiredPath, DesiredPublished } from '../../src/api/schemas/desired.ts';
import { UPLINK_TABLE_BASE, uplinkOf } from '../../src/core/gateway-ns.ts';
import { requires } from '../requires.ts';
import { SpyExec } from './spy-exec.ts';

const id = randomBytes(3).toString('hex');
const M = `bt-pam-${id}`;
const WEB = `bt-paw-${id}`;
const DB = `bt-pad-${id}`;
const OUT = `bt-pao-${id}`;
const GW = `bt-pag-${id}-`;
const BRIDGE = `btp${id}`;
const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/dnsmasq') && existsSync('/usr/sbin/nft') && existsSync('/proc/sys/net/bridge');
const skip = requires(canRun, 'needs root, dnsmasq, nft and br_netfilter');
const sys = new SystemExec();

let work: string;
let spy: SpyExec;
let host: LinuxNetworkHost;
const procs: ChildProcessWithoutNullStreams[] = [];
const inNs = (ns: string, ...args: string[]) => sys.run('ip', ['netns', 'exec', ns, ...args]);

const WEB_IP = '10.231.0.20';
const DB_IP = '10.231.0.33';
const ports = [
  { tap: `vw${id}`, mac: '52:54:00:3b:00:20', ip: WEB_IP, hostname: 'web-1', ns: WEB },
  { tap: `vd${id}`, mac: '52:54:00:3b:00:33', ip: DB_IP, hostname: 'db-1', ns: DB },
];
const lan = (paths: DesiredPath[]): LocalNetwork => ({
  name: 'lan',
  bridge: BRIDGE,
  cidr: '10.231.0.0/24',
  gateway: '10.231.0.1',
  mtu: 1500,
  nat: false,
  dnsForward: false,
  ports: ports.map(({ ns: _ns, ...p }) => p),
  gatewayPort: `bg${id}`,
  uplink: { device: `bu${id}`, ...uplinkOf(101), table: UPLINK_TABLE_BASE + 101 },
  services: [
    { name: 'web', ips: [WEB_IP], block: '10.231.0.16/28' },
    { name: 'db', ips: [DB_IP], block: '10.231.0.32/29' },
  ],
  paths,
});
const WEB_DB: DesiredPath = { from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [5432, 5432] };
const apply = (paths: DesiredPath[], policy?: HostPolicy) => host.apply([lan(paths)], policy);

before(async () => {
  if (!canRun) return;
  work = mkdtempSync(join(tmpdir(), 'bt-paths-'));
  chmodSync(work, 0o755); // dnsmasq (nobody) reads its files under it
  for (const ns of [M, WEB, DB, OUT]) {
    await sys.run('ip', ['netns', 'add', ns]);
    await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  for (const p of ports) {
    await sys.run('ip', ['link', 'add', p.tap, 'netns', M, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns]);
    await inNs(p.ns, 'ip', 'link', 'set', 'eth0', 'address', p.mac, 'up');
    await inNs(p.ns, 'ip', 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0');
    await inNs(p.ns, 'ip', 'route', 'add', 'default', 'via', '10.231.0.1');
  }
  // The machine's underlay: 198.18.0.2; outside has two addresses, and a route to the network through the machine.
  await sys.run('ip', ['link', 'add', `vo${id}`, 'netns', M, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUT]);
  await inNs(M, 'ip', 'addr', 'add', '198.18.0.2/24', 'dev', `vo${id}`);
  await inNs(M, 'ip', 'link', 'set', `vo${id}`, 'up');
  await inNs(OUT, 'ip', 'addr', 'add', '198.18.0.1/24', 'dev', 'eth0');
  await inNs(OUT, 'ip', 'addr', 'add', '198.18.0.9/24', 'dev', 'eth0');
  await inNs(OUT, 'ip', 'link', 'set', 'eth0', 'up');
  await inNs(OUT, 'ip', 'route', 'add', '10.231.0.0/24', 'via', '198.18.0.2');
  spy = new SpyExec(new NetnsExec(sys, M));
  host = new LinuxNetworkHost({ exec: spy, stateDir: join(work, 'state'), netnsPrefix: GW });
  // Every instance answers on these ports with the address it sees the client at, then echoes.
  for (const p of ports) await serve(p.ns, [80, 81, 5432, 5433]);
});

after(async () => {
  if (!canRun || !work) return;
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    try {
      if (Number.isInteger(pid) && pid !== process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(work)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const ns of [WEB, DB, OUT]) await sys.run('ip', ['netns', 'del', ns], { allowFail: true });
  for (const ns of readdirSync('/run/netns').filter((n) => n.startsWith(GW))) await sys.run('ip', ['netns', 'del', ns], { allowFail: true });
  await sys.run('ip', ['netns', 'del', M], { allowFail: true });
  rmSync(work, { recursive: true, force: true });
});

/** A TCP server on each port: the client's address as it sees it, a newline, then an echo of each line. */
async function serve(ns: string, on: number[]): Promise<void> {
  const script = `import socket, threading
def conn(c, a):
  c.sendall((a[0] + "\\n").encode())
  while True:
    d = c.recv(100)
    if not d: break
    c.sendall(d)
def listen(port):
  s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", port)); s.listen(16)
  while True:
    c, a = s.accept(); threading.Thread(target=conn, args=(c, a), daemon=True).start()
for p in ${JSON.stringify(on)}: threading.Thread(target=listen, args=(p,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()`;
  const proc = spawn('ip', ['netns', 'exec', ns, 'python3', '-u', '-c', script]);
  procs.push(proc);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server in ${ns} did not start`)), 20_000);
    createInterface({ input: proc.stdout }).once('line', () => (clearTimeout(t), resolve()));
  });
}

/** One connection from `ns` (from `src`, if given): the address the server saw, or `refused` / `timeout`. */
async function ask(ns: string, to: string, port: number, src?: string): Promise<string> {
  const bind = src ? `s.bind(("${src}", 0)); ` : '';
  const r = await inNs(
    ns,
    'python3',
    '-c',
    `import socket\ns = socket.socket(); ${bind}s.settimeout(3)\ntry:\n  s.connect(("${to}", ${port})); print(s.makefile().readline().strip() or "closed")\nexcept ConnectionRefusedError: print("refused")\nexcept OSError as e: print("timeout" if "timed out" in str(e) else repr(e))`,
  );
  return r.stdout.trim();
}

test('through the network host: service instances are default-deny; a path opens its port only; its removal closes it; an unchanged apply loads nothing', { skip }, async () => {
  await apply([]);
  assert.equal(await ask(WEB, DB_IP, 5432), 'timeout', 'no path: web cannot reach db:5432');
  await apply([WEB_DB]);
  assert.equal(await ask(WEB, DB_IP, 5432), WEB_IP, 'the path web -> db:5432: db answers, and sees web');
  assert.equal(await ask(WEB, DB_IP, 5433), 'timeout', 'another port of db stays closed');
  assert.equal(await ask(DB, WEB_IP, 80), 'timeout', 'nor is the path the other way round');
  spy.lines.length = 0;
  await apply([WEB_DB]);
  assert.deepEqual(spy.lines.filter((l) => l.includes('nft -f')), [], 'the same paths again: no table is loaded');
  await apply([]);
  assert.equal(await ask(WEB, DB_IP, 5432), 'timeout', 'path removed: closed again');
});

test('an open connection on a path that stays lives through changes of other paths, and is cut when its own goes', { skip }, async () => {
  await apply([WEB_DB]);
  const client = spawn('ip', ['netns', 'exec', WEB, 'python3', '-u', '-c', `import socket, sys\nc = socket.create_connection(("${DB_IP}", 5432), timeout=5); f = c.makefile()\nprint("connected " + f.readline().strip())\nc.settimeout(3)\nfor _ in sys.stdin:\n  c.sendall(b"x\\n")\n  try:\n    print("echo" if f.readline() else "closed")\n  except OSError:\n    print("no answer")`]);
  procs.push(client);
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: client.stdout }).on('line', (l) => (waiting.length ? waiting.shift()!(l) : lines.push(l)));
  const line = () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise<string>((r, j) => { const t = setTimeout(() => j(new Error('no line in 20 s')), 20_000); waiting.push((l) => (clearTimeout(t), r(l))); }));
  const send = () => (client.stdin.write('\n'), line());
  assert.equal(await line(), `connected ${WEB_IP}`);
  assert.equal(await send(), 'echo');
  await apply([WEB_DB, { from: { cidr: '0.0.0.0/0' }, to: 'web', proto: 'tcp', ports: [80, 80] }]);
  assert.equal(await send(), 'echo', 'another path added (the table replaced): the connection flows on');
  await apply([WEB_DB, { from: { service: 'db' }, to: 'web', proto: 'udp', ports: [53, 53] }]);
  assert.equal(await send(), 'echo', 'another path removed, a third added: still flowing');
  await apply([{ from: { cidr: '0.0.0.0/0' }, to: 'web', proto: 'tcp', ports: [80, 80] }]);
  assert.equal(await send(), 'no answer', 'its own path removed: cut at the next packet');
  client.kill('SIGKILL');
});

test("a published port: reachable on the machine's address from its sources only, with the client's address kept; nothing else is", { skip }, async () => {
  const published = (sources: string[]): DesiredPublished => ({ network: 'lan', service: 'web', proto: 'tcp', ports: [80, 80], hostPorts: [8080, 8080], sources, backends: [{ ip: WEB_IP, node: 'm' }] });
  const narrow = { from: { cidr: '198.18.0.1/32' }, to: 'web', proto: 'tcp' as const, ports: [80, 80] as [number, number] };
  await apply([WEB_DB, narrow], { node: 'm', published: [published(['198.18.0.1/32'])] });
  assert.equal(await ask(OUT, '198.18.0.2', 8080, '198.18.0.1'), '198.18.0.1', 'from the path\'s CIDR: web answers, and sees the client\'s own address');
  assert.match(await ask(OUT, '198.18.0.2', 8080, '198.18.0.9'), /^(refused|timeout)$/, 'from another address: web is not reached');
  assert.match(await ask(OUT, '198.18.0.2', 8081, '198.18.0.1'), /^(refused|timeout)$/, 'a port not published: not reached');
  assert.equal(await ask(OUT, WEB_IP, 80, '198.18.0.1'), 'timeout', 'the instance\'s own address: never routed into the network');
  assert.equal(await ask(OUT, DB_IP, 5432, '198.18.0.1'), 'timeout', 'nor another service');
  // The CIDR widened: both addresses get in.
  const wide = { ...narrow, from: { cidr: '198.18.0.0/24' } };
  await apply([WEB_DB, wide], { node: 'm', published: [published(['198.18.0.0/24'])] });
  assert.equal(await ask(OUT, '198.18.0.2', 8080, '198.18.0.9'), '198.18.0.9');
  // Unpublished: gone again.
  await apply([WEB_DB]);
  assert.match(await ask(OUT, '198.18.0.2', 8080, '198.18.0.1'), /^(refused|timeout)$/, 'unpublished: closed');
});
