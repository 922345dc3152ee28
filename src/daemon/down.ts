/**
 * `butter down [--purge]`: stops the `butter up` of a data dir (and its systemd unit) if it
 * runs, then its VMs, and removes everything its agent made on the host; with --purge also the
 * data dir and the CLI's config when it logs in to this Butter. Works as well after a crash
 * (stale pidfiles, processes and interfaces that outlived `up`). What to remove, in which order,
 * is core/down-plan.ts; what is there, agent/host/host-inventory.ts. After removing, it looks
 * again: anything still there is reported as failed, never passed over.
 */
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { configFile } from '../cli/config.ts';
import { planDown, ruleArgs, UP_UNIT, type DownKept, type DownObserved, type DownStep } from '../core/down-plan.ts';
import { SystemExec, type Exec } from '../agent/host/exec.ts';
import { observeHost } from '../agent/host/host-inventory.ts';
import { VPN_RULE_PRIORITY, UPLINK_RULE_PRIORITY, VPN_TABLE_BASE } from '../agent/host/network.ts';
import { QemuDriver } from '../agent/host/qemu-driver.ts';
import { dnsmasqDirPath, linkMarkOf, meshMarkOf, netnsPrefixOf } from './agent-runtime.ts';
import { liveUp } from './up-pidfile.ts';

export interface DownOptions {
  dataDir: string;
  purge: boolean;
  /** How long a guest gets to power off (ACPI) before QEMU is quit, then killed. */
  vmTimeoutMs: number;
  /** Progress, as each thing goes. */
  log: (m: string) => void;
  exec?: Exec;
}

export interface DownResult {
  removed: { kind: string; name: string }[];
  kept: DownKept[];
  failed: { kind: string; name: string; error: string }[];
}

const RULES = { priorities: [VPN_RULE_PRIORITY, UPLINK_RULE_PRIORITY], minTable: VPN_TABLE_BASE };
/** `butter up` stops its agent and control plane on SIGTERM; a wedged one is killed after this. */
const UP_STOP_MS = 60_000;

export async function runDown(o: DownOptions): Promise<DownResult> {
  const dataDir = resolve(o.dataDir);
  const exec = o.exec ?? new SystemExec();
  const stateDir = join(dataDir, 'agent');
  const driver = new QemuDriver({ exec, stateDir, accel: 'tcg', log: o.log });
  const observe = () => observeAll(exec, dataDir, stateDir, driver);
  const result: DownResult = { removed: [], kept: [], failed: [] };
  const run = async (step: DownStep) => {
    // The slow ones (a guest gets time to power off) say so first.
    if (step.kind === 'butter-up' || step.kind === 'vm') o.log(`stopping ${step.kind} ${step.name}`);
    try {
      await execute(step, { exec, driver, dataDir, vmTimeoutMs: o.vmTimeoutMs, log: o.log });
      result.removed.push({ kind: step.kind, name: step.name });
    } catch (e) {
      result.failed.push({ kind: step.kind, name: step.name, error: e instanceof Error ? e.message : String(e) });
      o.log(`could not remove ${step.kind} ${step.name}: ${String(e)}`);
    }
  };

  // What could make more goes first; then the host is looked at again, as it is once they are gone.
  const first = planDown(await observe(), { purge: o.purge, rules: RULES });
  for (const step of first.steps) if (step.kind === 'unit' || step.kind === 'butter-up') await run(step);
  const plan = planDown(await observe(), { purge: o.purge, rules: RULES });
  for (const step of plan.steps) if (step.kind !== 'unit' && step.kind !== 'butter-up') await run(step);
  result.kept = plan.kept;

  const left = planDown(await observe(), { purge: o.purge, rules: RULES }).steps;
  for (const step of left) {
    if (!result.failed.some((f) => f.kind === step.kind && f.name === step.name)) result.failed.push({ kind: step.kind, name: step.name, error: 'still there after butter down' });
  }
  return result;
}

async function observeAll(exec: Exec, dataDir: string, stateDir: string, driver: QemuDriver): Promise<DownObserved> {
  const runDir = dnsmasqDirPath(stateDir);
  const host = await observeHost({ exec, prefix: 'bt', mark: linkMarkOf(stateDir), meshMark: meshMarkOf(stateDir), netnsPrefix: netnsPrefixOf(stateDir), runDir });
  const up = liveUp(dataDir);
  const unit = await observeUnit(exec);
  const config = observeConfig(dataDir);
  return {
    dataDir,
    ...(unit ? { unit } : {}),
    ...(up ? { up: { pid: up.pid } } : {}),
    vms: (await driver.list()).filter((v) => v.running).map((v) => v.id),
    ...host,
    ...(existsSync(runDir) ? { runDir } : {}),
    dataDirExists: existsSync(dataDir),
    ...(config ? { config } : {}),
  };
}

