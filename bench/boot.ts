/**
 * Figure (a): create → guest fetched its metadata, through Butter vs bare QEMU, measured in
 * alternating runs in one process: `butter up --no-egress` in a fresh network namespace
 * (test/host/butter-cli.ts) against bare qemu-system of the same image.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ButterInNetns } from '../test/host/butter-cli.ts';
import { bareBoot, type BareBoot, type TinyFiles } from './boot-bare.ts';
import { butterBoot, butterRm, butterStop, type ButterBoot, type VmShape } from './boot-butter.ts';
import { registerCleanup } from './cleanup.ts';
import { waitForQuiet } from './machine.ts';
import { median, sleep, within } from './stats.ts';

export interface BootOptions {
  runs: number;
  /** One unmeasured pair first: fills Butter's image cache and the page cache for both. */
  warmup: boolean;
  shape: VmShape;
  timeoutMs: number;
  /**
   * What happens to a Butter VM after its run. `rm` (the default) is the natural way: `vm rm`,
   * and the next VM is given the address just freed. That works because the agent releases a
   * removed VM's DHCP lease (`dhcp_release`); before it did, dnsmasq kept the address leased
   * to the old MAC and the next guest never got an answer. `stop` keeps each VM, stopped (no
   * QEMU running), until the end, when all are removed with `vm rm`.
   */
  between: 'rm' | 'stop';
  /** Extra pairs allowed to replace discarded ones. */
  maxExtraRuns: number;
}

/** Below this share of a CPU during its boot, a QEMU was starved by other work. */
export const MIN_CPU_SHARE = 0.9;

export const BOOT_DEFAULTS: BootOptions = { runs: 3, warmup: true, shape: { cpus: 1, memory: '256M', disk: '1G' }, timeoutMs: 60_000, between: 'rm', maxExtraRuns: 2 };

export interface BootRun {
  run: number;
  butter: ButterBoot;
  bare: BareBoot;
  /** CPU busy (fraction) in the second before the Butter boot and before the bare one. */
  cpuBusyBefore: number[];
}

export interface BootResult {
  butterMedianMs: number;
  bareMedianMs: number;
  /** median(Butter) / median(bare): the figure, goal <= 1.05. */
  ratio: number;
  /** Medians of the parts of Butter's time (see ButterBoot). */
  butterPreQemuMedianMs: number | null;
  butterQemuToRunningMedianMs: number | null;
  butterClientMedianMs: number;
  guestBootMedianS: { butter: number | null; bare: number | null };
  runs: BootRun[];
  /** Pairs not counted because a QEMU was starved of CPU by other work (see MIN_CPU_SHARE). */
  discarded: BootRun[];
  warmup: BootRun | null;
  /** `butter up` ready (tiny image built and added), not part of the figure. */
  upReadyMs: number;
  butterQemuArgs: string[] | null;
  bareQemuArgs: string[];
  /** True when the baseline's argv was derived from Butter's (boot-bare.ts deriveBareArgs). */
  bareArgsDerived: boolean;
  /** Options whose values differ between the two command lines (paths aside). */
  argDifferences: string[];
  options: BootOptions;
}

export function bootPrerequisites(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, taps, build.sh)';
  for (const bin of ['qemu-system-x86_64', 'qemu-img', 'dnsmasq', 'ip']) {
    if (spawnSync(bin, ['--version']).error) return `${bin} not installed`;
  }
  if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) return 'dist/ is missing: run `npm run build`';
  return undefined;
}

/** Flags whose values should match, compared between Butter's QEMU and ours. */
function argDifferences(butter: string[], bare: string[]): string[] {
  const val = (argv: string[], flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const diffs: string[] = [];
  for (const flag of ['-M', '-accel', '-cpu', '-smp', '-m', '-append']) {
    if (val(butter, flag) !== val(bare, flag)) diffs.push(`${flag}: butter ${JSON.stringify(val(butter, flag))} vs bare ${JSON.stringify(val(bare, flag))}`);
  }
  for (const flag of ['-nodefaults', '-no-user-config']) if (butter.includes(flag) !== bare.includes(flag)) diffs.push(`${flag} only in ${butter.includes(flag) ? 'butter' : 'bare'}`);
  const devices = (argv: string[]) => argv.flatMap((a, i) => (argv[i - 1] === '-device' ? [a.split(',')[0]] : [])).sort().join(' ');
  if (devices(butter) !== devices(bare)) diffs.push(`devices: butter ${devices(butter)} vs bare ${devices(bare)}`);
  return diffs;
}

function readCmdline(pid: number | null): string[] | null {
  if (pid === null) return null;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1);
  } catch {
    return null;
  }
}

/**
 * ButterInNetns.cleanup(), made safe to call whatever state `butter up` is in: its kill()
 * waits for an exit event that never comes when the process already died of a signal, so
 * it is bounded here and the rest (QEMU and dnsmasq of this data dir, wireguard-go, the
 * namespace, the dirs) is done either way. Idempotent.
 */
export async function cleanupButter(b: ButterInNetns): Promise<void> {
  // Bounded: a butter that does not die within 5 s is left to cleanup()'s own SIGKILL sweep.
  await within(b.kill(), 5_000, undefined);
  // The test helper's own cleanup: its processes, mesh, namespace, and the agent's gateway
  // namespaces (this copy once missed those: a bench killed with VMs running left one behind).
  await b.cleanup();
}

