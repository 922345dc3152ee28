/**
 * Several machines on one box: a control plane and N agents, each in its own network
 * namespace, joined by an underlay bridge that lives in a namespace of its own (a switch).
 * Every address is inside our namespaces; guests have no uplink. `cleanup()` removes it all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dnsmasqDirPath } from '../../src/daemon/agent-runtime.ts';
import { BUTTER, removeGatewayNamespaces, type CliResult } from './butter-cli.ts';
import { stopWireguardGo } from './wireguard-go.ts';

function sh(cmd: string, args: string[], allowFail = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export class NamespaceCluster {
  readonly id = randomBytes(2).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), 'butter-cluster-'));
  readonly switchNs = `bt-sw-${this.id}`;
  readonly cpNs = `bt-cp-${this.id}`;
  readonly cpIp = '10.251.0.1';
  readonly url = `https://${this.cpIp}:7700`;
  private server: ChildProcess | undefined;
  private readonly agents = new Map<string, ChildProcess>();
  private readonly namespaces: string[] = [];
  private hostCount = 0;
  /** VPN client namespaces (see `addLaptop`). */
  private readonly laptops: { ns: string; iface: string }[] = [];
  private lanHosts = 0;
  /** /etc/netns did not exist before the first laptop: removed again at the end (when empty). */
  private madeEtcNetns = false;
  log = '';

  constructor() {
    this.netns(this.switchNs);
    sh('ip', ['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
    this.plug(this.cpNs, this.cpIp);
  }

  private netns(name: string): void {
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** A namespace with a veth into the switch, addressed `ip/24`. */
  private plug(ns: string, ip: string): void {
    this.netns(ns);
    const n = this.hostCount++;
    const a = `bt${this.id}h${n}`;
    const b = `bt${this.id}s${n}`;
    sh('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    sh('ip', ['link', 'set', a, 'netns', ns, 'name', 'eth0']);
    sh('ip', ['link', 'set', b, 'netns', this.switchNs]);
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', this.switchNs, 'link', 'set', b, 'master', 'br0']);
    sh('ip', ['-n', this.switchNs, 'link', 'set', b, 'up']);
  }

  get cpData(): string {
    return join(this.dir, 'cp');
  }

  private spawnLogged(ns: string, args: string[], tag: string): ChildProcess {
    // nsenter, not `ip netns exec`: an agent's gateway namespaces must be mounted where all see them.
    const child = spawn('nsenter', [`--net=/run/netns/${ns}`, BUTTER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BUTTER_URL: '', BUTTER_TOKEN: '' } });
    const add = (d: Buffer) => (this.log += d.toString().split('\n').filter(Boolean).map((l) => `[${tag}] ${l}\n`).join(''));
    child.stdout!.on('data', add);
    child.stderr!.on('data', add);
    return child;
  }

  async startServer(): Promise<void> {
    this.server = this.spawnLogged(this.cpNs, ['server', '--data-dir', this.cpData, '--listen', `${this.cpIp}:7700`], 'server');
    // The log is read from a pipe, which the event loop drains between the polls below.
    await this.until('the control plane', () => /CA sha256:/.test(this.log) && this.cli(['node', 'list']).code === 0, 30_000);
  }

  get caHash(): string {
    const m = /CA (sha256:[0-9a-f]{64})/.exec(this.log);
    if (!m) throw new Error(`no CA hash in the server log:\n${this.log}`);
    return m[1]!;
  }

  /** The CLI as the admin, from the control plane's namespace; `input` is its standard input. */
  cli(args: string[], input?: string): CliResult {
    const r = spawnSync('ip', ['netns', 'exec', this.cpNs, BUTTER, ...args], { encoding: 'utf8', input, timeout: 300_000, env: this.cliEnv() });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** The CLI as `cli` runs it, without blocking: the test can watch the cluster while it runs. */
  cliAsync(args: string[]): Promise<CliResult> {
    const child = spawn('ip', ['netns', 'exec', this.cpNs, BUTTER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: this.cliEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) => child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  }

  private cliEnv(): NodeJS.ProcessEnv {
    let token = '';
    try {
      token = readFileSync(join(this.cpData, 'admin.token'), 'utf8').trim();
    } catch {
      // not written yet: the server is still starting
    }
    return { ...process.env, XDG_CONFIG_HOME: join(this.dir, 'cfg'), BUTTER_URL: this.url, BUTTER_TOKEN: token, BUTTER_CA: join(this.cpData, 'tls', 'ca.crt') };
  }

  json<T>(args: string[]): T {
    const r = this.cli([...args, '--json']);
    if (r.code !== 0) throw new Error(`butter ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Adds a machine and joins it with a fresh join token for `zone`. */
  async addNode(name: string, zone: string): Promise<void> {
    const ns = `bt-${name}-${this.id}`;
    this.plug(ns, `10.251.0.${10 + this.hostCount}`);
    const t = this.json<{ token: string }>(['node', 'token', 'create', '--zone', zone, '--ttl', '10m']);
    this.startAgent(name, ['--join', this.url, '--token', t.token, '--ca-hash', this.caHash, '--name', name]);
    await this.until(`${name} ready`, () => this.json<{ name: string; state: string }[]>(['node', 'list']).some((n) => n.name === name && n.state === 'ready'), 30_000);
  }

  /**
   * A machine on the underlay that is not a node: a laptop bringing up a wg-quick file as
   * printed by `network join`, with wireguard-go (no kernel module here). Its `DNS =` line
   * needs resolvconf, which a test machine lacks: the namespace's own resolv.conf (bind-mounted
   * by `ip netns exec`) names the same server instead.
   */
  addLaptop(config: string): { ns: string; iface: string; run: (cmd: string, args: string[]) => CliResult } {
    const n = this.laptops.length;
    const ns = `bt-laptop${n}-${this.id}`;
    const iface = `bl${this.id}${n}`;
    this.plug(ns, `10.251.0.${200 + n}`);
    this.laptops.push({ ns, iface });
    const dns = /^DNS = (.+)$/m.exec(config)?.[1];
    if (!dns) throw new Error(`no DNS line in\n${config}`);
    // `ip netns exec` reads the namespace's resolv.conf from here; /etc/netns itself goes too if we made it.
    if (!existsSync('/etc/netns')) this.madeEtcNetns = true;
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/resolv.conf`, `nameserver ${dns}\n`);
    const file = join(this.dir, `${iface}.conf`);
    writeFileSync(file, config.replace(/^DNS = .*\n/m, ''), { mode: 0o600 });
    const up = spawnSync('ip', ['netns', 'exec', ns, 'wg-quick', 'up', file], {
      encoding: 'utf8',
      env: { ...process.env, WG_QUICK_USERSPACE_IMPLEMENTATION: 'wireguard-go', WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
    });
    if (up.status !== 0) throw new Error(`wg-quick up: ${up.stderr}`);
    const run = (cmd: string, args: string[]): CliResult => {
      const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    return { ns, iface, run };
  }

  /**
   * A machine on the underlay that is nothing of Butter's: another host of the LAN, such as
   * an attacker who can send the nodes anything over UDP.
   */
  addLanHost(): { ns: string; run: (cmd: string, args: string[]) => CliResult } {
    const ns = `bt-lan${this.lanHosts}-${this.id}`;
    this.plug(ns, `10.251.0.${230 + this.lanHosts++}`);
    const run = (cmd: string, args: string[]): CliResult => {
      const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    return { ns, run };
  }

  /** Runs a command inside a node's namespace. */
  inNode(name: string, cmd: string, args: string[]): CliResult {
    const r = spawnSync('ip', ['netns', 'exec', this.nsOf(name), cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  nsOf(name: string): string {
    return `bt-${name}-${this.id}`;
  }

  stateDir(name: string): string {
    return join(this.dir, 'agents', name);
  }

  /** Starts (or restarts: the saved credential is used, no token needed) a node's agent. */
  startAgent(name: string, extra: string[] = []): void {
    this.agents.set(name, this.spawnLogged(this.nsOf(name), ['agent', '--state-dir', this.stateDir(name), '--no-egress', '--wg-interface', this.wgOf(name), ...extra], name));
  }

  /** Each node's mesh interface: unique, as wireguard-go's control sockets are shared by all namespaces. */
  wgOf(name: string): string {
    return `bw${this.id}${name.replace(/[^a-z0-9]/g, '').slice(-6)}`;
  }

  async killAgent(name: string): Promise<void> {
    const a = this.agents.get(name);
    if (!a || a.exitCode !== null || a.signalCode !== null) return;
    const gone = new Promise((r) => a.once('exit', r));
    a.kill('SIGKILL');
    await gone;
  }

  /** QEMU processes of a node's agent. */
  qemus(name: string): number[] {
    return sh('pgrep', ['-f', `qemu-system.*${this.stateDir(name)}/`], true).split('\n').filter(Boolean).map(Number);
  }

  async until(what: string, ok: () => boolean, ms: number): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      let good = false;
      try {
        good = ok();
      } catch {
        good = false;
      }
      if (good) return Date.now() - t0;
      if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${this.log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async cleanup(): Promise<void> {
    for (const name of this.agents.keys()) await this.killAgent(name);
    this.server?.kill('SIGKILL');
    for (const pattern of [this.dir, ...[...this.agents.keys()].map((n) => dnsmasqDirPath(this.stateDir(n)))]) sh('pkill', ['-9', '-f', pattern], true);
    await stopWireguardGo([...[...this.agents.keys()].map((n) => ({ ns: this.nsOf(n), iface: this.wgOf(n) })), ...this.laptops]);
    for (const { ns } of this.laptops) rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    if (this.madeEtcNetns) sh('rmdir', ['/etc/netns'], true);
    for (const n of this.agents.keys()) removeGatewayNamespaces(this.stateDir(n));
    for (const n of this.agents.keys()) rmSync(dnsmasqDirPath(this.stateDir(n)), { recursive: true, force: true });
    for (const ns of this.namespaces.reverse()) sh('ip', ['netns', 'del', ns], true);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
