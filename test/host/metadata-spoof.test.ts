/**
 * Metadata isolation on the real kernel. The metadata server knows a VM only by the network
 * its request came from and the packet's source address (agent/metadata/lookup.ts); that is
 * safe only because the bridge's `bridge butter` rules (core/nft-rules.ts) tie each tap to its
 * VM's MAC and IP. Here two real guests (the tiny image under QEMU/TCG, `butter up` in a fresh
 * namespace as in quickstart.test.ts) share the default network, each with its own secret in
 * its user-data. From the attacker's serial console we take the victim's IP, then its MAC,
 * then both, and each time ask 169.254.169.254 for user-data: the victim's secret must never
 * come back. A probe table of our own, hooked after Butter's filter, counts what still leaves
 * the attacker's tap with the victim's identity (must stay 0) and with the attacker's own
 * (must not: the probe can see). Restored to itself, the attacker gets its own user-data.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ButterInNetns } from './butter-cli.ts';
import { tinyVmHost } from './tiny-vm-host.ts';
import { gatewayMac } from '../../src/core/network-macs.ts';
import { tapName } from '../../src/core/vm-spec.ts';

let b: ButterInNetns;
let close: (() => Promise<void>) | undefined;
before(async () => ({ b, close } = await tinyVmHost()));
after(() => close?.());

interface Guest {
  name: string;
  id: string;
  ip: string;
  mac: string;
  tap: string;
  secret: string;
}

const consoleLog = (g: Guest) => join(b.dataDir, 'agent', 'vms', g.id, 'console.log');
const consoleText = (g: Guest) => readFileSync(consoleLog(g), 'utf8');

/** Types into the guest's serial console through QEMU's socket (as the agent's driver does). */
function type(g: Guest, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = createConnection(join(b.dataDir, 'agent', 'vms', g.id, 'console.sock'), () => c.end(text));
    c.on('error', reject);
    c.on('close', () => resolve());
    c.resume();
  });
}

let steps = 0;
/**
 * Runs shell lines on the guest's console and returns what the console printed until they
 * were done. The end marker is printed by arithmetic, so the echo of the typed line never
 * matches it.
 */
async function sh(g: Guest, lines: string, timeoutMs = 60_000): Promise<string> {
  const n = ++steps;
  const from = consoleText(g).length;
  await type(g, `${lines}\necho "step-done-$((${n} + 1000))"\n`);
  const done = new RegExp(`^step-done-${n + 1000}\\r?$`, 'm');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = consoleText(g).slice(from);
    if (done.test(out)) return out;
    if (Date.now() > deadline) assert.fail(`${g.name}: step ${n} not done in ${timeoutMs} ms:\n${lines}\n--- console ---\n${out}`);
    await sleep(200);
  }
}

/**
 * Ask the metadata server for user-data. `timeout`, because a SYN that is dropped is never
 * answered (and busybox 1.35's `wget -T` segfaults, see images/tiny/init).
 */
const FETCH = 'timeout 15 wget -q -O - http://169.254.169.254/user-data; rc=$?; echo; echo "wget-exit-$rc"';

