// Three machines on one box, joined over HTTPS: real agents, real QEMU guests (tiny image).
// Placement follows spread, binpack, --node and --zone; a killed agent's node is unreachable
// within 15 s and reconciles when it returns; evacuation moves its VMs, and a VM deleted by force
// while its node is lost is destroyed there when it returns. VXLAN enters a
// network only over the mesh: a LAN host's crafted packets reach no guest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { NamespaceCluster } from './cluster-harness.ts';
import { BROADCAST_MAC, rawFrames, tagsArriving, type Probe } from './raw-frames.ts';
import { VXLAN_PORT } from '../../src/core/fdb-plan.ts';
import { tapName } from '../../src/core/vm-spec.ts';

let c: NamespaceCluster;
interface Vm {
  name: string;
  node: string;
  state: string;
}

before(async () => {
  c = new NamespaceCluster();
  await c.startServer();
  await c.addNode('n1', 'east');
  await c.addNode('n2', 'east');
  await c.addNode('n3', 'west');
  // The tiny image, built here and added through the API like any image.
  const { buildTiny } = await import('../../src/daemon/tiny-image.ts');
  const t = await buildTiny(`${c.dir}/tiny`);
  const r = c.cli(['image', 'add', 'tiny', '--kernel', t.kernel, '--initrd', t.initrd, '--root-disk', t.rootDisk, '--cmdline', t.cmdline]);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(c?.log);
  await c?.cleanup();
});

const vms = () => c.json<Vm[]>(['vm', 'list']);
const create = (name: string, ...flags: string[]) => {
  const r = c.cli(['vm', 'create', name, '--image', 'tiny', '--memory', '192M', '--disk', '256M', ...flags]);
  assert.equal(r.code, 0, r.stderr);
};
async function allRunning(): Promise<Vm[]> {
  await c.until('every VM running', () => vms().every((v) => v.state === 'running'), 180_000);
  return vms();
}
async function removeAll(): Promise<void> {
  for (const v of vms()) assert.equal(c.cli(['vm', 'rm', v.name, '--no-wait']).code, 0);
  await c.until('no VMs', () => vms().length === 0, 60_000);
}

test('nodes joined over HTTPS with their zones', () => {
  const nodes = c.json<{ name: string; zone: string; state: string; accel: string }[]>(['node', 'list']);
  assert.deepEqual(nodes.map((n) => [n.name, n.zone, n.state]), [['n1', 'east', 'ready'], ['n2', 'east', 'ready'], ['n3', 'west', 'ready']]);
});

test('the nodes form a WireGuard mesh: keys stay home, every node reaches every other', async () => {
  type MeshNode = { name: string; mesh: { address: string; publicKey: string; endpoint: string | null } | null };
  const nodes = c.json<MeshNode[]>(['node', 'list']);
  const mesh = new Map(nodes.map((n) => [n.name, n.mesh!]));
  assert.deepEqual([...mesh.values()].map((m) => m.address).sort(), ['100.127.0.2', '100.127.0.3', '100.127.0.4']);
  // The endpoint is the underlay address the control plane saw each agent come from.
  for (const m of mesh.values()) assert.match(m.endpoint ?? '', /^10\.251\.0\.\d+:51820$/);
  for (const name of ['n1', 'n2', 'n3']) {
    // Each node's interface carries its own key, which the control plane only knows the public half of.
    const pub = c.inNode(name, 'wg', ['show', c.wgOf(name), 'public-key']);
    assert.equal(pub.stdout.trim(), mesh.get(name)!.publicKey, pub.stderr);
    const priv = c.inNode(name, 'wg', ['show', c.wgOf(name), 'private-key']).stdout.trim();
    assert.ok(!JSON.stringify(c.json<unknown>(['node', 'show', name])).includes(priv));
  }
  // Full mesh: a ping from every node to every other node's mesh address, through WireGuard.
  await c.until('every node pings every other over the mesh', () => {
    for (const from of ['n1', 'n2', 'n3']) {
      for (const [to, m] of mesh) {
        if (to !== from && c.inNode(from, 'ping', ['-c', '1', '-W', '1', m.address]).code !== 0) return false;
      }
    }
    return true;
  }, 15_000);
  const peers = c.inNode('n1', 'wg', ['show', c.wgOf('n1'), 'latest-handshakes']).stdout.trim().split('\n');
  assert.equal(peers.length, 2, 'n1 has the two other nodes as peers');
});

