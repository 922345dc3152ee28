/**
 * Data disks on real guests (the `tiny` image under real QEMU, TCG here):
 * 1. the QEMU driver alone: the guest's kernel finds `vdb` of the size asked for, the guest
 *    writes to it, the disk survives a stop and a start (the guest reads its bytes back), and
 *    destroy removes it;
 * 2. the whole stack (`butter up` in a namespace, `butter vm create --data-disk`): the guest
 *    reports `/sys/block/vdb/size` from its user-data, `vm stop` + `vm start` keep the same
 *    file, `vm rm` removes it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmSpec } from '../../src/agent/host/driver.ts';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { probeAccel } from '../../src/agent/host/kvm-probe.ts';
import { QemuDriver } from '../../src/agent/host/qemu-driver.ts';
import { buildTiny } from '../../src/daemon/tiny-image.ts';
import { ButterInNetns } from './butter-cli.ts';
import { requires } from '../requires.ts';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0 && spawnSync('qemu-img', ['--version']).status === 0;
const skip = requires(haveQemu, 'qemu-system-x86_64/qemu-img not installed') || requires(process.getuid?.() === 0, 'needs root (the tiny image build, namespaces)');

const stateDir = mkdtempSync(join(tmpdir(), 'bdd-'));
const exec = new SystemExec();
const log = (m: string) => console.log(m);
let driver: QemuDriver | undefined;
let b: ButterInNetns | undefined;

after(async () => {
  await driver?.destroy('vm-dd1').catch(() => undefined);
  // Whatever QEMU still mentions our state dir (an assert failed mid-way) is ours to end.
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(stateDir)) process.kill(Number(e), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  rmSync(stateDir, { recursive: true, force: true });
  await b?.cleanup();
});

/** Waits until the console log (from `from` on) matches; returns that part. */
async function consoleUntil(file: string, re: RegExp, from = 0, ms = 120_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8').slice(from) : '';
    if (re.test(text)) return text;
    if (Date.now() > end) throw new Error(`console never matched ${re}:\n${text.slice(-3000)}`);
    await sleep(200);
  }
}

test('QEMU driver: the guest sees vdb of 16M, its writes survive stop and start, destroy removes the disk', { skip }, async () => {
  const tiny = await buildTiny(join(tmpdir(), 'butter-tiny-image'));
  const { accel } = await probeAccel(exec);
  driver = new QemuDriver({ exec, stateDir, accel, log });
  const spec: VmSpec = {
    id: 'vm-dd1',
    name: 'disky',
    cpus: 1,
    memoryMiB: 128,
    diskBytes: 64 << 20,
    dataDisks: [{ index: 1, sizeBytes: 16 << 20 }],
    // The tiny image's files, with its command line less `quiet`: the kernel's virtio_blk line
    // names each disk with its size. No NIC: the guest skips DHCP and metadata, straight to its shell.
    boot: { kind: 'kernel', kernel: tiny.kernel, initrd: tiny.initrd, rootDisk: tiny.rootDisk, rootFormat: 'raw', cmdline: 'console=ttyS0 panic=-1' },
    nics: [],
    smbiosSerial: 'ds=nocloud-net;s=http://169.254.169.254/',
  };
  const dir = join(stateDir, 'vms', 'vm-dd1');
  const disk = join(dir, 'data-1.qcow2');
  const consoleLog = driver.consoleLogPath('vm-dd1');

  await driver.start(spec);
  // 16 MiB = 32768 sectors of 512 bytes; vda is the root disk's overlay (64M = 131072).
  let boot = await consoleUntil(consoleLog, /butter-tiny: ready/);
  assert.match(boot, /virtio_blk \S+: \[vda\] 131072 512-byte logical blocks/);
  assert.match(boot, /virtio_blk \S+: \[vdb\] 32768 512-byte logical blocks/);
  assert.equal(statSync(disk).mode & 0o777, 0o600);
  const info = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '-U', disk], { encoding: 'utf8' }).stdout) as { format: string; 'virtual-size': number; 'actual-size': number };
  assert.equal(info.format, 'qcow2');
  assert.equal(info['virtual-size'], 16 << 20);
  assert.ok(info['actual-size'] < 4 << 20, `sparse: ${info['actual-size']} bytes on the host`);

  // The guest reads its size from sysfs and writes a marker to the raw device.
  const marker = `butter-marker-${randomBytes(4).toString('hex')}`;
  let from = readFileSync(consoleLog, 'utf8').length;
  await driver.writeConsole('vm-dd1', Buffer.from(`echo "sectors=$(cat /sys/block/vdb/size)"; echo ${marker} | dd of=/dev/vdb conv=fsync 2>/dev/null && echo "wrote=ok"\n`));
  const wrote = await consoleUntil(consoleLog, /^wrote=ok\r?$/m, from, 30_000);
  assert.match(wrote, /^sectors=32768\r?$/m);

  const inode = statSync(disk).ino;
  await driver.stop('vm-dd1', 30_000);
  assert.ok(existsSync(disk), 'stop keeps the data disk');
  assert.ok(readFileSync(disk).includes(marker), 'the guest\'s write is in the data disk on the host');

  from = readFileSync(consoleLog, 'utf8').length;
  await driver.start(spec);
  assert.equal(statSync(disk).ino, inode, 'the same file, not made anew');
  boot = await consoleUntil(consoleLog, /butter-tiny: ready/, from);
  assert.match(boot, /\[vdb\] 32768 512-byte logical blocks/, 'vdb again after the restart');
  from = readFileSync(consoleLog, 'utf8').length;
  await driver.writeConsole('vm-dd1', Buffer.from(`echo "read=$(head -c ${marker.length} /dev/vdb)"\n`));
  await consoleUntil(consoleLog, new RegExp(`^read=${marker}\\r?$`, 'm'), from, 30_000);

  await driver.destroy('vm-dd1');
  assert.equal(existsSync(disk), false);
  assert.equal(existsSync(dir), false);
});

test('butter vm create --data-disk: the guest reports vdb; stop + start keep the file; rm removes it', { skip }, async () => {
  b = new ButterInNetns();
  await b.start();
  const ud = join(b.dir, 'ud.sh');
  writeFileSync(ud, '#!/bin/sh\necho "vdb-sectors=$(cat /sys/block/vdb/size)"\n');
  b.ok(['vm', 'create', 'disky', '--image', 'tiny', '--memory', '128M', '--disk', '1G', '--data-disk', '16M', '--user-data', ud, '--wait']);
  const vm = JSON.parse(b.ok(['vm', 'show', 'disky', '--json'])) as { id: string; disks: unknown };
  assert.deepEqual(vm.disks, [{ index: 1, sizeBytes: 16 << 20, device: 'vdb' }]);
  await b.logsUntil('disky', /vdb-sectors=32768/, 120_000);
  const disk = join(b.dataDir, 'agent', 'vms', vm.id, 'data-1.qcow2');
  assert.ok(existsSync(disk), `no ${disk}`);
  const inode = statSync(disk).ino;

  b.ok(['vm', 'stop', 'disky']);
  assert.ok(existsSync(disk), 'vm stop keeps the data disk');
  b.ok(['vm', 'start', 'disky']);
  assert.equal(statSync(disk).ino, inode, 'vm start reuses it');

  b.ok(['vm', 'rm', 'disky']);
  assert.equal(existsSync(disk), false, 'vm rm removes it');
  assert.equal(existsSync(join(b.dataDir, 'agent', 'vms', vm.id)), false);
});
