/**
 * Figure (a), Butter side: one `POST /v1/vms` against `butter up` (in its namespace) until the
 * VM is `running`, i.e. the guest fetched its metadata. The figure is the difference of two
 * server-side audit timestamps (the `create` event and the `→ running` state event); the
 * agent's log lines in between give the timeline of where the time went.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BUTTER, type ButterInNetns } from '../test/host/butter-cli.ts';
import type { BootClientInput, BootClientOutput } from './boot-client.ts';
import { cpuSeconds } from './boot-bare.ts';
import { phases, watchConsole, type BootPhases } from './console-watch.ts';
import { sleep } from './stats.ts';

const execFileP = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLIENT = fileURLToPath(new URL('./boot-client.ts', import.meta.url));

export interface VmShape {
  cpus: number;
  memory: string;
  disk: string;
}

export interface TimelineEntry {
  /** ms after the `create` event. */
  atMs: number;
  what: string;
}

export interface ButterBoot {
  name: string;
  id: string;
  /** `create` event → `→ running` event (server clock): the figure. */
  totalMs: number;
  /** Client: request sent → polling saw `running` (every 250 ms, as `vm create --wait` does). */
  clientMs: number;
  /** `create` event → the agent spawned qemu-system (from its "started … in N ms" log line). */
  preQemuMs: number | null;
  /** qemu-system spawned → `→ running`: comparable with the bare figure. */
  qemuToRunningMs: number | null;
  /** CPU seconds QEMU used per wall second from its spawn until we looked (just after `running`). */
  cpuShare: number | null;
  /** CPU time `butter up` (control plane + agent, one process) used during the run. */
  upCpuMs: number | null;
  /** The boot from QEMU's spawn, split by the guest's console lines (host clock). */
  phases: BootPhases;
  /** Guest's own uptime when it printed `ready` (after its metadata fetch). */
  guestBootS: number | null;
  qemuPid: number | null;
  timeline: TimelineEntry[];
}

/** The CLI as a user runs it in the namespace, without blocking our event loop (spawnSync would). */
export async function cliAsync(b: ButterInNetns, args: string[], timeoutMs = 180_000): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(b.dir, 'config') };
  delete env.BUTTER_URL;
  delete env.BUTTER_TOKEN;
  try {
    const r = await execFileP('ip', ['netns', 'exec', b.ns, BUTTER, ...args], { env, timeout: timeoutMs, encoding: 'utf8' });
    return r.stdout;
  } catch (e) {
    throw new Error(`butter ${args.join(' ')}: ${lastLine(e)}`);
  }
}

/** The last line a failed child wrote on stderr (or why it failed), not its whole command line. */
function lastLine(e: unknown): string {
  const err = e as { stderr?: string; killed?: boolean; signal?: string; message?: string };
  const line = err.stderr?.trim().split('\n').pop();
  if (line) return line;
  return err.killed ? `killed (${err.signal ?? 'timeout'})` : (err.message?.split('\n')[0] ?? String(e));
}

/** The `butter up` process of this namespace (`ip netns exec` execs, so it is node itself). */
function butterUpPid(b: ButterInNetns): number | undefined {
  const r = spawnSync('pgrep', ['-f', `up --data-dir ${b.dataDir} `], { encoding: 'utf8' });
  const pid = Number(r.stdout.trim().split('\n')[0]);
  return pid > 0 ? pid : undefined;
}

interface LogLine {
  time: number;
  msg: string;
}

function logLines(upLog: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of upLog.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { time?: unknown; msg?: unknown };
      if (typeof j.time === 'number' && typeof j.msg === 'string') out.push({ time: j.time, msg: j.msg });
    } catch {
      // a partial line
    }
  }
  return out;
}

async function guestBootSeconds(consoleLog: string, timeoutMs: number): Promise<number | null> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '';
    const m = /butter-tiny: boot took ([\d.]+)s/.exec(text);
    if (m) return Number(m[1]);
    if (Date.now() > end) return null;
    await sleep(200);
  }
}

