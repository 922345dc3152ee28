/**
 * Decides between KVM and TCG by actually running a vCPU. `/dev/kvm` existing (or even
 * creating a KVM VM) is not enough: under nested virtualisation QEMU can open KVM, then abort
 * the moment the vCPU first runs (e.g. "failed to set MSR ..."). So we boot the same machine
 * the driver will use (q35, `-cpu host`), with no devices, and see whether it is still alive
 * after a moment: still running means the vCPU runs; exiting early means it does not.
 */
import { existsSync } from 'node:fs';
import type { Exec } from './exec.ts';

export interface AccelChoice {
  accel: 'kvm' | 'tcg';
  /** Why KVM was not chosen. */
  reason?: string;
}

export interface ProbeOptions {
  qemuBinary?: string;
  /** How long the probe VM must survive to count as working. */
  aliveSeconds?: number;
  /** Where KVM lives; a parameter so tests can point elsewhere. */
  kvmDevice?: string;
}

export async function probeAccel(exec: Exec, opts: ProbeOptions = {}): Promise<AccelChoice> {
  const dev = opts.kvmDevice ?? '/dev/kvm';
  if (!existsSync(dev)) return { accel: 'tcg', reason: `${dev} does not exist` };
  const secs = opts.aliveSeconds ?? 1;
  // coreutils `timeout` exits 124 when it had to stop the command: the VM was still running.
  const r = await exec.run(
    'timeout',
    [
      '--kill-after=1', String(secs),
      opts.qemuBinary ?? 'qemu-system-x86_64',
      '-M', 'q35', '-accel', 'kvm', '-cpu', 'host', '-smp', '1', '-m', '64',
      '-nodefaults', '-no-user-config', '-display', 'none',
    ],
    { allowFail: true, timeoutMs: (secs + 5) * 1000 },
  );
  if (r.code === 124 || r.code === 137) return { accel: 'kvm' };
  const err = r.stderr.trim().split('\n').filter((l) => !/warning:/.test(l)).slice(0, 3).join('; ');
  return { accel: 'tcg', reason: `KVM test VM exited ${r.code}: ${err || r.stdout.trim() || 'no output'}` };
}
