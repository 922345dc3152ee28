import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmSpec } from './driver.ts';
import { RecordingExec } from './exec.ts';
import { QemuDriver } from './qemu-driver.ts';
import { probeAccel } from './kvm-probe.ts';

const root = mkdtempSync(join(tmpdir(), 'qemu-driver-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A state dir and a fake /proc per test, so "running" processes can be faked. */
function setup(answers: (cmd: string, args: readonly string[]) => { code?: number; stdout?: string; stderr?: string }) {
  const dir = join(root, String(n++));
  const procRoot = join(dir, 'proc');
  const stateDir = join(dir, 'state');
  const exec = new RecordingExec(answers);
  const driver = new QemuDriver({ exec, stateDir, accel: 'tcg', procRoot });
  /** What a successful `qemu -daemonize` leaves behind: a pidfile naming a live process. */
  const fakeRunning = (args: readonly string[], pid = 4242) => {
    writeFileSync(args[args.indexOf('-pidfile') + 1]!, `${pid}\n`);
    mkdirSync(join(procRoot, String(pid)), { recursive: true });
    writeFileSync(join(procRoot, String(pid), 'cmdline'), ['qemu-system-x86_64', ...args, ''].join('\0'));
  };
  const lines = () => exec.lines().map((l) => l.replaceAll(stateDir, '$S'));
  return { exec, driver, stateDir, procRoot, fakeRunning, lines };
}

const diskSpec: VmSpec = {
  id: 'vm-1',
  name: 'web',
  cpus: 2,
  memoryMiB: 1024,
  diskBytes: 8 * 2 ** 30,
  boot: { kind: 'disk', disk: '/images/debian.qcow2', format: 'qcow2' },
  nics: [{ tap: 'bt-1', mac: '52:54:00:12:34:56' }],
  smbiosSerial: 'ds=nocloud-net;s=http://169.254.169.254/',
};

test('start of a new VM: size the image, create the overlay, launch qemu; then idempotent', async () => {
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 2147483648, "format": "qcow2"}' };
    if (cmd === 'qemu-system-x86_64') t.fakeRunning(args);
    return {};
  });
  await t.driver.start(diskSpec);
  assert.deepEqual(t.lines(), [
    'qemu-img info --output=json -f qcow2 /images/debian.qcow2',
    'qemu-img create -f qcow2 -F qcow2 -b /images/debian.qcow2 $S/vms/vm-1/disk.qcow2 8589934592',
    'qemu-system-x86_64 -name guest=butter-vm-1,process=butter-vm-1 -M q35,graphics=off -accel tcg -cpu max -smp 2 -m 1024 ' +
      '-nodefaults -no-user-config -display none -daemonize -no-shutdown -pidfile $S/vms/vm-1/qemu.pid ' +
      '-D $S/vms/vm-1/qemu.log -trace enable=runstate_set ' +
      '-qmp unix:$S/vms/vm-1/qmp.sock,server=on,wait=off ' +
      '-chardev socket,id=ser0,path=$S/vms/vm-1/console.sock,server=on,wait=off,logfile=$S/vms/vm-1/console.log,logappend=on ' +
      '-serial chardev:ser0 -drive file=$S/vms/vm-1/disk.qcow2,format=qcow2,if=virtio,discard=unmap -device virtio-rng-pci ' +
      '-netdev tap,id=n0,ifname=bt-1,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 ' +
      '-smbios type=1,serial=ds=nocloud-net;s=http://169.254.169.254/',
  ]);
  assert.deepEqual(await t.driver.list(), [{ id: 'vm-1', running: true, pid: 4242 }]);
  assert.equal(t.driver.consoleLogPath('vm-1'), join(t.stateDir, 'vms/vm-1/console.log'));

  const before = t.exec.calls.length;
  await t.driver.start(diskSpec);
  assert.equal(t.exec.calls.length, before, 'already running: no commands');
});

test('an image larger than diskBytes keeps its size; kernel boot without root disk gets a blank disk', async () => {
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 21474836480}' };
    if (cmd === 'qemu-system-x86_64') t.fakeRunning(args);
    return {};
  });
  await t.driver.start({ ...diskSpec, boot: { kind: 'disk', disk: '/images/big.raw', format: 'raw' } });
  await t.driver.start({
    ...diskSpec,
    id: 'vm-2',
    diskBytes: 1 << 30,
    boot: { kind: 'kernel', kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0' },
  });
  const l = t.lines();
  assert.equal(l[1], 'qemu-img create -f qcow2 -F raw -b /images/big.raw $S/vms/vm-1/disk.qcow2 21474836480');
  assert.equal(l[3], 'qemu-img create -f qcow2 $S/vms/vm-2/disk.qcow2 1073741824');
  assert.match(l[4]!, / -kernel \/k -initrd \/i -append console=ttyS0 /);
});

