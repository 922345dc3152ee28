/** The facts about this machine that a benchmark figure means nothing without. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { SystemExec } from '../src/agent/host/exec.ts';
import { probeAccel } from '../src/agent/host/kvm-probe.ts';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  qemu: string;
  /** What Butter's agent would use here, probed the same way (a real vCPU run). */
  accel: 'kvm' | 'tcg';
  accelReason: string | null;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // fall through
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

export async function machineFacts(): Promise<Machine> {
  const accel = await probeAccel(new SystemExec()).catch((e: Error) => ({ accel: 'tcg' as const, reason: `probe failed: ${e.message}` }));
  const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0]?.trim() || 'not installed';
  return {
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    os: osName(),
    node: process.version,
    qemu,
    accel: accel.accel,
    accelReason: accel.reason ?? null,
  };
}