/** `butter-up.service`, when systemd is PID 1 (the sd_booted test) and has the unit. */
async function observeUnit(exec: Exec): Promise<DownObserved['unit']> {
  if (!existsSync('/run/systemd/system')) return undefined;
  const r = await exec.run('systemctl', ['show', UP_UNIT, '--property=LoadState,ActiveState,UnitFileState,MainPID'], { allowFail: true });
  const p = new Map(r.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  if (r.code !== 0 || p.get('LoadState') !== 'loaded') return undefined;
  return { active: ['active', 'activating', 'reloading'].includes(p.get('ActiveState') ?? ''), enabled: p.get('UnitFileState') === 'enabled', mainPid: Number(p.get('MainPID') ?? 0) };
}

/** The CLI's config is this Butter's when it logs in with this data dir's admin token (as `up` wrote it). */
function observeConfig(dataDir: string): DownObserved['config'] {
  const path = configFile();
  if (!existsSync(path)) return undefined;
  let token: unknown;
  try {
    token = (JSON.parse(readFileSync(path, 'utf8')) as { token?: unknown }).token;
  } catch {
    token = undefined;
  }
  let admin: string | undefined;
  try {
    admin = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  } catch {
    admin = undefined;
  }
  return { path, ours: admin !== undefined && token === admin };
}

interface Ctx {
  exec: Exec;
  driver: QemuDriver;
  dataDir: string;
  vmTimeoutMs: number;
  log: (m: string) => void;
}

async function execute(step: DownStep, c: Ctx): Promise<void> {
  const ip = (...args: string[]) => c.exec.run('ip', args);
  switch (step.kind) {
    case 'unit':
      // Stopped (its `up` exits cleanly, so Restart=on-failure leaves it) and not started at boot.
      await c.exec.run('systemctl', ['disable', '--now', UP_UNIT]);
      return;
    case 'butter-up':
      // Its pidfile, checked against /proc: gone (or cleanly released) means stopped.
      await stopProcess(step.pid, async () => liveUp(c.dataDir)?.pid === step.pid, UP_STOP_MS);
      return;
    case 'vm':
      await c.driver.stop(step.name, c.vmTimeoutMs);
      return;
    case 'dnsmasq': {
      const conf = `--conf-file=${join(dnsmasqDirPath(join(c.dataDir, 'agent')), 'net', step.name)}/`;
      await stopProcess(step.pid, async () => (await argvOf(step.pid)).some((a) => a.startsWith(conf)), 5000);
      return;
    }
    case 'namespace':
      await ip('netns', 'del', step.name);
      return;
    case 'rule':
      await ip('rule', 'del', ...ruleArgs(step.rule));
      return;
    case 'route':
      // Gone already when its uplink went with its namespace.
      await c.exec.run('ip', ['route', 'del', step.name, 'proto', '98', 'dev', step.dev], { allowFail: true });
      return;
    case 'table':
      await c.exec.run('ip', ['route', 'flush', 'table', String(step.table)], { allowFail: true });
      return;
    case 'link':
      // A veth goes with its peer (a gateway namespace's, deleted above): the second end may be gone.
      await c.exec.run('ip', ['link', 'del', step.name], { allowFail: step.linkKind === 'veth' });
      return;
    case 'mesh': {
      // wireguard-go exits when its interface goes, and removes its control socket.
      await ip('link', 'del', step.name);
      const pid = step.wireguardGo;
      if (pid !== undefined) {
        const same = async () => (await argvOf(pid))[1] === step.name;
        for (let i = 0; i < 60 && (await same()); i++) await sleep(50);
        if (await same()) {
          c.log(`wireguard-go ${pid} still running after its interface went: killing it`);
          killQuietly(pid, 'SIGKILL');
        }
      }
      rmSync(`/var/run/wireguard/${step.name}.sock`, { force: true });
      return;
    }
    case 'nft-table':
      await c.exec.run('nft', ['delete', 'table', ...step.name.split(' ')]);
      return;
    case 'run-dir':
      rmSync(step.name, { recursive: true, force: true });
      // /run/butter itself, when no other agent's dir is in it.
      try {
        if (readdirSync('/run/butter').length === 0) rmdirSync('/run/butter');
      } catch {
        // not there, or not empty meanwhile
      }
      return;
    case 'config':
    case 'data-dir':
      rmSync(step.name, { recursive: true, force: true });
      return;
  }
}

/**
 * SIGTERM, a bounded wait, then SIGKILL. `alive`: the pid is still that process (pids are
 * reused), asked before every signal, so a process that went meanwhile is never mistaken.
 */
async function stopProcess(pid: number, alive: () => Promise<boolean>, ms: number): Promise<void> {
  if (!(await alive())) return;
  killQuietly(pid, 'SIGTERM');
  const end = Date.now() + ms;
  while ((await alive()) && Date.now() < end) await sleep(50);
  if (!(await alive())) return;
  killQuietly(pid, 'SIGKILL');
  for (let i = 0; i < 100 && (await alive()); i++) await sleep(50);
  if (await alive()) throw new Error(`process ${pid} survived SIGKILL`);
}

/** A process's argv; empty when it is gone or a zombie. */
async function argvOf(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}