test('a failed qemu start removes the overlay (and directory) it created', async () => {
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 1024}' };
    if (cmd === 'qemu-img' && args[0] === 'create') writeFileSync(args[args.length - 2]!, 'overlay');
    if (cmd === 'qemu-system-x86_64') return { code: 1, stderr: 'qemu-system-x86_64: could not open disk image' };
    return {};
  });
  await assert.rejects(t.driver.start(diskSpec), /could not open disk image/);
  assert.equal(existsSync(join(t.stateDir, 'vms/vm-1/disk.qcow2')), false);
  assert.equal(existsSync(join(t.stateDir, 'vms/vm-1')), false);
  assert.deepEqual(await t.driver.list(), []);
});

test('qemu exiting 0 without a live process counts as a failed start', async () => {
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 1024}' };
    if (cmd === 'qemu-img' && args[0] === 'create') writeFileSync(args[args.length - 2]!, 'overlay');
    return {};
  });
  await assert.rejects(t.driver.start(diskSpec), /exited right after starting/);
  assert.equal(existsSync(join(t.stateDir, 'vms/vm-1')), false);
});

test('an existing overlay is kept, grown when too small, and survives a failed start', async () => {
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 1073741824}' };
    if (cmd === 'qemu-system-x86_64') return { code: 1, stderr: 'boom' };
    return {};
  });
  mkdirSync(join(t.stateDir, 'vms/vm-1'), { recursive: true });
  writeFileSync(join(t.stateDir, 'vms/vm-1/disk.qcow2'), 'old data');
  await assert.rejects(t.driver.start(diskSpec), /boom/);
  assert.deepEqual(t.lines().slice(0, 2), [
    'qemu-img info --output=json -f qcow2 $S/vms/vm-1/disk.qcow2',
    'qemu-img resize -f qcow2 $S/vms/vm-1/disk.qcow2 8589934592',
  ]);
  assert.equal(existsSync(join(t.stateDir, 'vms/vm-1/disk.qcow2')), true);
  // Not a poweroff: a restart after a crash that fails like this is tried again, with the backoff.
  assert.deepEqual(await t.driver.list(), [{ id: 'vm-1', running: false, exit: 'exited' }]);
});

test('list: a recycled pid or a same-id VM of another state dir is not ours', async () => {
  const t = setup(() => ({}));
  const vm = join(t.stateDir, 'vms');
  mkdirSync(join(vm, 'vm-a'), { recursive: true });
  mkdirSync(join(vm, 'vm-b'), { recursive: true });
  mkdirSync(join(vm, 'vm-c'), { recursive: true });
  writeFileSync(join(vm, 'vm-a/qemu.pid'), '100');
  writeFileSync(join(vm, 'vm-b/qemu.pid'), '200');
  writeFileSync(join(vm, 'vm-c/qemu.pid'), '300'); // no such process
  mkdirSync(join(t.procRoot, '100'), { recursive: true });
  mkdirSync(join(t.procRoot, '200'), { recursive: true });
  writeFileSync(join(t.procRoot, '100/cmdline'), 'sshd\0-D\0');
  writeFileSync(join(t.procRoot, '200/cmdline'), `qemu\0-name\0guest=butter-vm-b,process=butter-vm-b\0-pidfile\0/elsewhere/vms/vm-b/qemu.pid\0`);
  assert.deepEqual(await t.driver.list(), [
    { id: 'vm-a', running: false },
    { id: 'vm-b', running: false },
    { id: 'vm-c', running: false },
  ]);
  // Stopping a VM that is not running only clears stale runtime files.
  await t.driver.stop('vm-a', 100);
  assert.equal(existsSync(join(vm, 'vm-a/qemu.pid')), false);
  await assert.rejects(t.driver.start({ ...diskSpec, id: '../etc' }), /invalid VM id/);
});

