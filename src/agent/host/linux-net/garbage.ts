/**
 * Garbage collection and teardown: deletes only what is named like ours AND carries our mark
 * (see linux-network.ts), and says once of anything else named like ours that it is left alone.
 */
import type { LocalNetwork } from '../network.ts';
import { rulesOf, type PolicyRouting } from '../linux-routing.ts';
import type { DnsmasqProcesses } from '../dnsmasq-process.ts';
import type { GatewayNamespaces } from './gateway.ts';
import type { HostFirewall } from './firewall.ts';
import { ip, readLinks, readNamespaces, type HostCtx, type Links } from './links.ts';

export class Garbage {
  /** Links and namespaces named like ours but not marked: said once that they are left alone. */
  private readonly leftAlone = new Set<string>();

  constructor(
    private readonly ctx: HostCtx,
    private readonly gateways: GatewayNamespaces,
    private readonly dnsmasq: DnsmasqProcesses,
    private readonly routing: PolicyRouting,
    private readonly firewall: HostFirewall,
  ) {}

  /**
   * Removes what belongs to no network in `networks`. `standing`: the networks that exist after
   * this apply (not rolled back); only theirs get routing rules.
   */
  async collect(networks: readonly LocalNetwork[], links: Links, namespaces: Set<string>, standing: readonly LocalNetwork[]): Promise<void> {
    const names = new Set(networks.map((n) => n.name));
    for (const name of await this.dnsmasq.known()) if (!names.has(name)) await this.dnsmasq.remove(name);
    const nsWanted = new Set(networks.map((n) => this.gateways.netnsOf(n.name)));
    for (const ns of namespaces) {
      if (!ns.startsWith(this.gateways.netnsPrefix) || nsWanted.has(ns) || !(await this.ourNamespace(ns))) continue;
      // Its interfaces go with it, and their host ends (veth pairs) with them.
      await ip(this.ctx, 'netns', 'del', ns);
      namespaces.delete(ns);
      this.gateways.forget(ns);
      this.ctx.log(`deleted gateway namespace ${ns}`);
    }
    const keep = new Set(
      networks.flatMap((n) => [n.bridge, n.gatewayPort, n.uplink.device, ...n.ports.map((p) => p.tap), ...(n.overlay ? [n.overlay.device] : []), ...(n.vpn ? [n.vpn.router, n.vpn.port] : [])]),
    );
    // Host ends of a deleted namespace's veths went with it: deleting them again may fail (see deleteOurLinks).
    await this.deleteOurLinks(links, (name) => !keep.has(name));
    await this.routing.collectRules(standing.flatMap((n) => rulesOf(n)));
  }

  /** Everything of ours: dnsmasq, gateway namespaces, interfaces, policy rules, nft tables. */
  async teardown(): Promise<void> {
    await this.dnsmasq.removeAll();
    for (const ns of await readNamespaces(this.ctx.exec)) {
      if (ns.startsWith(this.gateways.netnsPrefix) && (await this.ourNamespace(ns))) await ip(this.ctx, 'netns', 'del', ns);
    }
    this.gateways.forget();
    await this.deleteOurLinks(await readLinks(this.ctx.exec), () => true);
    await this.routing.collectRules([]);
    await this.firewall.remove();
  }

  /** Taps and VXLAN ports before bridges: a bridge goes only once nothing of ours hangs off it. */
  private async deleteOurLinks(links: Links, unwanted: (name: string) => boolean): Promise<void> {
    for (const kind of ['tun', 'vxlan', 'veth', 'bridge']) {
      for (const [name, link] of links) {
        if (link.kind !== kind || !name.startsWith(this.ctx.prefix) || !unwanted(name)) continue;
        if (link.alias !== this.ctx.mark) {
          this.leaveAlone(`${kind === 'tun' ? 'tap' : kind} ${name}`);
          continue;
        }
        // A veth goes with its peer: the second end of a pair is already gone.
        await this.ctx.exec.run('ip', ['link', 'del', name], { allowFail: kind === 'veth' });
        links.delete(name);
        this.ctx.log(`deleted ${kind === 'tun' ? 'tap' : kind} ${name}`);
      }
    }
  }

  /** A namespace named like ours is ours when its lo carries our mark (see GatewayNamespaces.ensure). */
  private async ourNamespace(ns: string): Promise<boolean> {
    if ((await readLinks(this.ctx.exec, ns)).get('lo')?.alias === this.ctx.mark) return true;
    this.leaveAlone(`namespace ${ns}`);
    return false;
  }

  private leaveAlone(what: string): void {
    if (this.leftAlone.has(what)) return;
    this.leftAlone.add(what);
    this.ctx.log(`left ${what} alone: named like Butter's but not marked ${this.ctx.mark}, so not made by this agent (delete it by hand if it is a leftover)`);
  }
}
