import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingExec } from './exec.ts';
import { LinuxNetworkHost, gatewayMac } from './linux-network.ts';
import type { LocalNetwork } from './network.ts';

const web: LocalNetwork = {
  name: 'web',
  bridge: 'bt-web',
  cidr: '10.231.0.0/24',
  gateway: '10.231.0.1',
  mtu: 1450,
  nat: true,
  dnsForward: false,
  ports: [{ tap: 'bt-web-1', mac: '52:54:00:ab:cd:01', ip: '10.231.0.10', hostname: 'vm1' }],
};

/** What `ip -j -d addr show` reports once `web` has been applied. */
function appliedLinks(net: LocalNetwork = web): unknown[] {
  return [
    { ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, address: '00:00:00:00:00:00', addr_info: [] },
    {
      ifname: net.bridge,
      flags: ['BROADCAST', 'MULTICAST', 'UP'],
      mtu: net.mtu,
      address: gatewayMac(net.name),
      linkinfo: { info_kind: 'bridge' },
      addr_info: [
        { family: 'inet', local: net.gateway, prefixlen: 24, label: net.bridge },
        { family: 'inet', local: '169.254.169.254', prefixlen: 32, label: `${net.bridge}:m` },
        { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
      ],
    },
    ...net.ports.map((p) => ({
      ifname: p.tap,
      flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
      mtu: net.mtu,
      master: net.bridge,
      address: 'fe:00:00:00:00:01',
      linkinfo: { info_kind: 'tun' },
      addr_info: [],
    })),
  ];
}

let dir: string;
let links: unknown[];
let tables: string;
let failOn: string | undefined;
let fdb: unknown[] = [];
let rules: unknown[] = [];
let routes: unknown[] = [];
let exec: RecordingExec;
let host: LinuxNetworkHost;
const PID = 4242;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bt-unit-'));
  links = [];
  fdb = [];
  rules = [];
  routes = [];
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
    if (line.startsWith('ip -j route show table')) return { stdout: JSON.stringify(routes) };
    if (line === 'sysctl -n net.ipv4.ip_forward') return { stdout: '0\n' };
    if (cmd === 'dnsmasq') {
      const conf = args[0]!.slice('--conf-file='.length);
      writeFileSync(join(conf, '..', 'dnsmasq.pid'), `${PID}\n`);
      mkdirSync(join(proc, String(PID)), { recursive: true });
      writeFileSync(join(proc, String(PID), 'cmdline'), `dnsmasq\0${args[0]}\0`);
    }
    if (line === `kill -TERM ${PID}`) rmSync(join(proc, String(PID)), { recursive: true, force: true });
    return {};
  });
  host = new LinuxNetworkHost({ exec, stateDir: join(dir, 'state'), procDir: proc });
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** After a first apply, make the fake host report what that apply made. */
async function applyOnce(net: LocalNetwork = web): Promise<void> {
  await host.apply([net]);
  links = appliedLinks(net);
  tables = 'table inet butter\ntable bridge butter\n';
  exec.calls.length = 0;
}

const READS = new Set(['ip -j -d addr show', 'nft list tables', 'sysctl -n net.ipv4.ip_forward']);

test('first apply of one network with one port: golden commands', async () => {
  await host.apply([web]);
  const conf = join(dir, 'state/net/web/dnsmasq.conf');
  assert.deepEqual(exec.lines(), [
    'nft -f -',
    'sysctl -n net.ipv4.ip_forward',
    'sysctl -w net.ipv4.ip_forward=1',
    'ip -j -d addr show',
    'ip link add name bt-web address 02:56:52:44:f5:d7 mtu 1450 type bridge',
    'ip addr add 10.231.0.1/24 dev bt-web label bt-web',
    'ip addr add 169.254.169.254/32 dev bt-web label bt-web:m',
    'ip link set dev bt-web up',
    'ip tuntap add dev bt-web-1 mode tap',
    'ip link set dev bt-web-1 mtu 1450 master bt-web up',
    `dnsmasq --conf-file=${conf}`,
    // Once per agent: VPN routing rules a previous run left behind.
    'ip -j rule show',
  ]);
  assert.match(exec.calls[0]!.input!, /iifname vmap \{ "bt-web-1" : jump port_bt_2dweb_2d1 \}/);
  assert.equal(readFileSync(join(dir, 'state/net/web/hosts'), 'utf8'), '52:54:00:ab:cd:01,10.231.0.10,vm1\n');
  assert.match(readFileSync(conf, 'utf8'), /^interface=bt-web$/m);
});

