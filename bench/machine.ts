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

function cpuTimes(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Fraction of all CPUs busy over the next `ms` (from /proc/stat). */
export async function cpuBusy(ms: number): Promise<number> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

/**
 * Waits (at most `maxMs`) for the machine to be quiet, i.e. under `threshold` CPU busy over
 * a second: other work (someone's tests) skews every figure. Returns the last busy fraction.
 */
export async function waitForQuiet(maxMs = 20_000, threshold = 0.2): Promise<number> {
  const end = Date.now() + maxMs;
  for (;;) {
    const busy = await cpuBusy(1000);
    if (busy < threshold || Date.now() >= end) return Math.round(busy * 100) / 100;
  }
}
