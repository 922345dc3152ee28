/**
 * (q) Suspend and resume of a 256 MB tiny VM (issue 16, memory snapshots): real QEMU through
 * the QEMU driver's own path (`agent/host/qemu-driver.ts`): QMP `migrate` to `exec:cat > FILE`
 * until `query-migrate` says completed, then `quit` (suspend); a QEMU started with
 * `-S -incoming defer`, `migrate-incoming` from `exec:cat FILE`, `cont` (resume). The VM has no
 * NIC (straight to its shell); the guest's shell must answer after each resume, or the run fails.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemExec } from '../src/agent/host/exec.ts';
import { probeAccel } from '../src/agent/host/kvm-probe.ts';
import { QemuDriver } from '../src/agent/host/qemu-driver.ts';
import { buildTiny } from '../src/daemon/tiny-image.ts';
import { registerCleanup } from './cleanup.ts';
import { percentile, round, sleep } from './stats.ts';

export interface MemorySnapshotResult {
  cycles: number;
  memoryMiB: number;
  suspendMs: number[];
  resumeMs: number[];
  stateBytes: number[];
  suspendP50Ms: number;
  resumeP50Ms: number;
  stateP50Bytes: number;
  accel: string;
}

export async function benchMemorySnapshot(cycles = 5, log: (m: string) => void = () => {}): Promise<MemorySnapshotResult> {
  const stateDir = mkdtempSync(join(tmpdir(), 'bench-mem-'));
  const exec = new SystemExec();
  const tiny = await buildTiny(join(tmpdir(), 'butter-tiny-image'));
  const { accel } = await probeAccel(exec);
  const driver = new QemuDriver({ exec, stateDir, accel });
  const id = 'bench-mem';
  const memoryMiB = 256;
  const spec = {
    id,
    name: 'mem',
    cpus: 1,
    memoryMiB,
    diskBytes: 64 << 20,
    boot: { kind: 'kernel' as const, kernel: tiny.kernel, initrd: tiny.initrd, rootDisk: tiny.rootDisk, rootFormat: 'raw' as const, cmdline: 'console=ttyS0 quiet panic=-1' },
    nics: [],
    smbiosSerial: 'ds=nocloud-net;s=http://169.254.169.254/',
  };
  const undo = registerCleanup('the memory snapshot bench VM', async () => {
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
    await driver.start(spec);
    await waitFor(/butter-tiny: ready/, 'got ready');
    const suspendMs: number[] = [];
    const resumeMs: number[] = [];
    const stateBytes: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const s = await driver.memory.suspend(id);
      suspendMs.push(s.ms);
      stateBytes.push(s.sizeBytes ?? statSync(join(stateDir, 'vms', id, 'memory.state')).size);
      const r = await driver.memory.resume(spec);
      resumeMs.push(r.ms);
      // The guest must really be back: its shell answers.
      await driver.writeConsole(id, Buffer.from(`echo back-${i}-$((40+2))\n`));
      await waitFor(new RegExp(`back-${i}-42`), `answered after resume ${i + 1}`);
      log(`cycle ${i + 1}/${cycles}: suspend ${s.ms} ms (${Math.round(s.sizeBytes / 2 ** 20)} MiB), resume to running ${r.ms} ms`);
    }
    const p50 = (xs: number[]) => round(percentile([...xs].sort((a, b) => a - b), 50), 2);
    return { cycles, memoryMiB, suspendMs, resumeMs, stateBytes, suspendP50Ms: p50(suspendMs), resumeP50Ms: p50(resumeMs), stateP50Bytes: p50(stateBytes), accel };
  } finally {
    await driver.destroy(id).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
    undo();
  }
}