test('a second identical apply runs no mutating command', async () => {
  await applyOnce();
  await host.apply([web]);
  assert.deepEqual(exec.lines(), ['nft list tables', 'ip -j -d addr show']);
  assert.ok(exec.lines().every((l) => READS.has(l)));
});

test('our nft tables flushed by someone else are loaded again', async () => {
  await applyOnce();
  tables = 'table inet filter\n';
  await host.apply([web]);
  assert.deepEqual(exec.lines(), ['nft list tables', 'nft -f -', 'ip -j -d addr show']);
});

test('a new reservation reloads dnsmasq with SIGHUP, no restart', async () => {
  await applyOnce();
  links = appliedLinks(web);
  const port2 = { tap: 'bt-web-2', mac: '52:54:00:ab:cd:02', ip: '10.231.0.11', hostname: 'vm2' };
  await host.apply([{ ...web, ports: [...web.ports, port2] }]);
  assert.deepEqual(exec.lines(), [
    'nft -f -',
    'ip -j -d addr show',
    'ip tuntap add dev bt-web-2 mode tap',
    'ip link set dev bt-web-2 mtu 1450 master bt-web up',
    `kill -HUP ${PID}`,
  ]);
});

test('a changed config restarts dnsmasq; a changed MTU reaches bridge and taps', async () => {
  await applyOnce();
  await host.apply([{ ...web, mtu: 1400 }]);
  const conf = join(dir, 'state/net/web/dnsmasq.conf');
  assert.deepEqual(exec.lines(), [
    'nft list tables',
    'ip -j -d addr show',
    'ip link set dev bt-web mtu 1400',
    'ip link set dev bt-web-1 mtu 1400',
    `kill -TERM ${PID}`,
    `dnsmasq --conf-file=${conf}`,
  ]);
});

test('a bridge deleted behind our back is rebuilt and dnsmasq restarted onto it', async () => {
  await applyOnce();
  links = [];
  await host.apply([web]);
  assert.deepEqual(exec.lines().slice(1, 3), ['ip -j -d addr show', 'ip link add name bt-web address 02:56:52:44:f5:d7 mtu 1450 type bridge']);
  assert.deepEqual(exec.lines().slice(-2), [`kill -TERM ${PID}`, `dnsmasq --conf-file=${join(dir, 'state/net/web/dnsmasq.conf')}`]);
});

