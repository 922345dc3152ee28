// A service for real: two namespace machines in two zones (real agents, QEMU under TCG, the
// WireGuard mesh, dnsmasq), a blueprint on the tiny image whose one template prints a variable
// and keeps resolving the service's DNS name. The instances land in different zones, render
// their template, and answer by the service's name from a plain VM of the network; a rolling
// update replaces them one at a time while that VM, asking about five times a second, never
// gets an answer without an address; a rollback brings the old value back the same way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Service } from '../../src/api/schemas/service.ts';
import { NamespaceCluster } from './cluster-harness.ts';
import { gatewayMac } from '../../src/core/network-macs.ts';

let c: NamespaceCluster;
let blueprint: string;
/** The watcher's first lookup that answered both instances: from it on, none may answer no address. */
let watchFrom: number | undefined;
const t0 = Date.now();

// The instances' template (nunjucks): the variable, then, in the background so that the
// guest's init carries on, the service's name as this instance sees it, each time it changes.
const TEMPLATE = `#!/bin/sh
echo "greeting={{ Greeting }} index={{ index }}"
(
last=none
while true; do
  a=$(nslookup -type=a {{ dns_name }} 2>/dev/null | awk '/^Name:/ { n = 1 } n && /^Address/ { printf " %s", $NF }')
  if [ "$a" != "$last" ]; then echo "sees:$a"; last=$a; fi
  sleep 1
done
) &
`;

// The watcher, a plain VM of the network that lives through every rollout: a numbered line per
// lookup, about five a second, so a missing line (a dropped console byte) shows as a gap.
const WATCHER = `#!/bin/sh
(
n=0
while true; do
  n=$((n + 1))
  out=$(nslookup -type=a web.lan.internal 2>&1)
  a=$(echo "$out" | awk '/^Name:/ { n = 1 } n && /^Address/ { printf " %s", $NF }')
  # With no address, what nslookup said instead (NXDOMAIN, a timeout...), on the same line.
  t=$(date +%T)
  if [ -n "$a" ]; then echo "lookup $n@$t:$a"; else echo "lookup $n@$t: [$(echo "$out" | tr '\n\t' '  ')]"; fi
  sleep 0.2 2>/dev/null || sleep 1
done
) &
`;

before(async () => {
  c = new NamespaceCluster();
  await c.startServer();
  await c.addNode('n1', 'east');
  await c.addNode('n2', 'west');
  const { buildTiny } = await import('../../src/daemon/tiny-image.ts');
  const t = await buildTiny(`${c.dir}/tiny`);
  const r = c.cli(['image', 'add', 'tiny', '--kernel', t.kernel, '--initrd', t.initrd, '--root-disk', t.rootDisk, '--cmdline', t.cmdline]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(c.cli(['network', 'create', 'lan', '--cidr', '10.40.0.0/24']).code, 0);
  mkdirSync(`${c.dir}/bp`);
  blueprint = `${c.dir}/bp/web.yml`;
  writeFileSync(
    blueprint,
    `network: { subnetwork_max_instance_count: 8 }
placement: { availability_zones: 2 }
instance:
  memory: 192MB
  cpus: 1
  disks: [ { size: 256MB, type: standard } ]
image: { name: tiny }
initialization:
  - path: greet.sh
    vars: { Greeting: { required: true } }
`,
  );
  writeFileSync(`${c.dir}/bp/greet.sh`, TEMPLATE);
  writeFileSync(`${c.dir}/watch.sh`, WATCHER);
  // Where each node's bridge has the gateway's MAC, sampled all along: on its own gateway port,
  // never behind the VXLAN port (nft-rules.ts keeps the other nodes' gateways out).
  const gw = gatewayMac('lan');
  let last = '';
  sampler = setInterval(() => {
    const where = ['n1', 'n2'].map((n) => {
      const out = c.inNode(n, 'bridge', ['-j', 'fdb', 'show', 'br', 'bt-lan']).stdout.trim();
      const entries = out ? (JSON.parse(out) as { mac: string; ifname: string }[]) : [];
      return `${n}:${entries.filter((e) => e.mac === gw).map((e) => e.ifname).join('+')}`;
    });
    if (where.join() !== last) gatewayPorts.push({ at: new Date().toISOString().slice(11, 19), where });
    last = where.join();
  }, 500);
});
let sampler: NodeJS.Timeout | undefined;
/** Each change of where the nodes' bridges have the gateway's MAC. */
const gatewayPorts: { at: string; where: string[] }[] = [];
after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(c?.log);
  clearInterval(sampler);
  await c?.cleanup();
  console.log(`# services host test: ${Math.round((Date.now() - t0) / 1000)} s in all`);
});

const show = () => c.json<Service>(['service', 'show', 'web']);
const logs = (vm: string) => c.cli(['vm', 'logs', vm]).stdout;
const ipsOf = (s: Service) => s.instances.map((i) => i.ip!).sort();

