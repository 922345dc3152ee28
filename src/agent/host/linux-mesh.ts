/**
 * `MeshHost` on Linux: a WireGuard interface with the node's key, its mesh address and one
 * peer per other node. Kernel WireGuard when the module loads, `wireguard-go` otherwise (it
 * runs as its own daemon, so it outlives agent restarts like QEMU does, and exits when its
 * interface is deleted).
 *
 * Peers are set with `wg syncconf`, which only changes what differs: established sessions
 * with unchanged peers carry on while others come and go.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DesiredMesh } from '../../api/schemas/desired.ts';
import { renderWgConf, type MeshClient } from '../../core/wireguard-config.ts';
import type { WireguardKey } from '../../core/wireguard-keys.ts';
import type { Exec } from './exec.ts';
import type { MeshHost } from './mesh.ts';

export interface LinuxMeshHostOptions {
  exec: Exec;
  stateDir: string;
  key: WireguardKey;
  /** Interface name (<= 15 chars). wireguard-go's control socket is /var/run/wireguard/NAME.sock, shared by all namespaces. */
  iface: string;
  listenPort: number;
  /**
   * The alias set on the interface (`butter-mesh:<agent>`): how `butter down` tells it is ours.
   * Not the network host's mark: garbage collection deletes marked `bt*` links it did not ask for.
   */
  mark?: string;
  log?: (m: string) => void;
}

export class LinuxMeshHost implements MeshHost {
  private lastConf?: string;
  private lastLink?: string;
  private marked = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: LinuxMeshHostOptions) {
    if (!/^[A-Za-z0-9_-]{1,15}$/.test(o.iface)) throw new Error(`bad WireGuard interface name ${JSON.stringify(o.iface)}`);
  }

  apply(mesh: DesiredMesh, clients: readonly MeshClient[] = []): Promise<void> {
    return this.serialize(() => this.doApply(mesh, clients));
  }

  async peerKeys(): Promise<ReadonlySet<string>> {
    const r = await this.o.exec.run('wg', ['show', this.o.iface, 'peers'], { allowFail: true });
    return new Set(r.code === 0 ? r.stdout.split('\n').filter(Boolean) : []);
  }

  teardown(): Promise<void> {
    return this.serialize(async () => {
      await this.o.exec.run('ip', ['link', 'del', this.o.iface], { allowFail: true });
      await rm(this.confFile(), { force: true });
      this.lastConf = this.lastLink = undefined;
      this.marked = false;
    });
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  private confFile(): string {
    return join(this.o.stateDir, 'wireguard', `${this.o.iface}.conf`);
  }

  private async doApply(mesh: DesiredMesh, clients: readonly MeshClient[]): Promise<void> {
    // Rendered first: a bad peer list changes nothing on the host.
    const conf = renderWgConf({ privateKey: this.o.key.privateKey, listenPort: this.o.listenPort, peers: mesh.peers, clients });
    const created = await this.ensureInterface();
    if (created) {
      this.lastConf = this.lastLink = undefined;
      this.marked = false;
    }
    if (!this.marked) await this.mark(created);
    if (conf !== this.lastConf) {
      await mkdir(join(this.o.stateDir, 'wireguard'), { recursive: true, mode: 0o700 });
      await chmod(join(this.o.stateDir, 'wireguard'), 0o700);
      // Holds the private key: 0600, read by wg only.
      await writeFile(this.confFile(), conf, { mode: 0o600 });
      await chmod(this.confFile(), 0o600); // the mode applies only to a new file
      await this.o.exec.run('wg', ['syncconf', this.o.iface, this.confFile()]);
      this.lastConf = conf;
    }
    const link = `${mesh.address}/${mesh.prefix} mtu ${mesh.mtu}`;
    if (link !== this.lastLink) {
      await this.o.exec.run('ip', ['addr', 'replace', `${mesh.address}/${mesh.prefix}`, 'dev', this.o.iface]);
      await this.o.exec.run('ip', ['link', 'set', this.o.iface, 'mtu', String(mesh.mtu), 'up']);
      this.lastLink = link;
    }
  }

  /**
   * Marks the interface: one just made, or one from before marks (no alias yet: the agent
   * configures it with its key either way). One with another alias is not ours to mark.
   */
  private async mark(created: boolean): Promise<void> {
    const { mark, iface } = this.o;
    if (!mark) return;
    if (!created) {
      const shown = JSON.parse((await this.o.exec.run('ip', ['-j', 'link', 'show', iface])).stdout || '[]') as { ifalias?: string }[];
      const alias = shown[0]?.ifalias;
      if (alias !== undefined && alias !== mark) {
        this.o.log?.(`left ${iface} unmarked: it carries the alias ${JSON.stringify(alias)}, so butter down will not delete it`);
      }
      if (alias !== undefined) {
        this.marked = true;
        return;
      }
    }
    await this.o.exec.run('ip', ['link', 'set', iface, 'alias', mark]);
    this.marked = true;
  }

  /** True when it had to create the interface. */
  private async ensureInterface(): Promise<boolean> {
    const { iface } = this.o;
    if ((await this.o.exec.run('ip', ['link', 'show', iface], { allowFail: true })).code === 0) return false;
    const kernel = await this.o.exec.run('ip', ['link', 'add', iface, 'type', 'wireguard'], { allowFail: true });
    if (kernel.code === 0) return true;
    this.o.log?.(`no kernel WireGuard (${kernel.stderr.trim()}); starting wireguard-go for ${iface}`);
    // It daemonizes once the interface exists; the variable acknowledges that it is the
    // userspace implementation (it refuses to start on Linux otherwise).
    await this.o.exec.run('wireguard-go', [iface], { env: { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' } });
    for (let i = 0; i < 50; i++) {
      if ((await this.o.exec.run('ip', ['link', 'show', iface], { allowFail: true })).code === 0) return true;
      await sleep(100);
    }
    throw new Error(`wireguard-go started but ${iface} did not appear`);
  }
}
