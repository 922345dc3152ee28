/**
 * `path verify`'s probes (agent/host/path-probe.ts, core/paths/probe-table.ts) against the real
 * kernel: a "machine" namespace with a network's bridge, two "guests" on it (front, db) behind
 * Butter's real rules (`inet butter` and `bridge butter` from core/nft-rules.ts, with their
 * per-tap anti-spoofing, and `inet butter_paths`). The planner's probes go through them from a
 * probe port: the ones the paths allow are admitted and the rest dropped, no guest sees any
 * of them, nothing of the probe is left afterwards, and a ruleset broken by hand (an extra
 * accept, a path's element removed) is caught as exactly those disagreements.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { NetnsExec } from '../../src/agent/host/netns-exec.ts';
import { PROBE_NETNS_PREFIX, removeStaleProbes, runProbes } from '../../src/agent/host/path-probe.ts';
import { renderNftRuleset } from '../../src/core/nft-rules.ts';
import type { Path, PathModel } from '../../src/core/paths/model.ts';
import { renderPathsRuleset, type PathsNetwork } from '../../src/core/paths/nft-paths.ts';
import { compareResults, planVerify, type VerifyInstance } from '../../src/core/paths/verify-plan.ts';
import { requires } from '../requires.ts';

const id = randomBytes(3).toString('hex');
const MACHINE = `bt-pvm-${id}`;
const A = `bt-pva-${id}`;
const B = `bt-pvb-${id}`;

const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/nft') && existsSync('/proc/sys/net/bridge');
const skip = requires(canRun, 'needs root, nft and br_netfilter');
const sys = new SystemExec();
const machine = new NetnsExec(sys, MACHINE);
const made: string[] = [];

const inNs = (ns: string, args: string[], input?: string) => sys.run('ip', ['netns', 'exec', ns, ...args], input === undefined ? {} : { input });

after(async () => {
  for (const n of made) await sys.run('ip', ['netns', 'del', n], { allowFail: true });
});

const WEB: PathsNetwork[] = [{ name: 'web', bridge: 'bt-web', gateway: '10.231.0.1' }];
const model: PathModel = {
  services: [
    { network: 'web', name: 'front', block: '10.231.0.16/28' },
    { network: 'web', name: 'db', block: '10.231.0.32/29' },
  ],
  paths: [
    { network: 'web', from: { service: 'front' }, to: 'db', proto: 'tcp', ports: [5432, 5432] },
    { network: 'web', from: { cidr: '0.0.0.0/0' }, to: 'front', proto: 'tcp', ports: [80, 80] },
    { network: 'web', from: { service: 'db' }, to: 'db', proto: 'udp', ports: [7946, 7946] },
  ] satisfies Path[],
};
const instances: VerifyInstance[] = [];

before(async () => {
  if (!canRun) return;
  for (const n of [MACHINE, A, B]) {
    await sys.run('ip', ['netns', 'add', n]);
    made.push(n);
    await inNs(n, ['ip', 'link', 'set', 'lo', 'up']);
  }
  assert.equal((await inNs(MACHINE, ['cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'])).stdout.trim(), '1', 'br_netfilter passes bridged IPv4 to the inet hooks');
  await machine.run('ip', ['link', 'add', 'bt-web', 'mtu', '1450', 'type', 'bridge']);
  await machine.run('ip', ['link', 'set', 'bt-web', 'up']);
  const ports = [];
  for (const [ns, tap, service, ip] of [[A, 'btpa', 'front', '10.231.0.20'], [B, 'btpb', 'db', '10.231.0.33']] as const) {
    await sys.run('ip', ['link', 'add', tap, 'netns', MACHINE, 'mtu', '1450', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1450', 'netns', ns]);
    await machine.run('ip', ['link', 'set', tap, 'master', 'bt-web', 'up']);
    await inNs(ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await inNs(ns, ['ip', 'link', 'set', 'eth0', 'up']);
    const mac = (JSON.parse((await inNs(ns, ['ip', '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!.address;
    instances.push({ service, node: 'm', ip, mac });
    ports.push({ tap, mac, ip });
  }
  // Butter's own tables, as the agent renders them for this network (the uplink is not made:
  // its rules only match its name), then the paths table.
  const ruleset = renderNftRuleset(
    [{ name: 'web', bridge: 'bt-web', cidr: '10.231.0.0/24', gateway: '10.231.0.1', nat: false, ports, uplink: { device: 'bu-web', root: '10.255.7.1', ns: '10.255.7.2' } }],
    { metadataPort: 8169 },
  );
  await machine.run('nft', ['-f', '-'], { input: ruleset });
  await machine.run('nft', ['-f', '-'], { input: renderPathsRuleset(model, WEB) });
});

/** What each guest's own stack has taken in: a probe must never add to it. */
async function guestCounters(): Promise<string> {
  const out: string[] = [];
  for (const ns of [A, B]) {
    const snmp = (await inNs(ns, ['cat', '/proc/net/snmp'])).stdout.split('\n');
    for (const proto of ['Tcp:', 'Udp:']) {
      const [names, values] = snmp.filter((l) => l.startsWith(proto)).map((l) => l.split(/\s+/));
      for (const k of ['InSegs', 'InDatagrams', 'NoPorts', 'InErrors']) if (names!.includes(k)) out.push(`${ns} ${proto}${k}=${values![names!.indexOf(k)]}`);
    }
  }
  return out.join(' ');
}