test('VMs of one network on two nodes reach each other by DNS name (VXLAN in WireGuard); another network with the same CIDR gets nothing in', async () => {
  assert.equal(c.cli(['network', 'create', 'lan', '--cidr', '10.30.0.0/24']).code, 0);
  assert.equal(c.cli(['network', 'create', 'other', '--cidr', '10.31.0.0/24']).code, 0);
  // twin: the same CIDR as lan, a LAN of its own.
  assert.equal(c.cli(['network', 'create', 'twin', '--cidr', '10.30.0.0/24']).code, 0);
  // The guest looks its peer up through its own node's DNS, then pings it; then a full-size
  // packet (MTU 1390 from DHCP: 1362 bytes of ICMP data + 28 of headers) must cross too.
  const seek = (target: string, ok: string, fail: string) => `#!/bin/sh
for i in $(seq 1 90); do
  ip=$(nslookup ${target} 2>/dev/null | awk '/^Address/ { a = $NF } END { print a }')
  case "$ip" in 10.*) break ;; esac
  sleep 1
done
echo "resolved ${target} to $ip"
if ping -c 3 -W 2 "$ip" >/dev/null 2>&1; then echo "${ok}"; else echo "${fail}"; fi
if ping -c 2 -W 2 -s 1362 "$ip" >/dev/null 2>&1; then echo "BIG-PING-OK"; fi
n=0
while true; do
  n=$((n + 1))
  if ping -c 1 -W 1 "$ip" >/dev/null 2>&1; then echo "ALIVE $n ok"; else echo "ALIVE $n fail"; fi
  sleep 1
done
`;
  writeFileSync(`${c.dir}/seek-b.sh`, seek('vb.lan.internal', 'PEER-REACHED', 'PEER-UNREACHABLE'));
  // vc (twin, 10.30.0.2) tries va (lan, 10.30.0.3): an address twin does not have. It reaches
  // its own gateway (same address as lan's), and nothing of lan.
  writeFileSync(
    `${c.dir}/probe.sh`,
    `#!/bin/sh\nsleep 5\nping -c 2 -W 2 10.30.0.1 >/dev/null 2>&1 && echo OWN-GATEWAY\nif ping -c 3 -W 2 10.30.0.3 >/dev/null 2>&1; then echo LEAKED-INTO-LAN; else echo ISOLATED; fi\n`,
  );
  create('vb', '--network', 'lan', '--node', 'n2');
  create('va', '--network', 'lan', '--node', 'n1', '--user-data', `${c.dir}/seek-b.sh`);
  create('vc', '--network', 'twin', '--node', 'n3', '--user-data', `${c.dir}/probe.sh`);
  // A VM on two networks (eth0 in other, eth1 in lan) on n3, beside twin's vc: it reaches vb
  // through eth1 and other's gateway through eth0, and keeps its default route on eth0.
  writeFileSync(`${c.dir}/multi.sh`, `#!/bin/sh
sleep 3
ip -4 -o addr show dev eth1 | grep -q ' 10\\.30\\.0\\.' && echo ETH1-IN-LAN
ip route | grep -q '^default .* dev eth0' && ! ip route | grep -q '^default .* dev eth1' && echo DEFAULT-ETH0
for i in $(seq 1 60); do ping -c 1 -W 1 10.30.0.2 >/dev/null 2>&1 && { echo MULTI-LAN-OK; break; }; sleep 1; done
for i in $(seq 1 60); do ping -c 1 -W 1 10.31.0.1 >/dev/null 2>&1 && { echo MULTI-OTHER-OK; break; }; sleep 1; done
`);
  create('multi', '--network', 'other', '--network', 'lan', '--node', 'n3', '--user-data', `${c.dir}/multi.sh`);
  const running = await allRunning();
  assert.equal(running.find((v) => v.name === 'vb')?.node, 'n2');
  const vb = c.json<{ ip: string }>(['vm', 'show', 'vb']);
  assert.equal(vb.ip, '10.30.0.2', 'the first VM of lan gets its first guest address');
  const logs = (name: string) => c.cli(['vm', 'logs', name]).stdout;
  await c.until('va reached vb across nodes', () => /PEER-(REACHED|UNREACHABLE)/.test(logs('va')), 150_000);
  assert.match(logs('va'), /resolved vb\.lan\.internal to 10\.30\.0\.2/);
  assert.match(logs('va'), /PEER-REACHED/, logs('va').slice(-1500));
  assert.match(logs('va'), /BIG-PING-OK/, 'a full-size packet crossed the overlay');
  await c.until('vc tried to reach into lan', () => /LEAKED-INTO-LAN|ISOLATED/.test(logs('vc')), 150_000);
  assert.match(logs('vc'), /ISOLATED/);
  assert.match(logs('vc'), /OWN-GATEWAY/);
  const multi = c.json<{ nics: { network: string; ip: string }[] }>(['vm', 'show', 'multi']);
  assert.deepEqual(multi.nics.map((n) => n.network), ['other', 'lan']);
  await c.until('multi reached both networks', () => /MULTI-LAN-OK/.test(logs('multi')) && /MULTI-OTHER-OK/.test(logs('multi')), 150_000);
  assert.match(logs('multi'), /ETH1-IN-LAN/);
  assert.match(logs('multi'), /DEFAULT-ETH0/, 'the second NIC brought no default route');
  // Agents restart (crash, upgrade) without cutting the VMs off: the mesh (wireguard-go), the
  // bridges and VXLAN ports stay, and the restarted agents change nothing. va keeps pinging vb
  // once a second; its console log (written by QEMU) is shipped again once n1's agent is back.
  const alive = () => [...logs('va').matchAll(/ALIVE (\d+) (ok|fail)/g)].map((m) => m[2]!);
  await c.until('va pinging vb every second', () => alive().length >= 3, 30_000);
  const before = alive().length;
  await c.killAgent('n1');
  await c.killAgent('n2');
  await new Promise((r) => setTimeout(r, 6000));
  c.startAgent('n1');
  c.startAgent('n2');
  await c.until('pings logged across the restart', () => alive().length >= before + 10, 60_000);
  assert.deepEqual(alive().filter((x) => x !== 'ok'), [], `every ping while the agents were down or restarting was answered:\n${logs('va').slice(-1500)}`);

  // The forwarding entries were programmed, not learned: n1 knows vb's MAC at n2's mesh address.
  const vbMac = c.json<{ mac: string }>(['vm', 'show', 'vb']).mac;
  const n2 = c.json<{ mesh: { address: string } }>(['node', 'show', 'n2']).mesh.address;
  assert.match(c.inNode('n1', 'bridge', ['fdb', 'show', 'dev', 'btxlan']).stdout, new RegExp(`${vbMac} dst ${n2.replace(/\./g, '\\.')}`));

  // A LAN host (any machine that can send the nodes UDP) crafts VXLAN packets with lan's VNI:
  // a broadcast ARP and a UDP packet to vb's MAC and address, to n1's and n2's underlay
  // addresses, to n2's mesh address by the underlay, and over IPv6. None may enter lan. The
  // same frames sent by n1 over the mesh (the control, last) reach vb's tap: the tunnel works
  // and the packets are well made. Watched on vb's tap (what QEMU hands the guest; the tiny
  // guest's busybox has no UDP listener) and by counters on each node's VXLAN port.
  const lanHost = c.addLanHost();
  const underlay = (n: string) => (JSON.parse(c.inNode(n, 'ip', ['-4', '-j', 'addr', 'show', 'dev', 'eth0']).stdout) as { addr_info: { local: string }[] }[])[0]!.addr_info[0]!.local;
  const vni = String((JSON.parse(c.inNode('n2', 'ip', ['-d', '-j', 'link', 'show', 'btxlan']).stdout) as { linkinfo: { info_data: { id: number } } }[])[0]!.linkinfo.info_data.id);
  for (const [ns, addr] of [[c.nsOf('n2'), 'fd42:b7::12'], [lanHost.ns, 'fd42:b7::99']] as const) assert.equal(spawnSync('ip', ['-n', ns, '-6', 'addr', 'add', `${addr}/64`, 'dev', 'eth0', 'nodad']).status, 0);
  assert.equal(lanHost.run('ip', ['route', 'add', '100.127.0.0/16', 'dev', 'eth0']).code, 0);
  const ATTACKER_MAC = '02:00:00:ba:d0:01';
  const CONTROL_MAC = '02:00:00:c0:ff:ee';
  const inner = (tag: string): Probe[] => [
    { tag: `${tag}-arp`, dstMac: BROADCAST_MAC, src: '10.30.0.99', dst: vb.ip, proto: 'arp' },
    { tag: `${tag}-udp`, dstMac: vbMac, src: '10.30.0.99', dst: vb.ip, proto: 'udp', sport: 7777, dport: 7777 },
  ];
  for (const n of ['n1', 'n2']) {
    const table = `bridge btprobe${c.id}`;
    const nft = (text: string) => assert.equal(spawnSync('ip', ['netns', 'exec', c.nsOf(n), 'nft', '-f', '-'], { input: text, encoding: 'utf8' }).status, 0);
    // Before butter's own bridge rules: every frame the VXLAN port takes in is counted.
    nft(`table ${table} {\n\tchain pre {\n\t\ttype filter hook prerouting priority -300; policy accept;\n\t\tiifname "btxlan" ether saddr ${ATTACKER_MAC} counter\n\t\tiifname "btxlan" ether saddr ${CONTROL_MAC} counter\n\t}\n}\n`);
  }
  const vbTap = tapName(c.json<{ id: string }>(['vm', 'show', 'vb']).id);
  const seen = await tagsArriving(c.nsOf('n2'), ['sniff-out', vbTap], 'mesh-udp', () => {
    for (const to of [underlay('n2'), underlay('n1'), n2, 'fd42:b7::12']) rawFrames(lanHost.ns, ['vxlan', to, String(VXLAN_PORT), vni, ATTACKER_MAC, JSON.stringify(inner(`attack-${to}`))]);
    rawFrames(c.nsOf('n1'), ['vxlan', n2, String(VXLAN_PORT), vni, CONTROL_MAC, JSON.stringify(inner('mesh'))]);
  });
  assert.deepEqual(seen, ['mesh-arp', 'mesh-udp'], 'only the mesh delivers VXLAN frames to a guest');
  for (const n of ['n1', 'n2']) {
    const rules = (JSON.parse(c.inNode(n, 'nft', ['-j', 'list', 'table', 'bridge', `btprobe${c.id}`]).stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }).nftables;
    const counts = rules.flatMap((r) => (r.rule ? [r.rule.expr.find((e) => e.counter)!.counter!.packets] : []));
    assert.equal(counts[0], 0, `no frame of the LAN host entered ${n}'s VXLAN port`);
    if (n === 'n2') assert.equal(counts[1], 2, "the mesh's two frames entered n2's");
  }
  assert.deepEqual(alive().slice(-3), ['ok', 'ok', 'ok'], 'va still pings vb over the mesh');

  // VPN: a laptop joins lan with the printed wg-quick file (its key made by the CLI, never
  // sent) and reaches both VMs by name: one on the gateway node, one behind it on the overlay.
  const joined = c.cli(['network', 'join', 'lan', '--peer', 'laptop', '--no-qr']);
  assert.equal(joined.code, 0, joined.stderr);
  const priv = /^PrivateKey = (\S+)$/m.exec(joined.stdout)?.[1] ?? '';
  assert.match(priv, /^[A-Za-z0-9+/]{43}=$/, joined.stdout);
  const listed = c.json<{ name: string; gateway: string; ip: string }[]>(['network', 'peers', 'lan']);
  assert.ok(!JSON.stringify(listed).includes(priv), 'the control plane never sees the private key');
  const gateway = listed[0]!.gateway;
  const laptop = c.addLaptop(joined.stdout);
  const reaches = (host: string, ...extra: string[]) => laptop.run('ping', ['-c', '1', '-W', '1', ...extra, host]).code === 0;
  await c.until('the laptop pings va and vb by name', () => reaches('va.lan.internal') && reaches('vb.lan.internal'), 30_000);
  // And multi by its name on lan: its eth1, on a third node.
  assert.equal(laptop.run('getent', ['hosts', 'multi.lan.internal']).stdout.split(/\s+/)[0], multi.nics[1]!.ip);
  assert.ok(reaches('multi.lan.internal'), "multi's eth1 through the gateway and the overlay");
  // Full-size packets, not fragmented on the way (the config's MTU is the network's).
  // Up to 3 tries of one packet each (a lone ping with a 1 s wait can be lost on a loaded machine;
  // a packet too big for the path never gets through, however often it is sent).
  const bigReaches = (host: string) => [1, 2, 3].some(() => reaches(host, '-M', 'do', '-s', '1362'));
  for (const vm of ['va', 'vb']) assert.ok(bigReaches(`${vm}.lan.internal`), `1390-byte packet to ${vm} through ${gateway}`);
  // A laptop that widens its own AllowedIPs still reaches nothing but lan: not another
  // network, not the mesh, not the gateway host's other addresses.
  const wg = laptop.iface;
  const server = laptop.run('wg', ['show', wg, 'peers']).stdout.trim();
  assert.equal(laptop.run('wg', ['set', wg, 'peer', server, 'allowed-ips', '10.30.0.0/24,10.31.0.0/24,100.127.0.0/16']).code, 0);
  for (const cidr of ['10.31.0.0/24', '100.127.0.0/16']) assert.equal(laptop.run('ip', ['route', 'add', cidr, 'dev', wg]).code, 0);
  const meshOf = (n: string) => c.json<{ mesh: { address: string } }>(['node', 'show', n]).mesh.address;
  for (const target of ['10.31.0.1', meshOf(gateway), meshOf(gateway === 'n1' ? 'n2' : 'n1')]) assert.ok(!reaches(target), `${target} is out of the laptop's reach`);
  const revoke = c.cli(['network', 'revoke', 'lan', 'laptop']);
  assert.equal(revoke.code, 0, revoke.stderr);
  await c.until('the laptop is cut off after revoke', () => !reaches('10.30.0.2'), 10_000);

  await removeAll();
  assert.equal(c.cli(['network', 'rm', 'lan']).code, 0);
  assert.equal(c.cli(['network', 'rm', 'other']).code, 0);
  assert.equal(c.cli(['network', 'rm', 'twin']).code, 0);
  // The last VM gone, the network's bridge and VXLAN port are gone from its nodes.
  await c.until('lan gone from n1', () => c.inNode('n1', 'ip', ['link', 'show', 'btxlan']).code !== 0, 30_000);
});

