// The "done when", for real: `butter up` in a namespace, a real QEMU guest (TCG here)
// booting the tiny image, its metadata fetch, user-data output in `vm logs`, resize, stop,
// start, SIGKILL of the agent with the VM surviving, rm leaving nothing behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ButterInNetns } from './butter-cli.ts';

let b: ButterInNetns;
const marker = `hello-from-user-data-${process.pid}`;

before(async () => {
  b = new ButterInNetns();
  await b.start();
});
after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(b?.upLog);
  await b?.cleanup();
});

const ok = (args: string[]) => b.ok(args);

function vmJson(name: string): { state: string; ip: string; cpus: number; memoryBytes: number; id: string } {
  return JSON.parse(ok(['vm', 'show', name, '--json']));
}

const logsUntil = (name: string, re: RegExp) => b.logsUntil(name, re);

test('the tiny image was provided by butter up', () => {
  const images = JSON.parse(ok(['image', 'list', '--json'])) as { name: string; kind: string }[];
  assert.deepEqual(images.map((i) => [i.name, i.kind]), [['tiny', 'kernel']]);
  const nodes = JSON.parse(ok(['node', 'list', '--json'])) as { state: string; accel: string; accelReason: string }[];
  assert.equal(nodes[0]!.state, 'ready');
  assert.ok(nodes[0]!.accel === 'kvm' || nodes[0]!.accelReason, 'TCG comes with the reason KVM was refused');
});

test('bad input is refused with the field named, and nothing is made', () => {
  for (const [args, field] of [
    [['vm', 'create', 'Bad_Name', '--image', 'tiny'], /name/],
    [['vm', 'create', 'x', '--image', 'tiny', '--memory', '12'], /memory/],
    [['vm', 'create', 'x', '--image', 'tiny', '--memory', '900G'], /memory .* free/],
    [['vm', 'create', 'x', '--image', 'nope'], /image nope/],
    [['vm', 'create', 'x', '--image', 'tiny', '--cpus', 'two'], /cpus/],
  ] as const) {
    const r = b.cli([...args]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, field);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'a one-line cause');
  }
  assert.deepEqual(JSON.parse(ok(['vm', 'list', '--json'])), []);
  assert.deepEqual(b.processes().filter((p) => p.cmd.includes('qemu')), []);
});

