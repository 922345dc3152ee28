/**
 * A real QEMU (TCG here) writing its serial console through its chardev logfile, opened with
 * O_APPEND (`logappend=on`), while the agent's shipper sends it to a real control plane and
 * punches holes over what it sent (`fallocate --punch-hole`). QEMU keeps appending after each
 * hole at the file's end; the control plane ends up with the whole boot, from its first line,
 * and the node keeps only about the tail on disk. Boots the host's Debian kernel + initrd (no
 * root disk, no NIC): it prints its boot and sits in the initramfs, or panics and reboots.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleShipper } from '../../src/agent/console-shipper.ts';
import { punchConsole } from '../../src/agent/host/console-trim.ts';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { probeAccel } from '../../src/agent/host/kvm-probe.ts';
import { QemuDriver } from '../../src/agent/host/qemu-driver.ts';
import { fakeNode, startTestCloud, uploadImage, type TestCloud } from '../helpers.ts';
import { requires } from '../requires.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'bqc-'));
const exec = new SystemExec();
let cloud: TestCloud | undefined;
let driver: QemuDriver | undefined;
let vmId: string | undefined;

after(async () => {
  if (driver && vmId) await driver.destroy(vmId).catch(() => {});
  // Anything of ours still running (the test failed half-way): its command line names our dir.
  for (const e of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(stateDir)) process.kill(Number(e), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  await cloud?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

const kernel = readdirSync('/boot').find((f) => f.startsWith('vmlinuz-'));
const KEEP = 4096;

test('QEMU appends past the holes punched in its console log; the control plane has the whole boot', { skip: requires(kernel !== undefined, 'no /boot/vmlinuz-*') }, async () => {
  cloud = await startTestCloud();
  const node = await fakeNode(cloud, 'n1');
  await uploadImage(cloud.admin, 'img');
  const id = (vmId = (await cloud.admin.call('createVm', { body: { name: 'v', image: 'img', memory: '128M' } })).id);
  const accel = (await probeAccel(exec)).accel;
  driver = new QemuDriver({ exec, stateDir, accel, log: () => {} });
  await driver.start({
    id,
    name: 'v',
    cpus: 1,
    memoryMiB: 512,
    diskBytes: 64 << 20,
    boot: { kind: 'kernel', kernel: `/boot/${kernel}`, initrd: `/boot/${kernel!.replace('vmlinuz-', 'initrd.img-')}`, cmdline: 'console=ttyS0 panic=-1' },
    nics: [],
    smbiosSerial: 'ds=nocloud-net;s=http://169.254.169.254/',
  });
  const file = driver.consoleLogPath(id);
  const shipper = new ConsoleShipper(node, 'n1', () => file, { keepBytes: KEEP, trim: punchConsole(exec) });

  // Ship while QEMU writes, until well past a few trims (a boot prints tens of KiB).
  const t0 = Date.now();
  while (statSync(file).size < 8 * KEEP) {
    assert.ok(Date.now() - t0 < 120_000, `only ${statSync(file).size} bytes of console in 120 s`);
    await shipper.ship([id]);
    await sleep(100);
  }
  const punchedAt = statSync(file).size;
  await shipper.ship([id]);
  // QEMU goes on writing after the holes: the file grows at its end, not from 0.
  for (const until = Date.now() + 60_000; statSync(file).size <= punchedAt + 256 && Date.now() < until; ) await sleep(200);
  await shipper.ship([id]);
  const size = statSync(file).size;
  assert.ok(size > punchedAt + 256, `QEMU wrote on after the holes (${punchedAt} → ${size})`);

  const head = Buffer.alloc(KEEP);
  const fd = openSync(file, 'r');
  readSync(fd, head, 0, KEEP, 0);
  closeSync(fd);
  assert.ok(head.every((b) => b === 0), 'the shipped head of the node\'s file is a hole (reads as zeros)');
  const onDisk = statSync(file).blocks * 512;
  assert.ok(onDisk < size / 2, `the node keeps ${onDisk} bytes on disk of ${size}`);

  let server = '';
  let end = 0;
  for (;;) {
    const r: { offset: number; start: number; data: string } = await cloud.admin.call('vmLogs', { params: { name: 'v' }, query: { offset: end } });
    if (r.offset === end) break;
    assert.equal(r.start, 0, 'under the control plane\'s cap');
    server += r.data;
    end = r.offset;
  }
  // QEMU may have written a little more since the last ship: compare up to what was shipped.
  assert.ok(end > punchedAt && end <= statSync(file).size, `shipped up to ${end} of ${statSync(file).size}`);
  assert.equal(Buffer.byteLength(server), end, 'the control plane has every byte, at the node\'s offsets');
  assert.match(server.slice(0, 4096), /Linux version/, 'from the first kernel line');
  // The node's kept tail is the control plane's tail, byte for byte.
  const tail = readFileSync(file).subarray(end - KEEP, end);
  assert.equal(Buffer.from(server).subarray(end - KEEP).toString(), tail.toString());
});