export async function benchBoot(o: BootOptions = BOOT_DEFAULTS, log: (m: string) => void = () => {}): Promise<BootResult> {
  const missing = bootPrerequisites();
  if (missing) throw new Error(missing);
  const work = mkdtempSync(join(tmpdir(), 'butter-bench-boot-'));
  const b = new ButterInNetns();
  const undo = registerCleanup(`butter up in ${b.ns}`, async () => {
    await cleanupButter(b);
    rmSync(work, { recursive: true, force: true });
  });
  try {
    const t0 = Date.now();
    await b.start(300_000);
    const upReadyMs = Date.now() - t0;
    log(`butter up ready in ${upReadyMs} ms (namespace ${b.ns})`);
    const dir = join(b.dataDir, 'tiny-build');
    const tiny: TinyFiles = {
      kernel: join(dir, 'vmlinuz'),
      initrd: join(dir, 'initrd.img'),
      rootImg: join(dir, 'root.img'),
      cmdline: readFileSync(join(dir, 'cmdline.txt'), 'utf8').trim(),
    };

    let butterQemuArgs: string[] | null = null;
    const kept: string[] = [];
    let bareQemuArgs: string[] = [];
    let bareArgsDerived = false;
    const pair = async (run: number): Promise<BootRun> => {
      const name = run === 0 ? 'warmup' : `boot-${run}`;
      // Someone else's burst of work would land on one side of the comparison only.
      const busyBefore = [await waitForQuiet(5_000)];
      const butter = await butterBoot(b, name, o.shape, o.timeoutMs);
      butterQemuArgs ??= readCmdline(butter.qemuPid);
      log(`  ${name}: butter ${butter.totalMs} ms (pre-qemu ${butter.preQemuMs} ms, qemu→running ${butter.qemuToRunningMs} ms, qemu cpu share ${butter.cpuShare}, butter up cpu ${butter.upCpuMs} ms)`);
      if (o.between === 'rm') await butterRm(b, name);
      else {
        await butterStop(b, name);
        kept.push(name);
      }
      await sleep(500);
      busyBefore.push(await waitForQuiet(5_000));
      const bare = await bareBoot(tiny, o.shape, work, name, o.timeoutMs, butterQemuArgs);
      bareQemuArgs = bare.args;
      bareArgsDerived = bare.derived;
      log(`  ${name}: bare   ${Math.round(bare.totalMs)} ms (qemu cpu share ${bare.cpuShare?.toFixed(2)})`);
      await sleep(500);
      const bareShare = bare.cpuShare !== null && Number.isFinite(bare.cpuShare) ? Math.round(bare.cpuShare * 100) / 100 : null;
      return { run, butter, bare: { totalMs: Math.round(bare.totalMs), cpuShare: bareShare, phases: bare.phases, guestBootS: bare.guestBootS }, cpuBusyBefore: busyBefore };
    };

    const warmup = o.warmup ? await pair(0) : null;
    const runs: BootRun[] = [];
    const discarded: BootRun[] = [];
    // A boot is CPU-bound: QEMU takes a whole core (share ~1). A pair in which either QEMU
    // got much less was slowed by someone else's work on this machine: run another instead.
    for (let n = 1; runs.length < o.runs && n <= o.runs + o.maxExtraRuns; n++) {
      const r = await pair(n);
      const starved = [r.butter.cpuShare, r.bare.cpuShare].some((x) => x !== null && x < MIN_CPU_SHARE);
      if (starved) log(`  boot-${n}: discarded, a QEMU got less than ${MIN_CPU_SHARE} of a CPU (other work on the machine)`);
      (starved ? discarded : runs).push(r);
    }
    // Too few clean pairs: the starved ones count after all (the result says so).
    if (runs.length === 0) runs.push(...discarded.splice(0));
    for (const name of kept) await butterRm(b, name);

    const butterMedianMs = median(runs.map((r) => r.butter.totalMs));
    const bareMedianMs = median(runs.map((r) => r.bare.totalMs));
    const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
    const medianOrNull = (xs: (number | null)[]) => (nums(xs).length ? median(nums(xs)) : null);
    return {
      butterMedianMs,
      bareMedianMs,
      ratio: Math.round((butterMedianMs / bareMedianMs) * 1000) / 1000,
      butterPreQemuMedianMs: medianOrNull(runs.map((r) => r.butter.preQemuMs)),
      butterQemuToRunningMedianMs: medianOrNull(runs.map((r) => r.butter.qemuToRunningMs)),
      butterClientMedianMs: median(runs.map((r) => r.butter.clientMs)),
      guestBootMedianS: { butter: medianOrNull(runs.map((r) => r.butter.guestBootS)), bare: medianOrNull(runs.map((r) => r.bare.guestBootS)) },
      runs,
      discarded,
      warmup,
      upReadyMs,
      butterQemuArgs,
      bareQemuArgs,
      bareArgsDerived,
      argDifferences: butterQemuArgs ? argDifferences(butterQemuArgs, bareQemuArgs) : ['could not read the Butter VM’s command line'],
      options: o,
    };
  } finally {
    await cleanupButter(b);
    rmSync(work, { recursive: true, force: true });
    undo();
  }
}
