/**
 * Memory snapshots on a real tiny guest (issue 16): `butter up` in a namespace, real QEMU
 * (TCG). A process started in the guest before `vm suspend` (a shell loop counting into a
 * file, its PID written with each count) is still running after `vm resume`: the same PID,
 * its count going on from where it was; the guest keeps its address; the memory state file
 * is on the node while suspended (owner-only) and goes after the resume. Then a memory snapshot
 * (`vm snapshot --memory`) of the same guest: restored, the loop runs on (same PID) and a file
 * written after the snapshot is gone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ButterInNetns } from './butter-cli.ts';
import { tinyVmHost, type TinyVmHost } from './tiny-vm-host.ts';

let b: ButterInNetns;
let ask: TinyVmHost['ask'];
let close: (() => Promise<void>) | undefined;
before(async () => ({ b, ask, close } = await tinyVmHost()));
after(() => close?.());

interface ShownVm {
  id: string;
  ip: string;
  mac: string;
  state: string;
  power: string;
}
const show = (name: string): ShownVm => JSON.parse(b.ok(['vm', 'show', name, '--json'])) as ShownVm;

/** The loop's last line, `PID:COUNT`. */
const counter = async (vm: string) => {
  const [pid, n] = (await ask(vm, (t) => `echo "${t}-$(cat /tmp/counter)"`)).split(':');
  return { pid: Number(pid), n: Number(n) };
};

test('suspend and resume: a process started before the suspend runs on (same PID, its count going on), the address is the same', async () => {
  b.ok(['vm', 'create', 'sleepy', '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--wait']);
  const vm = show('sleepy');
  const dir = join(b.dataDir, 'agent', 'vms', vm.id);
  // `sh -c`: its $$ is the loop's own PID, written with every count.
  const started = await ask('sleepy', (t) => `sh -c 'i=0; while :; do i=$((i+1)); echo "$$:$i" > /tmp/counter; sleep 0.2; done' </dev/null >/dev/null 2>&1 & echo "${t}-$!"`);
  const pid = Number(started);
  assert.ok(pid > 1, `the loop's PID: ${started}`);
  const before = await counter('sleepy');
  assert.equal(before.pid, pid, 'the counter is written by the loop');

  const lagBefore = Math.floor(Date.now() / 1000) - Number(await ask('sleepy', (t) => `echo "${t}-$(date +%s)"`));
  const suspended = JSON.parse(b.ok(['vm', 'suspend', 'sleepy', '--json'])) as ShownVm;
  assert.deepEqual([suspended.state, suspended.power], ['suspended', 'suspended']);
  const state = join(dir, 'memory.state');
  assert.ok(existsSync(state), 'its memory state is in the VM directory');
  assert.equal(statSync(state).mode & 0o777, 0o600, 'owner-only, like every file of the VM');
  const bytes = statSync(state).size;
  assert.ok(bytes > 1 << 20, `a memory state of ${bytes} bytes`);
  assert.equal(existsSync(join(dir, 'qemu.pid')), false, 'its QEMU is gone');
  const refused = b.cli(['vm', 'suspend', 'sleepy']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /is suspended: only a running VM can be suspended/);
  const suspendedAt = Date.now();
  await sleep(3000); // suspended for a while: the guest's clock is compared below

  const resumed = JSON.parse(b.ok(['vm', 'resume', 'sleepy', '--json'])) as ShownVm;
  assert.equal(resumed.state, 'running', 'it was running: it goes on running (it does not boot again)');
  const after1 = await counter('sleepy');
  assert.equal(after1.pid, pid, 'the same process');
  assert.ok(after1.n > before.n, `its count went on: ${before.n} -> ${after1.n}`);
  assert.equal(await ask('sleepy', (t) => `kill -0 ${pid} && echo "${t}-alive"`), 'alive', 'the process is still running');
  const after2 = await counter('sleepy');
  assert.ok(after2.n > after1.n, `and it keeps counting: ${after1.n} -> ${after2.n}`);
  assert.equal(show('sleepy').ip, vm.ip);
  assert.equal(show('sleepy').mac, vm.mac);
  assert.equal(await ask('sleepy', (t) => `echo "${t}-$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)"`), vm.ip, 'the guest has its address');
  assert.equal(existsSync(state), false, 'the memory state goes once the guest runs again');
  // What the guest's clock says (not asserted: reported, see docs/architecture.md).
  const guestNow = Number(await ask('sleepy', (t) => `echo "${t}-$(date +%s)"`));
  const lag = Math.floor(Date.now() / 1000) - guestNow;
  const times = [...b.upLog.matchAll(/(suspended in \d+ ms, memory state \d+ bytes|resumed in \d+ ms)/g)].map((m) => m[1]).join('; ');
  console.log(`# ${times || 'no timings in the log'}; the guest's clock was ${lagBefore} s behind the host's before the suspend, ${lag} s after the resume (${Math.round((Date.now() - suspendedAt) / 1000)} s after the suspend)`);

  // A memory snapshot (`vm snapshot --memory`) of the same running guest: it runs on after it; a
  // file written after it (synced to the disk) is gone after its restore, and the loop, whose
  // RAM the snapshot kept, is still running with the same PID.
  const snap = JSON.parse(b.ok(['vm', 'snapshot', 'sleepy', '--name', 'warm', '--memory', '--json'])) as { id: string; state: string; memory: boolean; memoryBytes: number | null; pauseMs: number | null };
  assert.deepEqual([snap.state, snap.memory], ['ready', true]);
  assert.ok(snap.memoryBytes !== null && snap.memoryBytes > 1 << 20, `a memory state of ${snap.memoryBytes} bytes`);
  assert.equal(typeof snap.pauseMs, 'number', 'the guest was paused for it, and the pause is measured');
  const snapState = join(dir, 'snapshots', `${snap.id}.memory`);
  assert.equal(statSync(snapState).mode & 0o777, 0o600, 'its state file lives with the snapshot, owner-only');
  assert.equal(show('sleepy').state, 'running', 'the guest runs on after it');
  const afterSnap = await counter('sleepy');
  assert.equal(afterSnap.pid, pid, 'the loop ran through the snapshot');
  assert.equal(await ask('sleepy', (t) => `echo later > /data/later && sync && echo "${t}-$(cat /data/later)"`), 'later');
  const restoredVm = JSON.parse(b.ok(['vm', 'snapshot', 'restore', 'sleepy', 'warm', '--json'])) as ShownVm;
  assert.deepEqual([restoredVm.id, restoredVm.state], [vm.id, 'running'], 'the same VM, running again');
  assert.equal(await ask('sleepy', (t) => `echo "${t}-$(test -e /data/later && echo yes || echo no)"`), 'no', 'the file written after the snapshot is gone');
  const back1 = await counter('sleepy');
  assert.equal(back1.pid, pid, 'the process from before the snapshot is running again: resumed, not booted');
  const back2 = await counter('sleepy');
  assert.ok(back2.n > back1.n, `and it keeps counting: ${back1.n} -> ${back2.n}`);
  assert.equal(await ask('sleepy', (t) => `echo "${t}-$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)"`), vm.ip, 'with its address');
  assert.equal(existsSync(snapState), true, 'the state stays with the snapshot');
  console.log(`# memory snapshot of a running 256 MB tiny VM: guest paused ${snap.pauseMs} ms, ${snap.memoryBytes} bytes of memory state`);
  b.ok(['vm', 'rm', 'sleepy']);
});
