import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingExec } from './exec.ts';
import { LinuxNetworkHost, gatewayMac } from './linux-network.ts';
import { bridgeMac } from '../../core/network-macs.ts';
import { gatewayDevices } from '../../core/gateway-ns.ts';
import { NetworkApplyError, type LocalNetwork } from './network.ts';

const web: LocalNetwork = {
  name: 'web',
  bridge: 'bt-web',
  cidr: '10.231.0.0/24',
  gateway: '10.231.0.1',
  mtu: 1450,
  nat: true,
  dnsForward: false,
  ports: [{ tap: 'bt-web-1', mac: '52:54:00:ab:cd:01', ip: '10.231.0.10', hostname: 'vm1' }],
  ...gatewayDevices('web', 101),
};
const NS = 'butter-web';
/** The alias LinuxNetworkHost marks what it makes with (the default). */
const MARK = 'butter';

/** What `ip -j -d addr show` reports once `web` has been applied. */
function appliedLinks(net: LocalNetwork = web): unknown[] {
  return [
    { ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, address: '00:00:00:00:00:00', addr_info: [] },
    { ifname: net.bridge, ifalias: MARK, flags: ['BROADCAST', 'MULTICAST', 'UP'], mtu: net.mtu, address: bridgeMac(net.name), linkinfo: { info_kind: 'bridge' }, addr_info: [] },
    { ifname: net.gatewayPort, ifalias: MARK, flags: ['UP'], mtu: net.mtu, master: net.bridge, address: '02:00:00:00:00:0a', linkinfo: { info_kind: 'veth' }, addr_info: [] },
    { ifname: net.uplink.device, ifalias: MARK, flags: ['UP'], mtu: 1500, address: '02:00:00:00:00:0b', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet', local: net.uplink.root, prefixlen: 30, label: net.uplink.device }] },
    ...net.ports.map((p) => ({
      ifname: p.tap,
      ifalias: MARK,
      flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
      mtu: net.mtu,
      master: net.bridge,
      address: 'fe:00:00:00:00:01',
      linkinfo: { info_kind: 'tun' },
      addr_info: [],
    })),
  ];
}

/** What `ip -n butter-web -j -d addr show` reports once applied. */
function appliedNsLinks(net: LocalNetwork = web): unknown[] {
  return [
    { ifname: 'lo', ifalias: MARK, flags: ['LOOPBACK', 'UP'], mtu: 65536, address: '00:00:00:00:00:00', addr_info: [] },
    {
      ifname: 'gw0',
      flags: ['UP'],
      mtu: net.mtu,
      address: gatewayMac(net.name),
      linkinfo: { info_kind: 'veth' },
      addr_info: [
        { family: 'inet', local: net.gateway, prefixlen: 24, label: 'gw0' },
        { family: 'inet', local: '169.254.169.254', prefixlen: 32, label: 'gw0:m' },
      ],
    },
    { ifname: 'up0', flags: ['UP'], mtu: 1500, address: '02:00:00:00:00:0c', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet', local: net.uplink.ns, prefixlen: 30, label: 'up0' }] },
  ];
}

let dir: string;
let links: unknown[];
let tables: string;
let failOn: string | undefined;
let fdb: unknown[] = [];
let rules: unknown[] = [];
let routes: unknown[] = [];
let namespaces: string[] = [];
let nsLinks: unknown[] = [];
let nsDefault: unknown[] = [];
let hostRoutes: unknown[] = [];
let exec: RecordingExec;
let host: LinuxNetworkHost;
const PID = 4242;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bt-unit-'));
  links = [];
  fdb = [];
  rules = [];
  routes = [];
  namespaces = [];
  nsLinks = [];
  nsDefault = [];
  hostRoutes = [];
  tables = '';
  failOn = undefined;
  const proc = join(dir, 'proc');
  // A scripted host: answers the read-only commands, and "starts" dnsmasq by writing its
  // pidfile and a fake /proc entry, the two things the host checks.
  exec = new RecordingExec((cmd, args) => {
    const line = [cmd, ...args].join(' ');
    if (failOn && line.startsWith(failOn)) return { code: 1, stderr: 'boom' };
    if (line === 'ip -j -d addr show') return { stdout: JSON.stringify(links) };
    if (line === 'nft list tables') return { stdout: tables };
    if (line.startsWith('bridge -j fdb show')) return { stdout: JSON.stringify(fdb) };
    if (line === 'ip -j rule show') return { stdout: JSON.stringify(rules) };
    if (line === 'ip -j netns list') return { stdout: JSON.stringify(namespaces.map((name) => ({ name }))) };
    if (line === `ip -n ${NS} -j -d addr show`) return { stdout: JSON.stringify(nsLinks) };
    if (line === `ip -n ${NS} -j route show default`) return { stdout: JSON.stringify(nsDefault) };
    if (line === 'ip -j route show proto 98') return { stdout: JSON.stringify(hostRoutes) };
    if (line.startsWith('ip -j route show table')) return { stdout: JSON.stringify(routes) };
    if (line === 'sysctl -n net.ipv4.ip_forward') return { stdout: '0\n' };
    if (line.startsWith(`ip netns exec ${NS} dnsmasq`)) {
      const arg = args.at(-1)!;
      writeFileSync(join(arg.slice('--conf-file='.length), '..', 'dnsmasq.pid'), `${PID}\n`);
      mkdirSync(join(proc, String(PID)), { recursive: true });
      writeFileSync(join(proc, String(PID), 'cmdline'), `dnsmasq\0${arg}\0`);
    }
    if (line === `kill -TERM ${PID}`) rmSync(join(proc, String(PID)), { recursive: true, force: true });
    return {};
  });
  host = new LinuxNetworkHost({ exec, stateDir: join(dir, 'state'), procDir: proc, netnsPrefix: 'butter-', meshInterface: 'btwg0' });
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** After a first apply, make the fake host report what that apply made. */
async function applyOnce(net: LocalNetwork = web): Promise<void> {
  await host.apply([net]);
  converged(net);
  exec.calls.length = 0;
}

/** `count` commands run, from the first that is `first`. */
function linesFrom(first: string, count: number): string[] {
  const lines = exec.lines();
  const at = lines.indexOf(first);
  assert.ok(at >= 0, `${first} not run:\n${lines.join('\n')}`);
  return lines.slice(at, at + count);
}

/** The fake host as an apply of `net` leaves it. */
function converged(net: LocalNetwork = web): void {
  links = appliedLinks(net);
  nsLinks = appliedNsLinks(net);
  namespaces = [NS];
  nsDefault = [{ dst: 'default', gateway: net.uplink.root, dev: 'up0' }];
  rules = [{ priority: 1001, src: net.uplink.root, srclen: 32, table: String(net.uplink.table) }];
  routes = [{ dst: 'default', gateway: net.uplink.ns, dev: net.uplink.device }];
  hostRoutes = [{ dst: net.cidr, gateway: net.uplink.ns, dev: net.uplink.device }];
  tables = 'table inet butter\ntable bridge butter\ntable inet butter_paths\ntable inet butter_publish\n';
}

const HOST_ROUTES = 'ip -j route show proto 98';
const READS = new Set(['ip -j -d addr show', 'nft list tables', 'sysctl -n net.ipv4.ip_forward', 'ip -j netns list', `ip -n ${NS} -j -d addr show`, `ip -n ${NS} -j route show default`, 'ip -j route show table 536871013', 'ip -j rule show', HOST_ROUTES]);
/** What every apply of `web` reads, converged or not. */
const READ_WEB = ['ip -j -d addr show', 'ip -j netns list', `ip -n ${NS} -j -d addr show`, `ip -n ${NS} -j route show default`, 'ip -j route show table 536871013'];

test('first apply of one network with one port: golden commands', async () => {
  await host.apply([web]);
  const conf = join(dir, 'state/net/web/dnsmasq.conf');
  assert.deepEqual(exec.lines(), [
    // The host's ruleset, the paths table, the published ports' table: each its own transaction.
    // The host's links and namespaces are read beside the firewall's load: in the order they start.
    'nft -f -',
    'ip -j -d addr show',
    'ip -j netns list',
    'nft -f -',
    'nft -f -',
    'sysctl -n net.ipv4.ip_forward',
    'sysctl -w net.ipv4.ip_forward=1',
    // The bridge: no address, and not the gateway's MAC.
    'ip link add name bt-web address 02:3d:10:5c:e7:35 mtu 1450 type bridge',
    'ip link set dev bt-web alias butter up',
    // The gateway namespace: gw0 on the bridge with the gateway's address and MAC, up0 to the host.
    'ip netns add butter-web',
    'ip -n butter-web link set lo alias butter up',
    'ip netns exec butter-web sysctl -w net.ipv4.ip_forward=1',
    'ip -n butter-web -j -d addr show',
    'ip link add btgweb type veth peer name gw0 netns butter-web',
    'ip link set dev btgweb alias butter mtu 1450 master bt-web up',
    'ip -n butter-web link set dev gw0 address 02:56:52:44:f5:d7 mtu 1450',
    'ip -n butter-web addr add 10.231.0.1/24 dev gw0 label gw0',
    'ip -n butter-web addr add 169.254.169.254/32 dev gw0 label gw0:m',
    'ip -n butter-web link set dev gw0 up',
    'ip link add btuweb type veth peer name up0 netns butter-web',
    'ip addr add 100.126.0.5/30 dev btuweb',
    'ip link set dev btuweb alias butter up',
    'ip -n butter-web addr add 100.126.0.6/30 dev up0 label up0',
    'ip -n butter-web link set dev up0 up',
    'ip -n butter-web -j route show default',
    'ip -n butter-web route replace default via 100.126.0.5 dev up0',
    // The host's metadata answers go back up the uplink.
    'ip -j route show table 536871013',
    'ip route replace default via 100.126.0.6 dev btuweb table 536871013',
    'ip netns exec butter-web nft -f -',
    'ip tuntap add dev bt-web-1 mode tap',
    'ip link set dev bt-web-1 alias butter mtu 1450 master bt-web up',
    `ip netns exec butter-web dnsmasq --conf-file=${conf}`,
    'ip -j rule show',
    'ip rule add priority 1001 from 100.126.0.5/32 lookup 536871013',
    // The host reaches the VMs through the namespace (no other network here shares the CIDR).
    HOST_ROUTES,
    'ip route replace 10.231.0.0/24 via 100.126.0.6 dev btuweb proto 98',
  ]);
});

test('a second identical apply runs no mutating command', async () => {
  await applyOnce();
  await host.apply([web]);
  assert.deepEqual(exec.lines(), ['nft list tables', ...READ_WEB, 'ip -j rule show', HOST_ROUTES]);
  assert.ok(exec.lines().every((l) => READS.has(l)));
});

test('our nft tables flushed by someone else are loaded again', async () => {
  await applyOnce();
  tables = 'table inet filter\n';
  await host.apply([web]);
  // All three: the host's ruleset, the paths table and the published ports'.
  assert.deepEqual(exec.lines(), ['nft list tables', ...READ_WEB.slice(0, 2), 'nft -f -', 'nft -f -', 'nft -f -', ...READ_WEB.slice(2), 'ip -j rule show', HOST_ROUTES]);
});

test('a new reservation reloads dnsmasq with SIGHUP, no restart', async () => {
  await applyOnce();
  links = appliedLinks(web);
  const port2 = { tap: 'bt-web-2', mac: '52:54:00:ab:cd:02', ip: '10.231.0.11', hostname: 'vm2' };
  await host.apply([{ ...web, ports: [...web.ports, port2] }]);
  assert.deepEqual(exec.lines(), [
    'nft -f -',
    ...READ_WEB.slice(0, 2),
    // The paths and published ports' tables did not change: only checked to be there.
    'nft list tables',
    ...READ_WEB.slice(2),
    'ip tuntap add dev bt-web-2 mode tap',
    'ip link set dev bt-web-2 alias butter mtu 1450 master bt-web up',
    `kill -HUP ${PID}`,
    'ip -j rule show',
    HOST_ROUTES,
  ]);
});

test('a changed config restarts dnsmasq; a changed MTU reaches bridge and taps', async () => {
  await applyOnce();
  await host.apply([{ ...web, mtu: 1400 }]);
  const conf = join(dir, 'state/net/web/dnsmasq.conf');
  assert.deepEqual(exec.lines(), [
    'nft list tables',
    'ip -j -d addr show',
    'ip -j netns list',
    'ip link set dev bt-web mtu 1400',
    `ip -n ${NS} -j -d addr show`,
    'ip link set dev btgweb mtu 1400',
    `ip -n ${NS} link set dev gw0 mtu 1400`,
    `ip -n ${NS} -j route show default`,
    'ip -j route show table 536871013',
    'ip link set dev bt-web-1 mtu 1400',
    `kill -TERM ${PID}`,
    `ip netns exec ${NS} dnsmasq --conf-file=${conf}`,
    'ip -j rule show',
    HOST_ROUTES,
  ]);
});

test('a bridge deleted behind our back is rebuilt and its ports put back; dnsmasq (on gw0) keeps running', async () => {
  await applyOnce();
  links = appliedLinks(web)
    .filter((l) => (l as { ifname: string }).ifname !== 'bt-web')
    .map((l) => ({ ...(l as object), master: undefined }));
  await host.apply([web]);
  assert.deepEqual(
    exec.lines().filter((l) => !READS.has(l)),
    ['ip link add name bt-web address 02:3d:10:5c:e7:35 mtu 1450 type bridge', 'ip link set dev bt-web alias butter up', 'ip link set dev btgweb master bt-web', 'ip link set dev bt-web-1 master bt-web'],
  );
});

test('a port removed from the input deletes its tap; a removed network is torn down', async () => {
  await applyOnce();
  await host.apply([{ ...web, ports: [] }]);
  assert.deepEqual(exec.lines(), ['nft -f -', ...READ_WEB.slice(0, 2), 'nft list tables', ...READ_WEB.slice(2), `kill -HUP ${PID}`, 'ip link del bt-web-1', 'ip -j rule show', HOST_ROUTES]);

  exec.calls.length = 0;
  await host.apply([]);
  assert.deepEqual(exec.lines(), [
    // The network's bridge leaves the paths table too; the published ports' table names its uplink.
    'nft -f -',
    'ip -j -d addr show',
    'ip -j netns list',
    'nft -f -',
    'nft -f -',
    `kill -TERM ${PID}`,
    // Ours (its lo carries our mark): it takes gw0 and up0 with it, and their host ends (those deletes may find them gone).
    `ip -n ${NS} -j -d addr show`,
    'ip netns del butter-web',
    'ip link del bt-web-1',
    'ip link del btgweb',
    'ip link del btuweb',
    'ip link del bt-web',
    'ip -j rule show',
    'ip rule del priority 1001 from 100.126.0.5/32 lookup 536871013',
    'ip route flush table 536871013',
    HOST_ROUTES,
    'ip route del 10.231.0.0/24 proto 98',
  ]);
  assert.equal(existsSync(join(dir, 'state/net/web')), false);
});

test('interfaces without our prefix are never garbage-collected', async () => {
  links = [{ ifname: 'virbr0', mtu: 1500, flags: ['UP'], linkinfo: { info_kind: 'bridge' }, addr_info: [] }];
  await host.apply([]);
  assert.ok(!exec.lines().some((l) => l.includes('del')));
});

test('a failed apply of a new network undoes what it created', async () => {
  failOn = 'ip tuntap add';
  await assert.rejects(host.apply([web]), /boom/);
  // Everything made for it, in reverse: the uplink, the gateway's port, the namespace, the bridge; no rule.
  assert.deepEqual(exec.lines().slice(exec.lines().indexOf('ip tuntap add dev bt-web-1 mode tap')), [
    'ip tuntap add dev bt-web-1 mode tap',
    'ip link del btuweb',
    'ip link del btgweb',
    'ip netns del butter-web',
    'ip link del bt-web',
    'ip -j rule show',
    HOST_ROUTES,
  ]);
});

test('invalid input changes nothing', async () => {
  await assert.rejects(host.apply([{ ...web, ports: [{ ...web.ports[0]!, hostname: 'a\nb' }] }]), /hostname/);
  await assert.rejects(host.apply([{ ...web, uplink: { ...web.uplink, device: 'x" accept' } }]), /interface name/);
  assert.deepEqual(exec.lines(), []);
});

test('a network that would share a device with the one standing fails alone; the standing one is kept as it is', async () => {
  await applyOnce();
  const twin: LocalNetwork = { ...web, name: 'twin', cidr: '10.232.0.0/24', gateway: '10.232.0.1', ports: [] };
  // The newcomer comes first: standing on the host decides, not the order.
  const err = await host.apply([twin, web]).then(
    () => assert.fail('expected a NetworkApplyError'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof NetworkApplyError, String(err));
  assert.deepEqual([...err.failures.keys()], ['twin']);
  assert.match(String(err.failures.get('twin')), /^Error: duplicate interface bt-web \(network web has it on this host\)/);
  assert.ok(!exec.lines().some((l) => l.includes('twin') || l.includes(' del ')), exec.lines().join('\n'));
  // Two VPN-less networks sharing only an uplink address: the same.
  const near: LocalNetwork = { ...web, name: 'near', bridge: 'bt-near', cidr: '10.233.0.0/24', gateway: '10.233.0.1', ports: [], ...gatewayDevices('near', 101 + 16384) };
  const e2 = await host.apply([near, web]).catch((e: unknown) => e);
  assert.ok(e2 instanceof NetworkApplyError);
  assert.match(String(e2.failures.get('near')), new RegExp(`duplicate uplink address ${web.uplink.root} \\(network web`));
});

test("the paths table: each network's blocks and paths; one whose paths do not render fails alone, its services still closed", async () => {
  const paths = (input: string | undefined) => input ?? '';
  const withPaths: LocalNetwork = {
    ...web,
    services: [{ name: 'front', ips: [], block: '10.231.0.16/28' }, { name: 'db', ips: [], block: '10.231.0.32/29' }],
    paths: [{ from: { service: 'front' }, to: 'db', proto: 'tcp', ports: [5432, 5432] }],
  };
  await host.apply([withPaths]);
  const loaded = exec.calls.filter((c) => c.cmd === 'nft' && c.args.join(' ') === '-f -').map((c) => paths(c.input));
  const table = loaded.find((t) => t.includes('table inet butter_paths {'))!;
  assert.match(table, /elements = \{ "bt-web" \. 10\.231\.0\.16\/28, "bt-web" \. 10\.231\.0\.32\/29 \}/);
  assert.match(table, /"bt-web" \. 10\.231\.0\.32\/29 \. 10\.231\.0\.16\/28 \. tcp \. 5432/);

  // A path from a CIDR with host bits (the control plane refuses those): a bug upstream, this network's error only.
  exec.calls.length = 0;
  const bad: LocalNetwork = { ...withPaths, paths: [{ from: { cidr: '10.9.0.5/8' }, to: 'db', proto: 'tcp', ports: [1, 2] }] };
  const err = await host.apply([bad]).catch((e: unknown) => e);
  assert.ok(err instanceof NetworkApplyError, String(err));
  assert.match(String(err.failures.get('web')), /paths: 10\.9\.0\.5\/8 has host bits set/);
  const closed = exec.calls.filter((c) => c.cmd === 'nft').map((c) => paths(c.input)).find((t) => t.includes('table inet butter_paths {'))!;
  assert.match(closed, /elements = \{ "bt-web" \. 10\.231\.0\.16\/28, "bt-web" \. 10\.231\.0\.32\/29 \}/, 'its instances stay default-deny');
  assert.doesNotMatch(closed, /tcp \. 5432|10\.9\.0/, 'with no path at all');
});

test('teardown stops dnsmasq, deletes our namespaces, links, rules, tables and state', async () => {
  await applyOnce();
  await host.teardown();
  assert.deepEqual(exec.lines(), [
    `kill -TERM ${PID}`,
    'ip -j netns list',
    `ip -n ${NS} -j -d addr show`,
    'ip netns del butter-web',
    'ip -j -d addr show',
    'ip link del bt-web-1',
    'ip link del btgweb',
    'ip link del btuweb',
    'ip link del bt-web',
    'ip -j rule show',
    'ip rule del priority 1001 from 100.126.0.5/32 lookup 536871013',
    'ip route flush table 536871013',
    'nft -f -',
  ]);
  assert.equal(
    exec.calls.at(-1)!.input,
    'table inet butter\ndelete table inet butter\ntable bridge butter\ndelete table bridge butter\ntable inet butter_paths\ndelete table inet butter_paths\ntable inet butter_publish\ndelete table inet butter_publish\n',
  );
  assert.equal(existsSync(join(dir, 'state/net')), false);
});

test('a network spanning nodes: VXLAN port on the bridge, forwarding entries, remote names (golden)', async () => {
  const spanning: LocalNetwork = {
    ...web,
    overlay: { device: 'btxweb', vni: 101, local: '100.127.0.2', remotes: [{ address: '100.127.0.3', macs: ['52:54:00:ab:cd:09'] }] },
    remoteNames: [{ ip: '10.231.0.20', hostname: 'vm9' }],
  };
  await host.apply([spanning]);
  assert.deepEqual(linesFrom('ip link add btxweb type vxlan id 101 local 100.127.0.2 dstport 4789 nolearning noudpcsum', 5), [
    'ip link add btxweb type vxlan id 101 local 100.127.0.2 dstport 4789 nolearning noudpcsum',
    'ip link set dev btxweb alias butter mtu 1450 master bt-web up',
    'bridge -j fdb show dev btxweb',
    'bridge fdb append 00:00:00:00:00:00 dev btxweb dst 100.127.0.3',
    'bridge fdb replace 52:54:00:ab:cd:09 dev btxweb dst 100.127.0.3',
  ]);
  // Gateway, metadata and DHCP stay on each node: not across the VXLAN port.
  assert.match(exec.calls[0]!.input!, /iifname "btxweb" arp daddr ip \{ 10\.231\.0\.1, 169\.254\.169\.254 \} drop/);
  assert.match(exec.calls[0]!.input!, /oifname "btxweb" udp dport \{ 67, 68 \} drop/);
  // The tunnel's own port (the device's dstport) is open to the mesh only, in that order.
  const input = exec.calls[0]!.input!.split('chain input {')[1]!.split('\t}')[0]!;
  assert.match(input, /iifname "btwg0" ip saddr 100\.127\.0\.0\/16 udp dport 4789 accept\n\t\tudp dport 4789 drop\n/);
  // DNS answers for the VM on the other node too; DHCP reserves only the local one.
  assert.equal(readFileSync(join(dir, 'state/net/web/names'), 'utf8'), '10.231.0.10 vm1.web.internal vm1\n10.231.0.20 vm9.web.internal vm9\n');
  assert.equal(readFileSync(join(dir, 'state/net/web/hosts'), 'utf8'), '52:54:00:ab:cd:01,10.231.0.10,vm1\n');

  // Once converged (the device exists with those entries), nothing is changed again.
  converged(web);
  links = [...links, { ifname: 'btxweb', ifalias: MARK, flags: ['UP'], mtu: 1450, master: 'bt-web', address: 'aa:bb:cc:00:00:01', linkinfo: { info_kind: 'vxlan', info_data: { id: 101, local: '100.127.0.2' } }, addr_info: [] }];
  fdb = [{ mac: '00:00:00:00:00:00', dst: '100.127.0.3' }, { mac: '52:54:00:ab:cd:09', dst: '100.127.0.3' }, { mac: 'aa:bb:cc:00:00:01', master: 'bt-web', state: 'permanent' }];
  exec.calls.length = 0;
  await host.apply([spanning]);
  assert.deepEqual(exec.lines().filter((l) => !READS.has(l)), ['bridge -j fdb show dev btxweb']);

  // Without the overlay (the last remote VM left), the VXLAN port goes.
  exec.calls.length = 0;
  await host.apply([web]);
  assert.ok(exec.lines().includes('ip link del btxweb'), exec.lines().join('\n'));
});

test('the VPN gateway: router veth with proxy ARP, its own table and rules, peers only (golden)', async () => {
  const vpn = { router: 'btrweb', port: 'btpweb', address: '10.231.0.2', mac: '02:aa:bb:cc:dd:ee', peers: ['10.231.0.3'], mesh: 'btwg0', table: 268435557 };
  await host.apply([{ ...web, vpn }]);
  const lines = exec.lines();
  assert.deepEqual(linesFrom('ip link add btrweb type veth peer name btpweb', 11), [
    'ip link add btrweb type veth peer name btpweb',
    'sysctl -w net.ipv4.conf.btrweb.proxy_arp=1',
    'sysctl -w net.ipv4.conf.btrweb.arp_ignore=1',
    'sysctl -w net.ipv4.conf.btrweb.rp_filter=0',
    'ip link set dev btrweb alias butter address 02:aa:bb:cc:dd:ee mtu 1450 up',
    'ip link set dev btpweb alias butter mtu 1450 master bt-web up',
    'ip addr add 10.231.0.2/24 dev btrweb noprefixroute',
    'ip -j route show table 268435557',
    'ip route replace 10.231.0.0/24 dev btrweb src 10.231.0.2 table 268435557',
    'ip route replace blackhole default table 268435557',
    'ip route replace 10.231.0.3/32 dev btwg0 table 268435557',
  ]);
  // Per peer (not per CIDR): networks on one gateway may share a CIDR.
  assert.deepEqual(lines.slice(-6, -2), [
    'ip -j rule show',
    'ip rule add priority 1001 from 100.126.0.5/32 lookup 536871013',
    'ip rule add priority 1000 iif btrweb lookup 268435557',
    'ip rule add priority 1000 iif btwg0 from 10.231.0.3/32 lookup 268435557',
  ]);
  const nft = exec.calls[0]!.input!;
  // Peers reach their network through its router port (its DNS too); nothing of the host or the mesh.
  assert.match(nft, /iifname "btwg0" ip saddr \{ 10\.231\.0\.3 \} oifname "btrweb" ip daddr 10\.231\.0\.0\/24 accept/);
  assert.match(nft, /iifname "btwg0" ip saddr != 100\.127\.0\.0\/16 drop/);
  // Nothing from the router port reaches the host or goes anywhere but to the peers.
  const chainOf = (name: string) => nft.slice(nft.indexOf(`chain ${name} {`), nft.indexOf('\t}', nft.indexOf(`chain ${name} {`)));
  for (const name of ['input', 'forward']) assert.ok(chainOf(name).includes('iifname { "bt-web", "btuweb", "btrweb" } drop'), chainOf(name));

  // Revoked (no VPN): the rules go, the table is flushed, the veth deleted.
  converged(web);
  rules = [
    ...rules,
    { priority: 1000, iif: 'btwg0', src: '10.231.0.3', srclen: 32, table: '268435557' },
    { priority: 1000, iif: 'btrweb', table: '268435557' },
    { priority: 32766, src: 'all', table: 'main' },
  ];
  links = [...links, { ifname: 'btrweb', ifalias: MARK, flags: ['UP'], mtu: 1450, address: vpn.mac, linkinfo: { info_kind: 'veth' }, addr_info: [] }, { ifname: 'btpweb', ifalias: MARK, flags: ['UP'], mtu: 1450, master: 'bt-web', address: '02:00:00:00:00:09', linkinfo: { info_kind: 'veth' }, addr_info: [] }];
  exec.calls.length = 0;
  await host.apply([web]);
  assert.deepEqual(
    exec.lines().filter((l) => /veth|rule|table 2|btr|btp/.test(l)),
    ['ip link del btrweb', 'ip link del btpweb', 'ip -j rule show', 'ip rule del priority 1000 iif btwg0 from 10.231.0.3/32 lookup 268435557', 'ip rule del priority 1000 iif btrweb lookup 268435557', 'ip route flush table 268435557'],
  );
});

test('links and namespaces named like ours but without our mark are never deleted, and said so once', async () => {
  const logged: string[] = [];
  host = new LinuxNetworkHost({ exec, stateDir: join(dir, 'state'), procDir: join(dir, 'proc'), netnsPrefix: 'butter-', log: (m) => logged.push(m) });
  // A user's bridge and tap, an interface marked by another agent, our mesh interface (wireguard-go's is a tun), a namespace named like ours.
  links = [
    { ifname: 'bt0', mtu: 1500, flags: ['UP'], linkinfo: { info_kind: 'bridge' }, addr_info: [] },
    { ifname: 'btrfs-test', mtu: 1500, flags: ['UP'], linkinfo: { info_kind: 'tun' }, addr_info: [] },
    { ifname: 'bt-other', ifalias: 'butter:0123456789ab', mtu: 1500, flags: ['UP'], linkinfo: { info_kind: 'bridge' }, addr_info: [] },
    { ifname: 'btwg0', mtu: 1420, flags: ['UP'], linkinfo: { info_kind: 'tun' }, addr_info: [] },
  ];
  namespaces = [NS];
  nsLinks = [{ ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, address: '00:00:00:00:00:00', addr_info: [] }];
  await host.apply([]);
  await host.apply([]);
  await host.teardown();
  assert.deepEqual(exec.lines().filter((l) => / del /.test(l)), [], exec.lines().join('\n'));
  assert.deepEqual(logged, [
    `left namespace ${NS} alone: named like Butter's but not marked butter, so not made by this agent (delete it by hand if it is a leftover)`,
    ...['tap btrfs-test', 'tap btwg0', 'bridge bt0', 'bridge bt-other'].map((what) => `left ${what} alone: named like Butter's but not marked butter, so not made by this agent (delete it by hand if it is a leftover)`),
  ]);
});

test('ours from before the mark, still wanted, get it when applied; a port that is not our tap does not', async () => {
  const veth = { tap: 'vethx', mac: '52:54:00:ab:cd:03', ip: '10.231.0.12', hostname: 'vm3' };
  const net = { ...web, ports: [...web.ports, veth] };
  await applyOnce(net);
  const unmark = (l: unknown) => ({ ...(l as object), ifalias: undefined });
  links = [...appliedLinks(web).map(unmark), { ifname: 'vethx', flags: ['UP'], mtu: 1450, master: 'bt-web', address: '02:00:00:00:00:0d', linkinfo: { info_kind: 'veth' }, addr_info: [] }];
  nsLinks = appliedNsLinks(web).map(unmark);
  await host.apply([net]);
  assert.deepEqual(
    exec.lines().filter((l) => !READS.has(l)),
    ['ip link set dev bt-web alias butter', `ip -n ${NS} link set lo alias butter`, 'ip link set dev btgweb alias butter', 'ip link set dev btuweb alias butter', 'ip link set dev bt-web-1 alias butter'],
  );
});