test('a port removed from the input deletes its tap; a removed network is torn down', async () => {
  await applyOnce();
  await host.apply([{ ...web, ports: [] }]);
  assert.deepEqual(exec.lines(), [
    'nft -f -',
    'ip -j -d addr show',
    `kill -HUP ${PID}`,
    'ip link del bt-web-1',
  ]);

  exec.calls.length = 0;
  await host.apply([]);
  assert.deepEqual(exec.lines(), [
    'nft -f -',
    'ip -j -d addr show',
    `kill -TERM ${PID}`,
    'ip link del bt-web-1',
    'ip link del bt-web',
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
  assert.deepEqual(exec.lines().slice(4), [
    'ip link add name bt-web address 02:56:52:44:f5:d7 mtu 1450 type bridge',
    'ip addr add 10.231.0.1/24 dev bt-web label bt-web',
    'ip addr add 169.254.169.254/32 dev bt-web label bt-web:m',
    'ip link set dev bt-web up',
    'ip tuntap add dev bt-web-1 mode tap',
    'ip addr del 169.254.169.254/32 dev bt-web',
    'ip addr del 10.231.0.1/24 dev bt-web',
    'ip link del bt-web',
    'ip -j rule show',
  ]);
});

test('invalid input changes nothing', async () => {
  await assert.rejects(host.apply([{ ...web, ports: [{ ...web.ports[0]!, hostname: 'a\nb' }] }]), /hostname/);
  await assert.rejects(host.apply([web, { ...web, name: 'other' }]), /duplicate interface bt-web/);
  await assert.rejects(host.apply([{ ...web, bridge: 'bt-fourteen-ch' }]), /longer than 13/);
  assert.deepEqual(exec.lines(), []);
});

test('teardown stops dnsmasq, deletes our links, tables and state', async () => {
  await applyOnce();
  await host.teardown();
  assert.deepEqual(exec.lines(), [`kill -TERM ${PID}`, 'ip -j -d addr show', 'ip link del bt-web-1', 'ip link del bt-web', 'ip -j rule show', 'nft -f -']);
  assert.equal(exec.calls.at(-1)!.input, 'table inet butter\ndelete table inet butter\ntable bridge butter\ndelete table bridge butter\n');
  assert.equal(existsSync(join(dir, 'state/net')), false);
});

test('a network spanning nodes: VXLAN port on the bridge, forwarding entries, remote names (golden)', async () => {
  const spanning: LocalNetwork = {
    ...web,
    overlay: { device: 'btxweb', vni: 101, local: '100.127.0.2', remotes: [{ address: '100.127.0.3', macs: ['52:54:00:ab:cd:09'] }] },
    remoteNames: [{ ip: '10.231.0.20', hostname: 'vm9' }],
  };
  await host.apply([spanning]);
  const lines = exec.lines();
  const at = lines.indexOf('ip link add btxweb type vxlan id 101 local 100.127.0.2 dstport 4789 nolearning noudpcsum');
  assert.ok(at > 0, lines.join('\n'));
  assert.deepEqual(lines.slice(at, at + 5), [
    'ip link add btxweb type vxlan id 101 local 100.127.0.2 dstport 4789 nolearning noudpcsum',
    'ip link set dev btxweb mtu 1450 master bt-web up',
    'bridge -j fdb show dev btxweb',
    'bridge fdb append 00:00:00:00:00:00 dev btxweb dst 100.127.0.3',
    'bridge fdb replace 52:54:00:ab:cd:09 dev btxweb dst 100.127.0.3',
  ]);
  // Gateway, metadata and DHCP stay on each node: not across the VXLAN port.
  assert.match(exec.calls[0]!.input!, /iifname "btxweb" arp daddr ip \{ 10\.231\.0\.1, 169\.254\.169\.254 \} drop/);
  assert.match(exec.calls[0]!.input!, /oifname "btxweb" udp dport \{ 67, 68 \} drop/);
  // DNS answers for the VM on the other node too; DHCP reserves only the local one.
  assert.equal(readFileSync(join(dir, 'state/net/web/names'), 'utf8'), '10.231.0.10 vm1.web.internal vm1\n10.231.0.20 vm9.web.internal vm9\n');
  assert.equal(readFileSync(join(dir, 'state/net/web/hosts'), 'utf8'), '52:54:00:ab:cd:01,10.231.0.10,vm1\n');

  // Once converged (the device exists with those entries), nothing is changed again.
  links = [...appliedLinks(web), { ifname: 'btxweb', flags: ['UP'], mtu: 1450, master: 'bt-web', address: 'aa:bb:cc:00:00:01', linkinfo: { info_kind: 'vxlan', info_data: { id: 101, local: '100.127.0.2' } }, addr_info: [] }];
  tables = 'table inet butter\ntable bridge butter\n';
  fdb = [{ mac: '00:00:00:00:00:00', dst: '100.127.0.3' }, { mac: '52:54:00:ab:cd:09', dst: '100.127.0.3' }, { mac: 'aa:bb:cc:00:00:01', master: 'bt-web', state: 'permanent' }];
  exec.calls.length = 0;
  await host.apply([spanning]);
  assert.deepEqual(exec.lines(), ['nft list tables', 'ip -j -d addr show', 'bridge -j fdb show dev btxweb']);

  // Without the overlay (the last remote VM left), the VXLAN port goes.
  exec.calls.length = 0;
  await host.apply([web]);
  assert.ok(exec.lines().includes('ip link del btxweb'), exec.lines().join('\n'));
});

test('the VPN gateway: router veth with proxy ARP, its own table and rules, peers only (golden)', async () => {
  const vpn = { router: 'btrweb', port: 'btpweb', address: '10.231.0.2', mac: '02:aa:bb:cc:dd:ee', peers: ['10.231.0.3'], mesh: 'btwg0', table: 20101 };
  await host.apply([{ ...web, vpn }]);
  const lines = exec.lines();
  const at = lines.indexOf('ip link add btrweb type veth peer name btpweb');
  assert.ok(at > 0, lines.join('\n'));
  assert.deepEqual(lines.slice(at, at + 14), [
    'ip link add btrweb type veth peer name btpweb',
    'sysctl -w net.ipv4.conf.btrweb.proxy_arp=1',
    'sysctl -w net.ipv4.conf.btrweb.arp_ignore=1',
    'sysctl -w net.ipv4.conf.btrweb.rp_filter=0',
    'ip link set dev btrweb address 02:aa:bb:cc:dd:ee mtu 1450 up',
    'ip link set dev btpweb mtu 1450 master bt-web up',
    'ip addr add 10.231.0.2/24 dev btrweb noprefixroute',
    'ip -j route show table 20101',
    'ip route replace 10.231.0.0/24 dev btrweb src 10.231.0.2 table 20101',
    'ip route replace blackhole default table 20101',
    'ip route replace 10.231.0.3/32 dev btwg0 table 20101',
    'ip -j rule show',
    'ip rule add priority 1000 iif btwg0 from 10.231.0.0/24 lookup 20101',
    'ip rule add priority 1000 iif btrweb lookup 20101',
  ]);
  const nft = exec.calls[0]!.input!;
  // Peers reach their network's router port and the gateway's DNS; nothing else of the host or the mesh.
  assert.match(nft, /iifname "btwg0" ip saddr \{ 10\.231\.0\.3 \} oifname "btrweb" ip daddr 10\.231\.0\.0\/24 accept/);
  assert.match(nft, /iifname "btwg0" ip saddr \{ 10\.231\.0\.3 \} ip daddr 10\.231\.0\.1 meta l4proto \{ tcp, udp \} th dport 53 accept/);
  assert.match(nft, /iifname "btwg0" ip saddr != 100\.127\.0\.0\/16 drop/);
  assert.match(nft, /iifname "btrweb" drop/);

  // Revoked (no VPN): the rules go, the table is flushed, the veth deleted.
  rules = [
    { priority: 1000, iif: 'btwg0', src: '10.231.0.0', srclen: 24, table: '20101' },
    { priority: 1000, iif: 'btrweb', table: '20101' },
    { priority: 32766, src: 'all', table: 'main' },
  ];
  links = [...appliedLinks(web), { ifname: 'btrweb', flags: ['UP'], mtu: 1450, address: vpn.mac, linkinfo: { info_kind: 'veth' }, addr_info: [] }, { ifname: 'btpweb', flags: ['UP'], mtu: 1450, master: 'bt-web', address: '02:00:00:00:00:09', linkinfo: { info_kind: 'veth' }, addr_info: [] }];
  exec.calls.length = 0;
  await host.apply([web]);
  assert.deepEqual(
    exec.lines().filter((l) => /veth|rule|table|btr|btp/.test(l)),
    ['ip link del btrweb', 'ip link del btpweb', 'ip -j rule show', 'ip rule del priority 1000 iif btwg0 from 10.231.0.0/24 lookup 20101', 'ip rule del priority 1000 iif btrweb lookup 20101', 'ip route flush table 20101'],
  );
});