test('create --wait, ip, logs, resize, stop, start, agent SIGKILL, rm', async () => {
  const script = join(b.dir, 'hello.sh');
  writeFileSync(script, `#!/bin/sh\necho ${marker}\necho persisted > /data/hello.txt\n`);
  const key = join(b.dir, 'id.pub');
  writeFileSync(key, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIButterTestKeyOnlyForTests000000000000000 test@butter\n');
  const created = ok(['vm', 'create', 'demo', '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--user-data', script, '--ssh-key', key, '--wait']);
  assert.match(created, /vm demo is running/);
  const vm = vmJson('demo');
  assert.equal(vm.state, 'running', 'running means the guest fetched its metadata');
  assert.equal(ok(['vm', 'ip', 'demo']).trim(), vm.ip);
  assert.match(vm.ip, /^10\.200\.0\.\d+$/);
  const logs = await logsUntil('demo', new RegExp(marker));
  assert.match(logs, new RegExp(`butter-tiny: ip=${vm.ip.replace(/\./g, '\\.')}`), 'the guest got its address from our DHCP');
  assert.equal(b.sh('ping', ['-c', '1', '-W', '5', vm.ip]).code, 0, 'the guest answers on the bridge');

  // The serial console is interactive through the API: type a command, read its output.
  const consoleOut = b.cli(['vm', 'console', 'demo'], '\necho $((6*7))-from-console; hostname; cat /root/.ssh/authorized_keys\n');
  assert.equal(consoleOut.code, 0, consoleOut.stderr);
  assert.match(consoleOut.stdout, /42-from-console/);
  assert.match(consoleOut.stdout, /^demo\r?$/m, 'hostname from meta-data');
  assert.match(consoleOut.stdout, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIButterTestKeyOnlyForTests0+ test@butter\r?$/m, 'ssh key installed from meta-data');

  // Resize applies at the next start, and says so.
  const resized = ok(['vm', 'resize', 'demo', '--cpus', '2', '--memory', '384M']);
  assert.match(resized, /next start/);
  assert.equal(vmJson('demo').cpus, 1);
  ok(['vm', 'stop', 'demo']);
  assert.equal(vmJson('demo').state, 'stopped');
  assert.deepEqual(b.processes().filter((p) => p.cmd.includes('qemu')), [], 'stopped means no QEMU process');
  ok(['vm', 'start', 'demo']);
  const after = vmJson('demo');
  assert.equal(after.state, 'running');
  assert.equal(after.cpus, 2);
  const logs2 = await logsUntil('demo', /user-data already ran/);
  assert.match(logs2, /butter-tiny: cpus=2 mem_kb=/, 'the resize reached the guest');
  assert.equal(logs2.split(marker).length - 1, 1, 'user-data ran once: the root disk persisted across the restart');

  // SIGKILL the agent (butter up): the VM keeps running and is adopted, not restarted.
  const qemuBefore = b.processes().filter((p) => p.cmd.includes('qemu'));
  assert.equal(qemuBefore.length, 1);
  await b.kill();
  assert.equal(b.sh('ping', ['-c', '1', '-W', '5', vm.ip]).code, 0, 'reachable while the agent is down');
  await b.start();
  const qemuAfter = b.processes().filter((p) => p.cmd.includes('qemu'));
  assert.deepEqual(qemuAfter.map((p) => p.pid), qemuBefore.map((p) => p.pid), 'same QEMU process');
  assert.equal(vmJson('demo').state, 'running');
  assert.equal(b.sh('ping', ['-c', '1', '-W', '5', vm.ip]).code, 0, 'reachable after the agent came back');

  ok(['vm', 'rm', 'demo']);
  assert.deepEqual(JSON.parse(ok(['vm', 'list', '--json'])), []);
  assert.deepEqual(b.processes().filter((p) => p.cmd.includes('qemu')), []);
  const vmsDir = join(b.dataDir, 'agent', 'vms');
  assert.ok(!existsSync(vmsDir) || readdirSync(vmsDir).length === 0, 'no disk left behind');
  const links = b.sh('ip', ['-o', 'link', 'show']).stdout;
  assert.doesNotMatch(links, new RegExp(`bt${vm.id}`), 'no tap left behind');
});

test('a VM the host cannot start ends in error with the reason, and rm leaves nothing behind', async () => {
  const junk = join(b.dir, 'junk');
  writeFileSync(junk, 'this is not a kernel\n'.repeat(100));
  ok(['image', 'add', 'broken', '--kernel', junk, '--initrd', junk]);
  const r = b.cli(['vm', 'create', 'bad', '--image', 'broken', '--memory', '128M', '--wait', '--timeout', '60']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /vm bad failed: .*qemu/i);
  const vm = vmJson('bad');
  assert.equal(vm.state, 'error');
  ok(['vm', 'rm', 'bad']);
  assert.deepEqual(b.processes().filter((p) => p.cmd.includes('qemu')), []);
  const vmsDir = join(b.dataDir, 'agent', 'vms');
  assert.ok(!existsSync(vmsDir) || readdirSync(vmsDir).length === 0, 'no disk left behind');
  assert.doesNotMatch(b.sh('ip', ['-o', 'link', 'show']).stdout, new RegExp(`bt${vm.id}`), 'no tap left behind');
  assert.doesNotMatch(b.sh('nft', ['list', 'ruleset']).stdout, new RegExp(vm.id), 'no rule left behind');
  ok(['image', 'rm', 'broken']);
});
