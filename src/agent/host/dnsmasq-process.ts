/**
 * One dnsmasq per network, run in the network's gateway namespace: its files under
 * `<stateDir>/net/<network>/` (readable by dnsmasq's unprivileged user), started, reloaded
 * (SIGHUP, for reservations and names) or restarted (config, or a new namespace) as what it
 * should serve changes. Processes are found by pidfile and checked in /proc (pids are reused).
 */
import { access, chmod, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { staleLeases, type DhcpReservation, type DnsmasqPaths } from '../../core/dnsmasq-config.ts';
import { GATEWAY_IF } from '../../core/gateway-ns.ts';
import type { Exec } from './exec.ts';
import type { Reverter } from './reverter.ts';

export interface DnsmasqFiles extends DnsmasqPaths {
  dir: string;
  confFile: string;
}

/** What one network's dnsmasq should serve, rendered (core/dnsmasq-config.ts). */
export interface DnsmasqWanted {
  network: string;
  /** Its gateway namespace. */
  netns: string;
  conf: string;
  hosts: string;
  names: string;
  /** The network's reservations here: leases of anything else are released. */
  ports: readonly DhcpReservation[];
}

export interface DnsmasqProcessesOptions {
  exec: Exec;
  /** Absolute: the paths end up in dnsmasq's config, which it reads from its own cwd. */
  stateDir: string;
  procDir: string;
  bin: string;
  log: (m: string) => void;
}

export class DnsmasqProcesses {
  constructor(private readonly o: DnsmasqProcessesOptions) {}

  filesOf(network: string): DnsmasqFiles {
    const dir = join(this.o.stateDir, 'net', network);
    return {
      dir,
      confFile: join(dir, 'dnsmasq.conf'),
      hostsFile: join(dir, 'hosts'),
      namesFile: join(dir, 'names'),
      leaseFile: join(dir, 'leases'),
      pidFile: join(dir, 'dnsmasq.pid'),
      logFile: join(dir, 'dnsmasq.log'),
    };
  }

  /** `restart`: its namespace is new, so a running dnsmasq's sockets belong to the old one. */
  async ensure(w: DnsmasqWanted, restart: boolean, rev: Reverter): Promise<void> {
    const f = this.filesOf(w.network);
    const dirIsNew = !(await exists(f.dir));
    await mkdir(f.dir, { recursive: true });
    // dnsmasq drops to an unprivileged user and rereads the hosts file as that user on SIGHUP:
    // the one place Butter's files are readable by others on purpose (they hold the network's
    // names, addresses and MACs, which its guests see anyway). Explicit modes: the agent runs
    // with umask 077 (daemon/private-files.ts), which would make them root's alone.
    for (const d of [this.o.stateDir, join(this.o.stateDir, 'net'), f.dir]) await chmod(d, 0o755);
    if (dirIsNew) rev.add(() => rm(f.dir, { recursive: true, force: true }));
    // Both files, then the test: `||` would skip writing the second.
    const dhcpChanged = await writeIfChanged(f.hostsFile, w.hosts);
    const namesChanged = await writeIfChanged(f.namesFile, w.names);
    const hostsChanged = dhcpChanged || namesChanged;
    const confChanged = await writeIfChanged(f.confFile, w.conf);

    const pid = await this.pidOf(f);
    // In the network's gateway namespace: its sockets see only that network.
    const start = () => this.o.exec.run('ip', ['netns', 'exec', w.netns, this.o.bin, `--conf-file=${f.confFile}`]);
    if (pid === undefined) {
      await start();
      rev.add(() => this.stop(f));
      this.o.log(`started dnsmasq for network ${w.network}`);
    } else if (confChanged || restart) {
      await this.stop(f);
      await start();
      this.o.log(`restarted dnsmasq for network ${w.network} (${confChanged ? 'config changed' : 'gateway recreated'})`);
    } else if (hostsChanged) {
      // dnsmasq rereads dhcp-hostsfile and addn-hosts on SIGHUP: no restart, leases kept.
      await this.o.exec.run('kill', ['-HUP', String(pid)]);
      this.o.log(`reloaded dnsmasq reservations for network ${w.network}`);
      // ...but a lease of a VM that is gone would keep its address from the next VM given it.
      for (const l of staleLeases((await readOr(f.leaseFile)) ?? '', w.ports)) {
        await this.o.exec.run('ip', ['netns', 'exec', w.netns, 'dhcp_release', GATEWAY_IF, l.ip, l.mac], { allowFail: true });
        this.o.log(`released the lease of ${l.ip} held by ${l.mac}`);
      }
    }
  }

  /** Networks we have state for (each may have a running dnsmasq). */
  async known(): Promise<string[]> {
    try {
      return await readdir(join(this.o.stateDir, 'net'));
    } catch {
      return [];
    }
  }

  /** Stops a network's dnsmasq and forgets its files. */
  async remove(network: string): Promise<void> {
    await this.stop(this.filesOf(network));
    await rm(join(this.o.stateDir, 'net', network), { recursive: true, force: true });
    this.o.log(`removed dnsmasq of network ${network}`);
  }

  /** Every one of them, and all their files. */
  async removeAll(): Promise<void> {
    for (const network of await this.known()) await this.stop(this.filesOf(network));
    await rm(join(this.o.stateDir, 'net'), { recursive: true, force: true });
  }

  /** The pid of the dnsmasq serving these files, if it is alive (and really it: pids are reused). */
  private async pidOf(f: DnsmasqFiles): Promise<number | undefined> {
    const text = await readOr(f.pidFile);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = (await readOr(join(this.o.procDir, String(pid), 'cmdline'))) ?? '';
    // A zombie has an empty cmdline, so it counts as gone.
    return cmdline.split('\0').includes(`--conf-file=${f.confFile}`) ? pid : undefined;
  }

  /** Whether the process is still there and not yet a zombie (state Z) or dead (X). */
  private async exiting(pid: number): Promise<boolean> {
    const stat = await readOr(join(this.o.procDir, String(pid), 'stat'));
    if (stat === undefined) return false;
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  }

  /** SIGTERM, then wait (its sockets must be free before a restart), then SIGKILL. */
  private async stop(f: DnsmasqFiles): Promise<void> {
    const pid = await this.pidOf(f);
    if (pid !== undefined) {
      await this.o.exec.run('kill', ['-TERM', String(pid)], { allowFail: true });
      for (let i = 0; i < 100 && (await this.pidOf(f)) !== undefined; i++) await sleep(50);
      if ((await this.pidOf(f)) !== undefined) {
        await this.o.exec.run('kill', ['-KILL', String(pid)], { allowFail: true });
      }
      // Its command line empties before its sockets close (the kernel drops memory before files):
      // a restart must wait for the zombie (or nothing), or the new one cannot bind.
      for (let i = 0; i < 100 && (await this.exiting(pid)); i++) await sleep(20);
    }
    await rm(f.pidFile, { force: true });
  }
}

/** Writes atomically (dnsmasq may read it at any moment); returns whether the content changed. */
async function writeIfChanged(path: string, text: string): Promise<boolean> {
  if ((await readOr(path)) === text) return false;
  const tmp = `${path}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await chmod(tmp, 0o644); // writeFile's mode is filtered by the umask
  await rename(tmp, path);
  return true;
}

async function readOr(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
