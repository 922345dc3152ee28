/**
 * (p) How long a guest is paused for a disk snapshot (issue 16): a tiny VM (no NIC: straight to
 * its shell) under real QEMU, through the QEMU driver's snapshot path (QMP `stop`,
 * `blockdev-snapshot-sync` onto a prepared overlay, `cont`), ~10 snapshots while the guest
 * runs; the pause is what the driver measures from `stop` to `cont`'s answer.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemExec } from '../src/agent/host/exec.ts';
import { probeAccel } from '../src/agent/host/kvm-probe.ts';
import { QemuDriver } from '../src/agent/host/qemu-driver.ts';
import { buildTiny } from '../src/daemon/tiny-image.ts';
import { registerCleanup } from './cleanup.ts';
import { percentile, round, sleep } from './stats.ts';

export interface SnapshotPauseResult {
  snapshots: number;
  pausesMs: number[];
  p50Ms: number;
  maxMs: number;
  accel: string;
}

export async function benchSnapshotPause(count = 10, log: (m: string) => void = () => {}): Promise<SnapshotPauseResult> {
  const stateDir = mkdtempSync(join(tmpdir(), 'bench-snap-'));
  const exec = new SystemExec();
  const tiny = await buildTiny(join(tmpdir(), 'butter-tiny-image'));
  const { accel } = await probeAccel(exec);
  const driver = new QemuDriver({ exec, stateDir, accel });
  const id = 'bench-snap';
  const undo = registerCleanup('the snapshot bench VM', async () => {
    await driver.destroy(id).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
  });
  try {
    await driver.start({
      id,
      name: 'snap',
      cpus: 1,
      memoryMiB: 128,
      diskBytes: 64 << 20,
      boot: { kind: 'kernel', kernel: tiny.kernel, initrd: tiny.initrd, rootDisk: tiny.rootDisk, rootFormat: 'raw', cmdline: 'console=ttyS0 quiet panic=-1' },
      nics: [],
      smbiosSerial: 'ds=nocloud-net;s=http://169.254.169.254/',
      initialSnapshot: 'initial0',
    });
    const consoleLog = driver.consoleLogPath(id);
    const end = Date.now() + 180_000;
    while (!(existsSync(consoleLog) && /butter-tiny: ready/.test(readFileSync(consoleLog, 'utf8')))) {
      if (Date.now() > end) throw new Error('the tiny guest never got ready');
      await sleep(200);
    }
    const pausesMs: number[] = [];
    for (let i = 0; i < count; i++) {
      // The guest keeps writing between snapshots, as a real one would.
      await driver.writeConsole(id, Buffer.from(`dd if=/dev/urandom of=/data/f${i} bs=64k count=4 2>/dev/null; sync\n`));
      await sleep(500);
      const r = await driver.snapshots.take(id, `s${i}`);
      if (r.pauseMs === undefined) throw new Error('the VM was not running: no pause measured');
      pausesMs.push(r.pauseMs);
      log(`snapshot ${i + 1}/${count}: paused ${r.pauseMs} ms`);
    }
    const sorted = [...pausesMs].sort((a, b) => a - b);
    return { snapshots: count, pausesMs, p50Ms: round(percentile(sorted, 50), 2), maxMs: round(sorted.at(-1)!, 2), accel };
  } finally {
    await driver.destroy(id).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
    undo();
  }
}