test("a guest that takes its neighbour's IP, MAC or both never gets its user-data, and no spoofed frame passes the bridge", { timeout: 600_000 }, async () => {
  const net = JSON.parse(b.ok(['network', 'show', 'default', '--json'])) as { cidr: string; gateway: string };
  const prefix = net.cidr.split('/')[1]!;
  const gwMac = gatewayMac('default');

  // Two guests, booted in parallel, each with a secret of its own in its user-data.
  const secrets = { victim: `victim-secret-${randomBytes(6).toString('hex')}`, attacker: `attacker-secret-${randomBytes(6).toString('hex')}` };
  for (const [name, secret] of Object.entries(secrets)) {
    const file = join(b.dir, `${name}.sh`);
    writeFileSync(file, `#!/bin/sh\n: ${secret}\n`);
    b.ok(['vm', 'create', name, '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--user-data', file]);
  }
  const guests: Record<string, Guest> = {};
  for (const until = Date.now() + 240_000; ; ) {
    const vms = JSON.parse(b.ok(['vm', 'list', '--json'])) as { name: string; id: string; ip: string; mac: string; state: string }[];
    if (vms.length === 2 && vms.every((v) => v.state === 'running')) {
      for (const v of vms) guests[v.name] = { name: v.name, id: v.id, ip: v.ip, mac: v.mac.toLowerCase(), tap: tapName(v.id), secret: secrets[v.name as keyof typeof secrets] };
      break;
    }
    assert.ok(Date.now() < until, `guests not running in time: ${JSON.stringify(vms)}\n${b.upLog.slice(-3000)}`);
    await sleep(1000);
  }
  const victim = guests.victim!;
  const attacker = guests.attacker!;
  for (const g of [victim, attacker]) {
    for (const until = Date.now() + 60_000; !/^butter-tiny: ready\r?$/m.test(consoleText(g)); ) {
      assert.ok(Date.now() < until, `${g.name}: console shell not ready:\n${consoleText(g)}`);
      await sleep(500);
    }
  }
  assert.notEqual(attacker.ip, victim.ip);
  assert.notEqual(attacker.mac, victim.mac);

  // Our probe: after Butter's filter (priority filter = -200) on the same hook, so it sees
  // only what Butter let through from the attacker's tap.
  const tap = `"${attacker.tap}"`;
  const probe = [
    'table bridge probe {',
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority 100; policy accept;',
    `\t\tiifname ${tap} ip saddr ${victim.ip} counter comment "spoof-ip"`,
    `\t\tiifname ${tap} arp saddr ip ${victim.ip} counter comment "spoof-arp-ip"`,
    `\t\tiifname ${tap} ether saddr ${victim.mac} counter comment "spoof-mac"`,
    `\t\tiifname ${tap} arp saddr ether ${victim.mac} counter comment "spoof-arp-mac"`,
    `\t\tiifname ${tap} ether saddr ${attacker.mac} ip saddr ${attacker.ip} counter comment "legit"`,
    '\t}',
    '}',
    '',
  ].join('\n');
  const added = spawnSync('ip', ['netns', 'exec', b.ns, 'nft', '-f', '-'], { input: probe, encoding: 'utf8' });
  assert.equal(added.status, 0, `probe table: ${added.stderr}`);
  const counters = (): Record<string, number> => {
    const out = b.sh('nft', ['-j', 'list', 'table', 'bridge', 'probe']);
    assert.equal(out.code, 0, out.stderr);
    const found: Record<string, number> = {};
    for (const item of (JSON.parse(out.stdout) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] }).nftables) {
      if (!item.rule?.comment) continue;
      found[item.rule.comment] = item.rule.expr.find((e) => e.counter)!.counter!.packets;
    }
    return found;
  };
  const spoofed = (c: Record<string, number>) => ({ ip: c['spoof-ip'], arpIp: c['spoof-arp-ip'], mac: c['spoof-mac'], arpMac: c['spoof-arp-mac'] });
  const none = { ip: 0, arpIp: 0, mac: 0, arpMac: 0 };

  // The attacker owns its console: no DHCP client to undo its changes, and a way to become
  // anyone. Link down/up for the MAC; the gateway's MAC pinned, so no ARP (from a spoofed
  // address, which the bridge would drop first) stands between the guest and its IP packets.
  await sh(
    attacker,
    [
      'killall udhcpc',
      `be() { ip link set eth0 down; ip -4 addr flush dev eth0; ip link set eth0 address $2; ip link set eth0 up; ip -4 addr add $1/${prefix} dev eth0; arp -i eth0 -s ${net.gateway} ${gwMac}; ip -4 route replace default via ${net.gateway} dev eth0; ip -4 addr show dev eth0; ip link show dev eth0; }`,
    ].join('\n'),
  );

  const attempts: [string, string, string][] = [
    ["the victim's IP", victim.ip, attacker.mac],
    ["the victim's MAC", attacker.ip, victim.mac],
    ["the victim's IP and MAC", victim.ip, victim.mac],
  ];
  for (const [what, ip, mac] of attempts) {
    const out = await sh(attacker, `be ${ip} ${mac}\n${FETCH}`);
    assert.match(out, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/${prefix}`), `${what}: the attacker took the address:\n${out}`);
    assert.match(out, new RegExp(`link/ether ${mac}`), `${what}: the attacker took the MAC:\n${out}`);
    const exit = /^wget-exit-(\d+)\r?$/m.exec(out);
    assert.ok(exit, `${what}: the fetch ran:\n${out}`);
    console.log(`# with ${what}: wget exit ${exit[1]}, probe ${JSON.stringify(counters())}`);
    assert.ok(!out.includes(victim.secret), `${what}: the attacker got the victim's user-data:\n${out}`);
    assert.deepEqual(spoofed(counters()), none, `${what}: frames with the victim's identity left the attacker's tap`);
  }

  // Itself again: its own user-data, through the same path, and the probe saw it.
  const own = await sh(attacker, `be ${attacker.ip} ${attacker.mac}\n${FETCH}`);
  assert.ok(own.includes(attacker.secret), `the attacker, restored, gets its own user-data:\n${own}`);
  assert.ok(!consoleText(attacker).includes(victim.secret), "the victim's secret never reached the attacker's console");
  const final = counters();
  assert.ok(final.legit! > 0, `the probe saw the attacker's own traffic: ${JSON.stringify(final)}`);
  assert.deepEqual(spoofed(final), none);

  // The victim was not displaced: it still gets its own.
  const mine = await sh(victim, FETCH);
  assert.ok(mine.includes(victim.secret), `the victim still gets its own user-data:\n${mine}`);
});