test('probeAccel decides from whether the KVM test VM was still running', async () => {
  const alive = new RecordingExec(() => ({ code: 124 }));
  assert.deepEqual(await probeAccel(alive, { kvmDevice: '/dev/null' }), { accel: 'kvm' });
  assert.match(alive.lines()[0]!, /^timeout --kill-after=1 1 qemu-system-x86_64 -M q35 -accel kvm -cpu host /);

  const died = new RecordingExec(() => ({ code: 134, stderr: 'warning: x\nqemu: error: failed to set MSR 0x10a to 0x69\n' }));
  assert.deepEqual(await probeAccel(died, { kvmDevice: '/dev/null' }), {
    accel: 'tcg',
    reason: 'KVM test VM exited 134: qemu: error: failed to set MSR 0x10a to 0x69',
  });

  const none = new RecordingExec();
  assert.deepEqual(await probeAccel(none, { kvmDevice: '/nonexistent/kvm' }), {
    accel: 'tcg',
    reason: '/nonexistent/kvm does not exist',
  });
  assert.equal(none.calls.length, 0);
});

test('list tells how a run ended from power-state and the pidfile: poweroff, killed (pidfile left), exited, or unknown', async () => {
  const t = setup(() => ({}));
  const vm = join(t.stateDir, 'vms');
  for (const [id, state, pid] of [['vm-a', 'poweroff', false], ['vm-b', 'running', true], ['vm-c', 'running', false], ['vm-d', undefined, true]] as const) {
    mkdirSync(join(vm, id), { recursive: true });
    if (state) writeFileSync(join(vm, id, 'power-state'), `${state}\n`);
    if (pid) writeFileSync(join(vm, id, 'qemu.pid'), '999999'); // no such process
  }
  assert.deepEqual(await t.driver.list(), [
    { id: 'vm-a', running: false, exit: 'poweroff' },
    { id: 'vm-b', running: false, exit: 'killed' },
    { id: 'vm-c', running: false, exit: 'exited' },
    { id: 'vm-d', running: false },
  ]);
  // The agent's own stop is nobody's failure: the record goes.
  await t.driver.stop('vm-b', 100);
  assert.deepEqual((await t.driver.list()).find((v) => v.id === 'vm-b'), { id: 'vm-b', running: false });
});

test('data disks: made once each as an empty qcow2 (written aside, then renamed), attached after the root disk, kept across restarts, gone with the VM', async () => {
  let failQemu = false;
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 8589934592}' };
    if (cmd === 'qemu-img' && args[0] === 'create') writeFileSync(args[args.length - 2]!, `qcow2 of ${args[args.length - 1]}`);
    if (cmd === 'qemu-system-x86_64') {
      if (failQemu) return { code: 1, stderr: 'boom' };
      t.fakeRunning(args);
    }
    return {};
  });
  const spec: VmSpec = { ...diskSpec, dataDisks: [{ index: 1, sizeBytes: 16 << 20 }, { index: 2, sizeBytes: 1 << 30 }] };
  const dir = join(t.stateDir, 'vms/vm-1');
  await t.driver.start(spec);
  assert.deepEqual(
    t.lines().filter((l) => l.startsWith('qemu-img create')),
    [
      'qemu-img create -f qcow2 -F qcow2 -b /images/debian.qcow2 $S/vms/vm-1/disk.qcow2 8589934592',
      'qemu-img create -f qcow2 $S/vms/vm-1/data-1.qcow2.tmp 16777216',
      'qemu-img create -f qcow2 $S/vms/vm-1/data-2.qcow2.tmp 1073741824',
    ],
  );
  assert.equal(readFileSync(join(dir, 'data-1.qcow2'), 'utf8'), 'qcow2 of 16777216');
  assert.equal(statSync(join(dir, 'data-2.qcow2')).mode & 0o777, 0o600);
  assert.equal(existsSync(join(dir, 'data-1.qcow2.tmp')), false);
  const qemu = t.lines().find((l) => l.startsWith('qemu-system'))!;
  assert.match(qemu, / -drive file=\$S\/vms\/vm-1\/disk\.qcow2,\S+ -drive file=\$S\/vms\/vm-1\/data-1\.qcow2,format=qcow2,if=virtio,discard=unmap -drive file=\$S\/vms\/vm-1\/data-2\.qcow2,format=qcow2,if=virtio,discard=unmap -device virtio-rng-pci /);

  // Stopped and started again: the same files, nothing made anew.
  writeFileSync(join(dir, 'data-1.qcow2'), 'guest data');
  const exited = () => rmSync(join(t.procRoot, '4242'), { recursive: true, force: true }); // the fake qemu ends
  exited();
  await t.driver.stop('vm-1', 100);
  const before = t.exec.calls.length;
  await t.driver.start(spec);
  assert.deepEqual(t.exec.lines().slice(before).filter((l) => l.startsWith('qemu-img create')), []);
  assert.equal(readFileSync(join(dir, 'data-1.qcow2'), 'utf8'), 'guest data');

  // An agent that died inside `qemu-img create` left a torn `.tmp`: the next start makes the disk
  // afresh and never opens the torn one; a failed restart keeps the disks it did not make.
  exited();
  await t.driver.stop('vm-1', 100);
  rmSync(join(dir, 'data-2.qcow2'));
  writeFileSync(join(dir, 'data-2.qcow2.tmp'), 'torn');
  failQemu = true;
  await assert.rejects(t.driver.start(spec), /boom/);
  assert.equal(readFileSync(join(dir, 'data-1.qcow2'), 'utf8'), 'guest data', 'a failed restart keeps an old data disk');
  assert.equal(existsSync(join(dir, 'data-2.qcow2')), false, 'a data disk made by a failed start goes with it');
  assert.equal(existsSync(join(dir, 'data-2.qcow2.tmp')), false);
  failQemu = false;
  await t.driver.start(spec);
  assert.equal(readFileSync(join(dir, 'data-2.qcow2'), 'utf8'), 'qcow2 of 1073741824');

  exited();
  await t.driver.destroy('vm-1');
  assert.equal(existsSync(dir), false);
});