/** The watcher's lookups so far: sequence number and the addresses answered. */
function lookups(): { n: number; ips: string[] }[] {
  // Not anchored: the console's shell prompt may share a line with one.
  return [...logs('watch').matchAll(/lookup (\d+)@(\d\d:\d\d:\d\d):([^[\n]*)(\[.*\])?$/gm)].map((m) => ({ n: Number(m[1]), at: m[2]!, ips: m[3]!.trim().split(/\s+/).filter(Boolean).sort(), ...(m[4] ? { said: m[4] } : {}) }));
}
const lastLookup = () => lookups().at(-1);

/** Waits until every instance's console shows `greeting=VALUE` for its own index. */
async function greeted(s: Service, value: string): Promise<void> {
  for (const i of s.instances) {
    await c.until(`${i.name} prints greeting=${value}`, () => logs(i.name).includes(`greeting=${value} index=${i.index}`), 180_000);
    assert.doesNotMatch(logs(i.name), new RegExp(`greeting=(?!${value} )`), `${i.name} rendered only its own revision's value`);
  }
}

interface Snapshot {
  at: string;
  instances: { key: string; revision: number; state: string; where: string }[];
}

/**
 * Runs a rollout command (`service update|rollback ... --wait`) while watching the service:
 * the instances (name@revision, state) each time they change, and the watcher's lookups from
 * the last one before the command to the first one after it that answers the final set.
 */
async function rollout(args: string[]): Promise<{ snapshots: Snapshot[]; final: Service; window: { n: number; ips: string[] }[]; ever: Set<string> }> {
  const before = show();
  const from = lastLookup()!;
  const ever = new Set(ipsOf(before));
  const snapshots: Snapshot[] = [];
  let seen = '';
  const cmd = c.cliAsync([...args, '--wait', '--json']);
  let done: { code: number; stdout: string; stderr: string } | undefined;
  void cmd.then((r) => (done = r));
  while (!done) {
    const s = show();
    for (const i of s.instances) if (i.ip) ever.add(i.ip);
    const snap = { at: new Date().toISOString().slice(11, 19), instances: s.instances.map((i) => ({ key: `${i.name}@${i.revision}`, revision: i.revision, state: i.state, where: `${i.node}/${i.ip}` })) };
    if (JSON.stringify(snap.instances) !== seen) snapshots.push(snap);
    seen = JSON.stringify(snap.instances);
    await sleep(500);
  }
  assert.equal(done.code, 0, `${args.join(' ')}: ${done.stderr}`);
  const final = show();
  await c.until('the watcher sees the new instances by name', () => {
    const l = lastLookup()!;
    return l.n > from.n && l.ips.join() === ipsOf(final).join();
  }, 60_000);
  const all = lookups();
  const end = all.find((l) => l.n > from.n && l.ips.join() === ipsOf(final).join())!;
  return { snapshots, final, window: all.filter((l) => l.n >= from.n && l.n <= end.n), ever };
}

/** What every rollout must show: one instance at a time, a replacement running before an old one goes, no lookup without an address. */
function checkRollout(r: Awaited<ReturnType<typeof rollout>>, oldKeys: string[], to: number): void {
  const log = r.snapshots.map((s) => `${s.at} ${s.instances.map((i) => `${i.key}:${i.state}:${i.where}`).join(' ')}`).join('\n');
  console.log(`# ${r.window.length} lookups during the rollout; ${r.snapshots.length} instance snapshots:\n${log.replace(/^/gm, '#   ')}`);
  // The DNS name: contiguous numbered lookups (none lost), each with an address, each an instance's.
  const ns = r.window.map((l) => l.n);
  assert.deepEqual(ns, Array.from({ length: ns.length }, (_, k) => ns[0]! + k), 'the watcher printed every lookup');
  const empty = r.window.filter((l) => l.ips.length === 0);
  assert.deepEqual(empty, [], `of ${r.window.length} lookups during the rollout, these answered no address`);
  for (const l of r.window) for (const ip of l.ips) assert.ok(r.ever.has(ip), `lookup ${l.n} answered ${ip}, no instance's address`);
  assert.equal(r.final.rollout.state, 'done');
  assert.equal(r.final.revision, to);
  assert.deepEqual(r.final.instances.map((i) => [i.revision, i.state]), [[to, 'running'], [to, 'running']]);
  assert.deepEqual([...new Set(r.final.instances.map((i) => i.zone))].sort(), ['east', 'west'], 'the replacements keep the spread over both zones');
  const newKeys = r.final.instances.map((i) => `${i.name}@${i.revision}`);
  for (const k of oldKeys) assert.ok(!newKeys.includes(k), `${k} was replaced:\n${log}`);
  // One at a time: never more than one extra instance, and a moment with one old and one new instance both running.
  // (An old instance that is `deleting` has left the DNS answer already: the next replacement may start.)
  for (const s of r.snapshots) assert.ok(s.instances.filter((i) => i.state !== 'deleting').length <= 3, `at most one replacement at a time:\n${log}`);
  const newOnes = r.snapshots.map((s) => s.instances.filter((i) => i.revision === to && !oldKeys.includes(i.key)).length);
  for (let k = 1; k < newOnes.length; k++) assert.ok(newOnes[k]! >= newOnes[k - 1]!, `replacements only come, never go:\n${log}`);
  assert.ok(
    r.snapshots.some((s) => s.instances.filter((i) => i.state === 'running' && oldKeys.includes(i.key)).length === 1 && s.instances.filter((i) => i.state === 'running' && !oldKeys.includes(i.key)).length === 1),
    `in turn: one old and one new instance running at once:\n${log}`,
  );
  for (const s of r.snapshots) assert.ok(s.instances.filter((i) => i.state === 'running').length >= 2, `a replacement runs before an old instance goes:\n${log}`);
}

test('a service of two instances: one per zone, its template rendered, its name answering both from another VM', async () => {
  const w = c.cli(['vm', 'create', 'watch', '--image', 'tiny', '--memory', '192M', '--disk', '256M', '--network', 'lan', '--node', 'n1', '--user-data', `${c.dir}/watch.sh`]);
  assert.equal(w.code, 0, w.stderr);
  const t = Date.now();
  const r = c.cli(['service', 'create', 'lan', 'web', '--blueprint', blueprint, '--var', 'Greeting=hello', '--wait', '--json']);
  assert.equal(r.code, 0, r.stderr);
  console.log(`# service create --wait: ${Math.round((Date.now() - t) / 1000)} s`);
  const s = show();
  assert.equal(s.dnsName, 'web.lan.internal');
  assert.equal(s.instances.length, 2);
  assert.deepEqual(s.instances.map((i) => i.state), ['running', 'running']);
  assert.deepEqual(s.instances.map((i) => i.zone).sort(), ['east', 'west'], 'one instance per zone');
  assert.deepEqual(s.instances.map((i) => i.node).sort(), ['n1', 'n2']);
  await greeted(s, 'hello');
  const ips = ipsOf(s);
  await c.until('the watcher resolves web.lan.internal to both instances', () => lastLookup()?.ips.join() === ips.join(), 120_000);
  watchFrom = lastLookup()!.n;
  // And each instance sees the other by the service's name (across the mesh, for one of them).
  const sees = (vm: string) => [...logs(vm).matchAll(/^sees:(.*)$/gm)].map((m) => m[1]!.trim().split(/\s+/).filter(Boolean).sort().join());
  for (const i of s.instances) await c.until(`${i.name} resolves both`, () => sees(i.name).includes(ips.join()), 120_000);
});

test('a rolling update replaces each instance in turn; the name never answers no address', async () => {
  const oldKeys = show().instances.map((i) => `${i.name}@${i.revision}`);
  const r = await rollout(['service', 'update', 'web', '--blueprint', blueprint, '--var', 'Greeting=bonjour']);
  checkRollout(r, oldKeys, 2);
  await greeted(r.final, 'bonjour');
});

test('a rollback restores the old value on new instances, the same way', async () => {
  const oldKeys = show().instances.map((i) => `${i.name}@${i.revision}`);
  const r = await rollout(['service', 'rollback', 'web']);
  checkRollout(r, oldKeys, 1);
  await greeted(r.final, 'hello');
});

test('from its first full answer to the end, the name never answered no address (between the rollouts too)', async () => {
  assert.ok(watchFrom !== undefined, 'the first test saw the name answer');
  await sleep(5000);
  const all = lookups().filter((l) => l.n >= watchFrom!);
  const ns = all.map((l) => l.n);
  assert.deepEqual(ns, Array.from({ length: ns.length }, (_, k) => watchFrom! + k), 'the watcher printed every lookup');
  assert.deepEqual(all.filter((l) => l.ips.length === 0), [], `of ${all.length} lookups, these answered no address`);
  console.log(`# ${all.length} lookups in all since the first full answer`);
  // Where the gateway's MAC was: learned (it appears once the gateway has spoken), and only ever on each node's own gateway port.
  const ports = gatewayPorts.map((g) => `${g.at} ${g.where.join(' ')}`).join('\n');
  assert.ok(gatewayPorts.length > 0, 'sampled');
  for (const g of gatewayPorts) for (const w of g.where) assert.ok(!w.includes('btxlan'), `the gateway's MAC behind the VXLAN port:\n${ports}`);
  for (const w of gatewayPorts.at(-1)!.where) assert.match(w, /^n\d:\S+$/, `each node's bridge knows its gateway's MAC on one port:\n${ports}`);
});
