/**
 * Warm images on a real tiny guest (issue 16): `butter up` in a namespace, real QEMU (TCG).
 * `image warm tiny` boots the template, waits for its `warm-ready`, saves it; two VMs created
 * from it start warm and each becomes itself: its own hostname (from the metadata server), its
 * own MAC and address in the guest, a kernel RNG that differs (`/proc/sys/kernel/random/uuid`
 * and a read of `/dev/urandom`, compared over the serial console), its user-data run, and
 * each answers TCP from the host. No template is left running and none is a VM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ButterInNetns } from './butter-cli.ts';
import { tinyVmHost, type TinyVmHost } from './tiny-vm-host.ts';
import { bridgeName } from '../../src/core/vm-spec.ts';

let b: ButterInNetns;
let ask: TinyVmHost['ask'];
let close: (() => Promise<void>) | undefined;
before(async () => ({ b, ask, close } = await tinyVmHost()));
after(() => close?.());

interface ShownVm {
  id: string;
  name: string;
  ip: string;
  mac: string;
  state: string;
  start: string;
  startReason: string | null;
}


test('two warm clones of tiny: each its own hostname, MAC, address and random numbers, each answers TCP', async () => {
  const warmed = JSON.parse(b.ok(['image', 'warm', 'tiny', '--memory', '256M', '--json'])) as { warm: { node: string; state: string; reason?: string; sizeBytes?: number }[] };
  assert.equal(warmed.warm.length, 1);
  assert.equal(warmed.warm[0]!.state, 'ready', `warm state: ${JSON.stringify(warmed.warm[0])}`);
  const warmDir = join(b.dataDir, 'agent', 'warm');
  const [wid] = readdirSync(warmDir);
  assert.ok(wid, 'the warm state is on the node');
  assert.equal(statSync(join(warmDir, wid!, 'disk.qcow2')).mode & 0o777, 0o400, 'its disk layer is frozen (read-only)');
  // Its RAM is a file of its own (the template's memory, mapped shared); the saved state holds
  // its devices only, so a clone maps the RAM instead of loading it.
  const ram = join(warmDir, wid!, 'memory.ram');
  assert.equal(statSync(ram).size, 256 * 2 ** 20, 'its RAM, as large as the guest\'s memory');
  assert.ok(statSync(ram).blocks * 512 > 8 << 20, 'holding what the guest wrote');
  const stateBytes = statSync(join(warmDir, wid!, 'memory.state')).size;
  assert.ok(stateBytes > 0 && stateBytes < 8 << 20, `its device state without the RAM: ${stateBytes} bytes`);
  const ramHash = () => createHash('sha256').update(readFileSync(ram)).digest('hex');
  const ramBefore = ramHash();
  assert.equal(existsSync(join(warmDir, wid!, 'qemu.pid')), false, 'the template is gone');
  assert.deepEqual(JSON.parse(b.ok(['vm', 'list', '--json'])), [], 'the template is no VM');

  // The clone's user-data runs as on a cold boot: a web server answering its own hostname.
  const ud = join(b.dir, 'user-data');
  writeFileSync(ud, '#!/bin/sh\nmkdir -p /www && hostname > /www/index.html && httpd -p 8080 -h /www\n');
  const vms: ShownVm[] = [];
  for (const name of ['warm-a', 'warm-b']) {
    const vm = JSON.parse(b.ok(['vm', 'create', name, '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--user-data', ud, '--wait', '--json'])) as ShownVm;
    assert.equal(vm.state, 'running');
    vms.push(JSON.parse(b.ok(['vm', 'show', name, '--json'])) as ShownVm);
  }
  const net = JSON.parse(b.ok(['network', 'show', 'default', '--json'])) as { gateway: string; mtu: number };
  const seen: Record<string, string[]> = { mac: [], ip: [], uuid: [], random: [] };
  for (const vm of vms) {
    assert.equal(vm.start, 'warm', `${vm.name} started warm (${vm.startReason ?? ''})`);
    assert.match(b.ok(['vm', 'logs', vm.name]), /butter-tiny: warm clone generation=[0-9a-f]{16}/, 'the guest woke from the template');
    assert.equal(await ask(vm.name, (t) => `echo "${t}-$(hostname)"`), vm.name, 'its hostname from the metadata server');
    const mac = await ask(vm.name, (t) => `echo "${t}-$(cat /sys/class/net/eth0/address)"`);
    assert.equal(mac, vm.mac, 'the guest took its own MAC');
    const ip = await ask(vm.name, (t) => `echo "${t}-$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)"`);
    assert.equal(ip, vm.ip, 'and its own address');
    // Set from its identity, not asked of DHCP: the lease dnsmasq would give (route, MTU, resolver).
    const logs = b.ok(['vm', 'logs', vm.name]);
    assert.match(logs, /butter-tiny: warm step address at=/, 'it set the address from its identity');
    assert.doesNotMatch(logs, /warm step dhcp/, 'without DHCP');
    // One question for three answers (`ask` reads one word back: spaces become _, parts are split at +).
    const lease = await ask(vm.name, (t) => `echo "${t}-$(ip -4 route show default | cut -d' ' -f1-3 | tr ' ' _)+$(cat /sys/class/net/eth0/mtu)+$(tr '\\n ' __ </etc/resolv.conf)"`);
    assert.deepEqual(lease.split('+'), [`default_via_${net.gateway}`, String(net.mtu), `search_default.internal_nameserver_${net.gateway}_`]);
    seen.mac!.push(mac);
    seen.ip!.push(ip);
    // The kernel's vmgenid driver is bound to QEMU's device: it reseeds the RNG when the generation id changes (each restore).
    assert.equal(await ask(vm.name, (t) => `echo "${t}-$(ls /sys/bus/acpi/drivers/vmgenid | grep -c :)"`), '1', 'the vmgenid driver is bound');
    seen.uuid!.push(await ask(vm.name, (t) => `echo "${t}-$(cat /proc/sys/kernel/random/uuid)"`));
    seen.random!.push(await ask(vm.name, (t) => `echo "${t}-$(head -c 16 /dev/urandom | od -An -v -tx1 | tr -d ' \\n')"`));
    // TCP from the host, to its own address: the page names it.
    let page = '';
    for (let i = 0; i < 60 && page.trim() !== vm.name; i++) {
      page = b.sh('curl', ['-s', '--max-time', '3', `http://${vm.ip}:8080/`]).stdout;
      if (page.trim() !== vm.name) await sleep(1000);
    }
    assert.equal(page.trim(), vm.name, `${vm.name} answers TCP on ${vm.ip}:8080`);
  }
  for (const [what, values] of Object.entries(seen)) {
    assert.equal(values.length, 2);
    assert.notEqual(values[0], values[1], `the two clones share no ${what}: ${values.join(' / ')}`);
  }
  // Nothing of the template runs: only the two clones' QEMUs, each with the template's RAM mapped private.
  const qemus = b.processes().filter((p) => p.cmd.includes('qemu-system'));
  assert.equal(qemus.length, 2, b.processes().map((p) => p.cmd.slice(0, 120)).join('\n'));
  for (const q of qemus) assert.ok(q.cmd.includes(`memory-backend-file,id=ram0,size=256M,mem-path=${ram},share=off`), `a clone maps the template's RAM private: ${q.cmd}`);
  assert.equal(ramHash(), ramBefore, "the clones' writes to their RAM are their own: the template's file is unchanged");
  // A clone suspended and resumed: its RAM (a private mapping) is saved whole and it goes on where it was.
  const mark = await ask('warm-a', (t) => `echo "$$-${t}" > /tmp/mark && echo "${t}-ok"`);
  assert.equal(mark, 'ok');
  const suspended = JSON.parse(b.ok(['vm', 'suspend', 'warm-a', '--json'])) as ShownVm;
  assert.equal(suspended.state, 'suspended');
  const saved = statSync(join(b.dataDir, 'agent', 'vms', vms[0]!.id, 'memory.state')).size;
  assert.ok(saved > 8 << 20, `a clone's suspend saves its RAM too: ${saved} bytes`);
  assert.equal((JSON.parse(b.ok(['vm', 'resume', 'warm-a', '--json'])) as ShownVm).state, 'running');
  assert.match(await ask('warm-a', (t) => `echo "${t}-$(cat /tmp/mark)"`), /^\d+-/, 'what it wrote before is still there');
  assert.equal(ramHash(), ramBefore);
  for (const vm of vms) b.ok(['vm', 'rm', vm.name]);
  // Their network lingers on the node (butter.yaml networks.lingerSeconds, 60 s by default):
  // the next VM finds its bridge, gateway namespace and dnsmasq in place, built by no one.
  const bridge = bridgeName('default');
  for (let i = 0; i < 120 && (JSON.parse(b.ok(['vm', 'list', '--json'])) as unknown[]).length > 0; i++) await sleep(500);
  // Past the pass that confirmed them gone, where the network was torn down before.
  await sleep(2000);
  const from = b.upLog.length;
  assert.equal(b.sh('ip', ['link', 'show', bridge]).code, 0, 'the bridge is still there with no VM on it');
  b.ok(['vm', 'create', 'warm-c', '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--wait']);
  assert.doesNotMatch(b.upLog.slice(from), /created bridge|created gateway namespace|started dnsmasq/, 'nothing of the network was built again');
  b.ok(['vm', 'rm', 'warm-c']);
  // Unwarmed, the node deletes the saved state once no clone's disk stands on it.
  assert.match(b.ok(['image', 'unwarm', 'tiny']), /image tiny: no longer warm on /);
  for (let i = 0; i < 120 && readdirSync(warmDir).length > 0; i++) await sleep(500);
  assert.deepEqual(readdirSync(warmDir), [], 'the warm state is gone from the node');
  assert.deepEqual((JSON.parse(b.ok(['image', 'show', 'tiny', '--json'])) as { warm: unknown[] }).warm, []);
});