test('a failed first start of a VM with data disks leaves nothing behind', async () => {
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 1024}' };
    if (cmd === 'qemu-img' && args[0] === 'create') {
      // The second data disk's create fails half-way: its partial file is there.
      writeFileSync(args[args.length - 2]!, 'partial');
      if (args.includes('1048576')) return { code: 1, stderr: 'qemu-img: No space left on device' };
    }
    return {};
  });
  await assert.rejects(t.driver.start({ ...diskSpec, dataDisks: [{ index: 1, sizeBytes: 2 << 20 }, { index: 2, sizeBytes: 1 << 20 }] }), /No space left/);
  assert.equal(existsSync(join(t.stateDir, 'vms/vm-1')), false);
  assert.deepEqual(t.lines().filter((l) => l.startsWith('qemu-system')), [], 'qemu never started');
});

/**
 * A fake QEMU behind the driver's interfaces: `exec` "launches" it (pidfile, /proc entry and,
 * when asked for with `-D` and `-trace enable=runstate_set`, the run-state log a real QEMU
 * writes), and its QMP socket counts connections, answers `query-status` with `status`, and
 * on `quit` exits as QEMU does (pidfile and process gone).
 */
async function idleVms(ids: readonly string[]) {
  const t = setup((cmd, args) => {
    if (cmd === 'qemu-img' && args[0] === 'info') return { stdout: '{"virtual-size": 8589934592}' };
    if (cmd === 'qemu-system-x86_64') {
      const id = /butter-([^,]+)/.exec(args[args.indexOf('-name') + 1]!)![1]!;
      t.fakeRunning(args, 5000 + ids.indexOf(id));
      const log = args.indexOf('-D');
      if (log >= 0 && args.some((a) => /^enable=runstate_set\b/.test(a))) {
        writeFileSync(args[log + 1]!, 'runstate_set current_run_state 6 (prelaunch) new_state 9 (running)\n');
      }
    }
    return {};
  });
  const qmp = new Map<string, { connections: number; status: string; commands: string[]; server: Server }>();
  for (const [i, id] of ids.entries()) {
    await t.driver.start({ ...diskSpec, id });
    const dir = join(t.stateDir, 'vms', id);
    const vm = { connections: 0, status: 'running', commands: [] as string[], server: createServer() };
    vm.server.on('connection', (c) => {
      vm.connections++;
      c.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
      let buf = '';
      c.on('data', (d) => {
        buf += d.toString();
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: number };
          buf = buf.slice(nl + 1);
          if (msg.execute !== 'qmp_capabilities') vm.commands.push(msg.execute);
          if (msg.execute === 'cont') vm.status = 'running';
          if (msg.execute === 'quit') {
            rmSync(join(dir, 'qemu.pid'), { force: true });
            rmSync(join(t.procRoot, String(5000 + i)), { recursive: true, force: true });
            c.end();
          } else {
            const ret = msg.execute === 'query-status' ? { running: vm.status === 'running', status: vm.status } : {};
            c.write(JSON.stringify({ return: ret, id: msg.id }) + '\r\n');
          }
        }
      });
    });
    await new Promise<void>((r) => vm.server.listen(join(dir, 'qmp.sock'), r));
    qmp.set(id, vm);
  }
  after(() => {
    for (const vm of qmp.values()) vm.server.close();
  });
  return { ...t, qmp };
}

