/**
 * Runs a whole Butter (`butter up`) inside a fresh network namespace, and the CLI against
 * it, exactly as a user would. The namespace has no uplink: nothing a guest sends can leave.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopWireguardGo } from './wireguard-go.ts';
import { dnsmasqDirPath, netnsPrefixOf } from '../../src/daemon/agent-runtime.ts';

export const BUTTER = fileURLToPath(new URL('../../bin/butter', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class ButterInNetns {
  readonly ns = `bt-e2e-${randomBytes(3).toString('hex')}`;
  /** The mesh interface: unique, as wireguard-go's control sockets are shared by all namespaces. */
  readonly wg = `bw${this.ns.slice(-6)}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'butter-e2e-'));
  readonly port = 7700;
  private up: ChildProcess | undefined;
  upLog = '';

  constructor() {
    run('ip', ['netns', 'add', this.ns]);
    run('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, XDG_CONFIG_HOME: join(this.dir, 'config'), BUTTER_URL: undefined, BUTTER_TOKEN: undefined };
  }

  /**
   * Starts `butter up` and resolves when it says ready (the tiny image is added by then), or
   * with `until: 'healthz'` as soon as /healthz answers, as a script that only waits for health.
   */
  async start(timeoutMs = 300_000, until: 'ready' | 'healthz' = 'ready'): Promise<void> {
    this.upLog = '';
    // nsenter, not `ip netns exec`: the agent's gateway namespaces (`ip netns add`) must be
    // mounted where everyone sees them, not in a private mount namespace.
    const child = spawn('nsenter', [`--net=/run/netns/${this.ns}`, BUTTER, 'up', '--data-dir', this.dataDir, '--listen', `127.0.0.1:${this.port}`, '--no-egress', '--wg-interface', this.wg], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.up = child;
    child.stdout!.on('data', (d: Buffer) => (this.upLog += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.upLog += d.toString()));
    const end = Date.now() + timeoutMs;
    const up = () => (until === 'ready' ? this.upLog.includes('"msg":"ready"') : this.probe('/healthz').status === 200);
    while (!up()) {
      if (child.exitCode !== null) throw new Error(`butter up exited ${child.exitCode}: ${this.upLog}`);
      if (Date.now() > end) throw new Error(`butter up not ready: ${this.upLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** GET of a public path (/healthz, /readyz) from inside the namespace; -k: no token or CA needed there. */
  probe(path: string): { status: number; body: string } {
    const r = this.sh('curl', ['-ks', '-w', '\n%{http_code}', `https://127.0.0.1:${this.port}${path}`]);
    const lines = r.stdout.trimEnd().split('\n');
    return { status: Number(lines.pop()), body: lines.join('\n') };
  }

  /** SIGKILL, as a crash would: no cleanup runs. */
  async kill(): Promise<void> {
    const child = this.up;
    // Gone already (exited, or killed by a signal: then exitCode stays null).
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    // nsenter execs, so the child pid is butter's node process itself.
    child.kill('SIGKILL');
    await exited;
  }

  cli(args: string[], input?: string): CliResult {
    const r = spawnSync('ip', ['netns', 'exec', this.ns, BUTTER, ...args], { env: this.env(), encoding: 'utf8', input, timeout: 400_000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * The CLI through nsenter, as `butter up` itself runs: for commands that add or delete
   * network namespaces (`butter down`), which a private mount namespace would hide.
   */
  host(args: string[]): CliResult {
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.ns}`, BUTTER, ...args], { env: this.env(), encoding: 'utf8', timeout: 400_000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Whether the `butter up` this started is still running. */
  upRunning(): boolean {
    return !!this.up && this.up.exitCode === null && this.up.signalCode === null;
  }

  /** Resolves when `butter up` has exited (a bounded wait: false if it has not). */
  async upExit(ms = 60_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (this.upRunning() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    return !this.upRunning();
  }

  /** The CLI, which must succeed; returns its stdout. */
  ok(args: string[]): string {
    const r = this.cli(args);
    if (r.code !== 0) throw new Error(`butter ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${this.upLog.slice(-3000)}`);
    return r.stdout;
  }

  /** Polls `vm logs` until the console output matches. */
  async logsUntil(name: string, re: RegExp, ms = 60_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const out = this.ok(['vm', 'logs', name]);
      if (re.test(out)) return out;
      if (Date.now() > end) throw new Error(`logs of ${name} never matched ${re}:\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Runs a command inside the namespace. */
  sh(cmd: string, args: string[]): CliResult {
    const r = spawnSync('ip', ['netns', 'exec', this.ns, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Processes (QEMU, dnsmasq) whose command line mentions our data dir. */
  processes(): { pid: number; cmd: string }[] {
    const lines = [this.dataDir, dnsmasqDirPath(join(this.dataDir, 'agent'))].flatMap((pattern) => spawnSync('pgrep', ['-af', pattern], { encoding: 'utf8' }).stdout.split('\n'));
    return lines
      .filter(Boolean)
      .map((l) => ({ pid: Number(l.split(' ')[0]), cmd: l.slice(l.indexOf(' ') + 1) }))
      .filter((p) => !p.cmd.includes(' up --data-dir') && !p.cmd.startsWith('pgrep'));
  }

  /** Stops this Butter's wireguard-go (it outlives `butter up`, like QEMU). */
  removeMesh(): Promise<void> {
    return stopWireguardGo([{ ns: this.ns, iface: this.wg }]);
  }

  async cleanup(): Promise<void> {
    await this.kill();
    for (const p of this.processes()) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.removeMesh();
    removeGatewayNamespaces(join(this.dataDir, 'agent'));
    run('ip', ['netns', 'del', this.ns], true);
    rmSync(dnsmasqDirPath(join(this.dataDir, 'agent')), { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The gateway namespaces an agent made (they outlive it, like its VMs would). */
export function removeGatewayNamespaces(stateDir: string): void {
  const prefix = netnsPrefixOf(stateDir);
  const names = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : [];
  for (const name of names) run('ip', ['netns', 'del', name], true);
}

function run(cmd: string, args: string[], allowFail = false): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

export function readPid(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}