test('spread puts one VM on each node; binpack, --node and --zone place as asked', async () => {
  for (const n of ['a', 'b', 'c']) create(`spread-${n}`);
  const spread = await allRunning();
  assert.equal(new Set(spread.map((v) => v.node)).size, 3, JSON.stringify(spread));
  await removeAll();

  create('pack-1', '--policy', 'binpack');
  create('pack-2', '--policy', 'binpack');
  create('pinned', '--node', 'n2');
  create('western', '--zone', 'west');
  const placed = await allRunning();
  const at = (name: string) => placed.find((v) => v.name === name)!.node;
  assert.equal(at('pack-1'), at('pack-2'), 'binpack fills one node first');
  assert.equal(at('pinned'), 'n2');
  assert.equal(at('western'), 'n3');
  await removeAll();
});

test('a killed agent: unreachable within 15 s, VMs unknown; back again, it reconciles; evacuation moves its VM', async () => {
  create('survivor', '--node', 'n1');
  await allRunning();
  const pid = c.qemus('n1');
  assert.equal(pid.length, 1);

  await c.killAgent('n1');
  // A generous bound on hanging; the 10 s cutoff is checked without a clock in control-plane.test.ts.
  const ms = await c.until('n1 unreachable', () => c.json<{ name: string; state: string }[]>(['node', 'list']).find((n) => n.name === 'n1')!.state === 'unreachable', 60_000);
  console.log(`# n1 unreachable after ${ms} ms`);
  assert.equal(vms().find((v) => v.name === 'survivor')!.state, 'unknown');

  c.startAgent('n1'); // no token: the saved credential is used
  await c.until('survivor running again', () => vms().find((v) => v.name === 'survivor')?.state === 'running', 30_000);
  assert.deepEqual(c.qemus('n1'), pid, 'the same QEMU process was adopted');

  await c.killAgent('n1');
  await c.until('n1 unreachable', () => c.json<{ name: string; state: string }[]>(['node', 'list']).find((n) => n.name === 'n1')!.state === 'unreachable', 20_000);
  const refused = c.cli(['node', 'evacuate', 'n1']);
  assert.equal(refused.code, 2, 'without a terminal or --yes there is no confirmation');
  assert.match(refused.stderr, /not confirmed/);
  const ev = c.cli(['node', 'evacuate', 'n1', '--yes']);
  assert.equal(ev.code, 0, ev.stderr);
  assert.match(ev.stdout, /survivor: n1 → n[23]/);
  await c.until('survivor running elsewhere', () => {
    const v = vms().find((x) => x.name === 'survivor');
    return v?.state === 'running' && v.node !== 'n1';
  }, 120_000);

  // The lost node returns: it no longer has the VM in its desired state and removes its copy.
  c.startAgent('n1');
  await c.until('the stale copy on n1 is gone', () => c.qemus('n1').length === 0, 60_000);
  await removeAll();
});