/** Anything of a probe left in the machine: namespaces, links, tables. */
async function leftovers(): Promise<string[]> {
  const left: string[] = [];
  const namespaces = JSON.parse((await sys.run('ip', ['-j', 'netns', 'list'])).stdout || '[]') as { name: string }[];
  left.push(...namespaces.filter((n) => n.name.startsWith(PROBE_NETNS_PREFIX)).map((n) => `namespace ${n.name}`));
  const links = JSON.parse((await machine.run('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string; master?: string }[];
  left.push(...links.filter((l) => l.ifname.startsWith('bprobe') || (l.master === 'bt-web' && !['btpa', 'btpb'].includes(l.ifname))).map((l) => `link ${l.ifname}`));
  left.push(...(await machine.run('nft', ['list', 'tables'])).stdout.split('\n').filter((l) => l.includes('butter_probe')));
  return left;
}

const plan = () => planVerify(model, 'web', instances);

test('the probes through the real rules: admitted exactly where the paths allow, no guest sees one, nothing is left', { skip }, async () => {
  const p = plan();
  assert.equal(p.batches.length, 1);
  const allowed = p.probes.filter((x) => x.expect).map((x) => `${x.from}->${x.to}:${x.port}/${x.proto}`);
  assert.deepEqual(allowed, ['db->db:7946/udp', 'front->db:5432/tcp', 'db->front:80/tcp', 'front->front:80/tcp'], 'the plan has allowed probes of each kind');
  assert.ok(p.probes.length > allowed.length * 4, `and many denied ones (${p.probes.length} probes)`);

  const seen = await guestCounters();
  const admitted = await runProbes(machine, 'bt-web', p.batches[0]!.probes);
  assert.deepEqual(
    p.probes.filter((x) => admitted[x.id]).map((x) => `${x.from}->${x.to}:${x.port}/${x.proto}`),
    allowed,
    'admitted: exactly the allowed probes',
  );
  const report = compareResults(p, [{ node: 'm', admitted }]);
  assert.deepEqual(report.disagreements, []);
  assert.equal(report.ok, true);
  assert.equal(report.probed, p.probes.length);
  assert.equal(await guestCounters(), seen, 'no probe reached a guest, admitted or not');
  assert.deepEqual(await leftovers(), [], 'nothing of the probe is left');
});

test('a ruleset broken by hand is caught: an extra accept and a removed path, exactly those probes', { skip }, async () => {
  await machine.run('nft', ['insert', 'rule', 'inet', 'butter_paths', 'forward', 'ip', 'saddr', '10.231.0.20', 'ip', 'daddr', '10.231.0.33', 'tcp', 'dport', '5433', 'accept']);
  await machine.run('nft', ['delete', 'element', 'inet', 'butter_paths', 'paths_0', '{ "bt-web" . 10.231.0.16/28 . 0.0.0.0/0 . tcp . 80 }']);
  try {
    const p = plan();
    const report = compareResults(p, [{ node: 'm', admitted: await runProbes(machine, 'bt-web', p.batches[0]!.probes) }]);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.disagreements.map((d) => `${d.from}->${d.to} ${d.src}->${d.dst}:${d.port} expected ${d.expected}, ${d.observed}`),
      [
        'front->db 10.231.0.20->10.231.0.33:5433/tcp expected denied, admitted',
        'db->front 10.231.0.33->10.231.0.20:80/tcp expected allowed, dropped',
        'front->front 10.231.0.16->10.231.0.20:80/tcp expected allowed, dropped',
      ],
    );
    assert.deepEqual(await leftovers(), []);
  } finally {
    await machine.run('nft', ['-f', '-'], { input: renderPathsRuleset(model, WEB) });
  }
});

test('a run that fails half way (no sender) leaves nothing; removeStaleProbes clears what a killed run left', { skip }, async () => {
  const p = plan();
  await assert.rejects(runProbes(machine, 'bt-web', p.batches[0]!.probes, { node: '/nonexistent/node' }), /nonexistent/);
  assert.deepEqual(await leftovers(), [], 'a failed run removes its namespace, port and table');

  // What a killed agent leaves: its table, its namespace holding one end of the port, the other on the bridge.
  const stale = `${id}ff`;
  const staleNs = `${PROBE_NETNS_PREFIX}${stale}`;
  await machine.run('nft', ['add', 'table', 'bridge', `butter_probe_${stale}`]);
  await machine.run('ip', ['netns', 'add', staleNs]);
  made.push(staleNs);
  await machine.run('ip', ['link', 'add', `bprobe${stale}`, 'type', 'veth', 'peer', 'name', 'probe', 'netns', staleNs]);
  await machine.run('ip', ['link', 'set', `bprobe${stale}`, 'master', 'bt-web']);
  assert.deepEqual((await leftovers()).sort(), [`link bprobe${stale}`, `namespace ${staleNs}`, `table bridge butter_probe_${stale}`]);
  const removed = await removeStaleProbes(machine);
  // The kernel tears a deleted namespace down in the background: its veth may still be there
  // a moment, and is then deleted by name.
  assert.deepEqual(removed.filter((r) => !r.startsWith('link ')), [`namespace ${staleNs}`, `table bridge butter_probe_${stale}`], removed.join(', '));
  assert.deepEqual((await leftovers()).filter((l) => l.includes(stale)), []);
});
