/**
 * (t) How long a guest is paused for a memory snapshot (issue 16, `vm snapshot --memory`): a
 * 256 MB tiny VM (no NIC: straight to its shell) under real QEMU, through the QEMU driver's
 * own path (`QemuDisks.take` with `memory`: a live `migrate` with `pause-before-switchover`,
 * the disk snapshot in the pause, `migrate-continue`, `cont`), ~5 snapshots while the guest
 * runs. The pause is QEMU's own, from its STOP event to its RESUME event; the state's bytes are
 * its file's size. The guest's shell must answer after each one, or the run fails.
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

export interface MemorySnapshotPauseResult {
  snapshots: number;
  memoryMiB: number;
  pausesMs: number[];
  stateBytes: number[];
  p50Ms: number;
  maxMs: number;
  stateP50Bytes: number;
  accel: string;
}

export async function benchMemorySnapshotPause(count = 5, log: (m: string) => void = () => {}): Promise<MemorySnapshotPauseResult> {
  const stateDir = mkdtempSync(join(tmpdir(), 'bench-memsnap-'));
  const exec = new SystemExec();
  const tiny = await buildTiny(join(tmpdir(), 'butter-tiny-image'));
  const { accel } = await probeAccel(exec);
  const driver = new QemuDriver({ exec, stateDir, accel });
  const id = 'bench-memsnap';
  const memoryMiB = 256;
  const undo = registerCleanup('the memory snapshot pause bench VM', async () => {
    await driver.destroy(id).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
  });
  const consoleLog = driver.consoleLogPath(id);
  const waitFor = async (re: RegExp, what: string) => {
    const end = Date.now() + 180_000;
    while (!(existsSync(consoleLog) && re.test(readFileSync(consoleLog, 'utf8')))) {
      if (Date.now() > end) throw new Error(`the tiny guest never ${what}`);
      await sleep(100);
    }
  };
  try {
    await driver.start({
      id,
      name: 'memsnap',
      cpus: 1,
      memoryMiB,
      diskBytes: 64 << 20,
      boot: { kind: 'kernel', kernel: tiny.kernel, initrd: tiny.initrd, rootDisk: tiny.rootDisk, rootFormat: 'raw', cmdline: 'console=ttyS0 quiet panic=-1' },
      nics: [],
      smbiosSerial: 'ds=nocloud-net;s=http://169.254.169.254/',
      initialSnapshot: 'initial0',
    });
    await waitFor(/butter-tiny: ready/, 'got ready');
    const pausesMs: number[] = [];
    const stateBytes: number[] = [];
    for (let i = 0; i < count; i++) {
      const r = await driver.snapshots.take(id, `m${i}`, { memory: true });
      if (r.pauseMs === undefined || r.memoryBytes === undefined) throw new Error('no pause or memory state measured');
      pausesMs.push(r.pauseMs);
      stateBytes.push(r.memoryBytes);
      // The guest runs on after it: its shell answers.
      await driver.writeConsole(id, Buffer.from(`echo on-${i}-$((40+2))\n`));
      await waitFor(new RegExp(`on-${i}-42`), `answered after memory snapshot ${i + 1}`);
      log(`memory snapshot ${i + 1}/${count}: paused ${r.pauseMs} ms, ${Math.round(r.memoryBytes / 2 ** 20)} MiB of state`);
    }
    const sorted = [...pausesMs].sort((a, b) => a - b);
    const bytes = [...stateBytes].sort((a, b) => a - b);
    return { snapshots: count, memoryMiB, pausesMs, stateBytes, p50Ms: round(percentile(sorted, 50), 2), maxMs: round(sorted.at(-1)!, 2), stateP50Bytes: round(percentile(bytes, 50), 0), accel };
  } finally {
    await driver.destroy(id).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
    undo();
  }
}