test('reap (before every reconcile) of idle VMs opens no QMP connection', async () => {
  const t = await idleVms(['vm-1', 'vm-2', 'vm-3']);
  await t.driver.reap();
  await t.driver.reap();
  assert.deepEqual(
    [...t.qmp].map(([id, vm]) => [id, vm.connections]),
    [['vm-1', 0], ['vm-2', 0], ['vm-3', 0]],
  );
  assert.deepEqual((await t.driver.list()).map((v) => v.running), [true, true, true]);
});

test('reap still finds a guest that powered off, and asks QMP of a VM without a run-state log (an older agent\'s)', async () => {
  const t = await idleVms(['vm-1', 'vm-2', 'vm-3']);
  // vm-2's guest powered off: QEMU (-no-shutdown) logged the change and stays in `shutdown`.
  appendFileSync(join(t.stateDir, 'vms/vm-2/qemu.log'), 'runstate_set current_run_state 9 (running) new_state 7 (shutdown)\n');
  t.qmp.get('vm-2')!.status = 'shutdown';
  // vm-3 was started by an agent that did not ask QEMU for the log.
  rmSync(join(t.stateDir, 'vms/vm-3/qemu.log'), { force: true });
  await t.driver.reap();
  assert.deepEqual(
    [...t.qmp].map(([id, vm]) => [id, vm.connections]),
    [['vm-1', 0], ['vm-2', 2], ['vm-3', 1]],
    'vm-2: query-status, then quit; vm-3: query-status',
  );
  assert.deepEqual(await t.driver.list(), [
    { id: 'vm-1', running: true, pid: 5000 },
    { id: 'vm-2', running: false, exit: 'poweroff' },
    { id: 'vm-3', running: true, pid: 5002 },
  ]);
});

/**
 * Resume crash recovery (issue 16): the agent died between a resume's launch (`-S -incoming
 * defer`) and its `cont`. The QEMU it left waits paused for ever, its guest never having run
 * in it; the agent that starts next must not take it for a running VM.
 */
test('reap ends a resume left paused by an agent that died before its cont (the guest never ran there): the saved state is resumed again', async () => {
  const t = await idleVms(['vm-1', 'vm-2']);
  const dir = join(t.stateDir, 'vms/vm-1');
  // What the dead agent's resume left: the state file (it goes only after cont), a QEMU launched incoming, never running.
  writeFileSync(join(dir, 'memory.state'), 'saved RAM');
  const cmdline = join(t.procRoot, '5000', 'cmdline');
  writeFileSync(cmdline, readFileSync(cmdline, 'utf8').replace('\0-name\0', '\0-S\0-incoming\0defer\0-name\0'));
  writeFileSync(join(dir, 'qemu.log'), 'runstate_set current_run_state 0 (prelaunch) new_state 3 (inmigrate)\n');
  t.qmp.get('vm-1')!.status = 'inmigrate';
  // vm-2 ran, and was left paused inside a disk snapshot's stop..cont by an agent that died there.
  appendFileSync(join(t.stateDir, 'vms/vm-2/qemu.log'), 'runstate_set current_run_state 9 (running) new_state 4 (paused)\n');
  t.qmp.get('vm-2')!.status = 'paused';
  await t.driver.reap();
  assert.deepEqual(await t.driver.list(), [
    { id: 'vm-1', running: false, suspended: true },
    { id: 'vm-2', running: true, pid: 5001 },
  ], 'vm-1: its never-run QEMU is gone and its saved state kept, so the plan resumes it again; vm-2 runs on');
  assert.ok(existsSync(join(dir, 'memory.state')), 'the state file is kept for the resume to come');
  assert.deepEqual(t.qmp.get('vm-2')!.commands.filter((c) => c === 'cont'), ['cont'], 'vm-2 is continued, not killed');
  assert.equal(t.qmp.get('vm-2')!.status, 'running');
});