test('vm rm --force while its node is lost: forgotten at once; the node, back, destroys its copy', async () => {
  create('doomed', '--node', 'n2');
  await allRunning();
  assert.equal(c.qemus('n2').length, 1);
  await c.killAgent('n2');
  await c.until('n2 unreachable', () => c.json<{ name: string; state: string }[]>(['node', 'list']).find((n) => n.name === 'n2')!.state === 'unreachable', 60_000);
  const plain = c.cli(['vm', 'rm', 'doomed']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /node n2 is not reachable/);
  const forced = c.cli(['vm', 'rm', 'doomed', '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.ok(!vms().some((v) => v.name === 'doomed'), 'forgotten at once');
  assert.equal(c.qemus('n2').length, 1, 'its copy still runs on the lost node');
  c.startAgent('n2');
  await c.until('the forgotten copy on n2 is gone', () => c.qemus('n2').length === 0, 60_000);
  assert.ok(!vms().some((v) => v.name === 'doomed'), 'its reports bring nothing back');
});

test("a removed node's peer disappears from every other node's mesh", async () => {
  const n3 = c.json<{ mesh: { publicKey: string } }>(['node', 'show', 'n3']).mesh.publicKey;
  const peersOf = (name: string) => c.inNode(name, 'wg', ['show', c.wgOf(name), 'peers']).stdout;
  assert.ok(peersOf('n1').includes(n3) && peersOf('n2').includes(n3));
  await c.killAgent('n3');
  assert.equal(c.cli(['node', 'remove', 'n3']).code, 0);
  // A generous bound on hanging, not a speed check (bench/mesh-join.ts times the mesh, for joins).
  const ms = await c.until('n3 gone from the peers of n1 and n2', () => !peersOf('n1').includes(n3) && !peersOf('n2').includes(n3), 60_000);
  console.log(`# peers updated after ${ms} ms`);
});