export async function butterBoot(b: ButterInNetns, name: string, shape: VmShape, timeoutMs: number): Promise<ButterBoot> {
  // `butter up` logged the CLI in: its config has the URL (and the CA when it serves HTTPS).
  const cfg = JSON.parse(readFileSync(join(b.dir, 'config', 'butter', 'config.json'), 'utf8')) as { url: string; ca?: string };
  const token = readFileSync(join(b.dataDir, 'admin.token'), 'utf8').trim();
  const input: BootClientInput = { url: cfg.url, token, ...(cfg.ca ? { ca: cfg.ca } : {}), vm: { name, image: 'tiny', ...shape }, timeoutMs, pollMs: 250 };
  const logFrom = b.upLog.length;
  const upPid = butterUpPid(b);
  const upCpu0 = upPid === undefined ? NaN : cpuSeconds(upPid);
  // The VM's directory appears once the agent starts it: the one that was not there before.
  const vmsDir = join(b.dataDir, 'agent', 'vms');
  const before = new Set(existsSync(vmsDir) ? readdirSync(vmsDir) : []);
  const stopWatch = watchConsole(() => {
    const dir = existsSync(vmsDir) ? readdirSync(vmsDir).find((d) => !before.has(d)) : undefined;
    return dir ? join(vmsDir, dir, 'console.log') : undefined;
  });
  let stdout: string;
  try {
    ({ stdout } = await execFileP('ip', ['netns', 'exec', b.ns, process.execPath, '--import', 'tsx', CLIENT], {
      cwd: REPO,
      env: { ...process.env, BOOT_CLIENT_INPUT: JSON.stringify(input) },
      encoding: 'utf8',
      timeout: timeoutMs + 30_000,
    }));
  } catch (e) {
    stopWatch();
    throw new Error(`creating vm ${name}: ${lastLine(e)}`);
  }
  const marks = stopWatch();
  const out = JSON.parse(stdout.trim().split('\n').pop()!) as BootClientOutput;
  if (out.state !== 'running') {
    const consoleLog = join(b.dataDir, 'agent', 'vms', out.id, 'console.log');
    const guest = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').split('\n').filter((l) => l.includes('butter-tiny:')).slice(-6).join(' | ') : 'no console log';
    throw new Error(`vm ${name} is ${out.state}${out.reason ? ` (${out.reason})` : ''} after ${timeoutMs} ms, not running; guest said: ${guest}`);
  }

  const at = (pred: (e: BootClientOutput['events'][number]) => boolean) => {
    const e = out.events.find(pred);
    return e ? Date.parse(e.at) : undefined;
  };
  const createAt = at((e) => e.action === 'create');
  const runningAt = at((e) => e.action === 'state' && e.message.includes('→ running'));
  if (createAt === undefined || runningAt === undefined) throw new Error(`vm ${name}: no create/running events in ${JSON.stringify(out.events)}`);

  // The agent's side, from `butter up`'s log: lines about this VM (its id or its tap) and the
  // network changes made for it.
  const lines = logLines(b.upLog.slice(logFrom)).filter((l) => l.time >= createAt - 5 && l.time <= runningAt + 5);
  const timeline: TimelineEntry[] = [
    ...out.events.map((e) => ({ atMs: Date.parse(e.at) - createAt, what: `event ${e.action}: ${e.message}` })),
    ...lines.map((l) => ({ atMs: l.time - createAt, what: `agent: ${l.msg}` })),
  ].sort((x, y) => x.atMs - y.atMs);

  // "started <id> pid <pid> (tcg) in <ms> ms" is logged right after `qemu-system -daemonize` returns.
  let qemuSpawnAt: number | null = null;
  let qemuPid: number | null = null;
  for (const l of lines) {
    const m = new RegExp(`^started ${out.id} pid (\\d+) \\(\\w+\\) in (\\d+) ms`).exec(l.msg);
    if (m) {
      qemuPid = Number(m[1]);
      qemuSpawnAt = l.time - Number(m[2]);
      timeline.push({ atMs: qemuSpawnAt - createAt, what: 'agent spawned qemu-system (-daemonize)' });
    }
  }
  timeline.sort((x, y) => x.atMs - y.atMs);

  const upCpuMs = upPid === undefined ? NaN : Math.round((cpuSeconds(upPid) - upCpu0) * 1000);
  // Read now, a poll interval or so after `running`: slightly generous, like-for-like enough.
  const cpuShare = qemuPid === null || qemuSpawnAt === null ? null : cpuSeconds(qemuPid) / ((Date.now() - qemuSpawnAt) / 1000);
  const guestBootS = await guestBootSeconds(join(b.dataDir, 'agent', 'vms', out.id, 'console.log'), 15_000);
  return {
    name,
    id: out.id,
    totalMs: runningAt - createAt,
    clientMs: out.runningSeenAt - out.sentAt,
    preQemuMs: qemuSpawnAt === null ? null : qemuSpawnAt - createAt,
    qemuToRunningMs: qemuSpawnAt === null ? null : runningAt - qemuSpawnAt,
    cpuShare: cpuShare !== null && Number.isFinite(cpuShare) ? Math.round(cpuShare * 100) / 100 : null,
    upCpuMs: Number.isFinite(upCpuMs) ? upCpuMs : null,
    phases: phases(qemuSpawnAt, marks),
    guestBootS,
    qemuPid,
    timeline,
  };
}

/** `butter vm rm NAME` (waits until the node removed the VM, its disk and its tap). */
export async function butterRm(b: ButterInNetns, name: string): Promise<void> {
  await cliAsync(b, ['vm', 'rm', name]);
}

/** `butter vm stop NAME` (waits until the guest powered off and QEMU is gone). */
export async function butterStop(b: ButterInNetns, name: string): Promise<void> {
  await cliAsync(b, ['vm', 'stop', name]);
}
