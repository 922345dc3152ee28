/**
 * Each network's gateway namespace (see core/gateway-ns.ts): `gw0` on the bridge with the
 * gateway's address and MAC and the metadata address, `up0` linked to the host, its own
 * ruleset, and the host's route back for metadata answers.
 */
import { METADATA_ADDR, type LocalNetwork } from '../network.ts';
import type { PolicyRouting } from '../linux-routing.ts';
import type { Reverter } from '../reverter.ts';
import { gatewayMac } from '../../../core/network-macs.ts';
import { GATEWAY_IF, UPLINK_IF } from '../../../core/gateway-ns.ts';
import { enslave } from './bridge.ts';
import { ip, madeLink, marking, readLinks, type HostCtx, type Link, type Links } from './links.ts';

export class GatewayNamespaces {
  /** The ruleset text last loaded per namespace, so an unchanged one is not reloaded. */
  private readonly lastNft = new Map<string, string>();

  constructor(
    private readonly ctx: HostCtx,
    private readonly routing: PolicyRouting,
    /** Namespaces are named this plus the network's name; unique per agent (namespace names are host-wide). */
    readonly netnsPrefix: string,
  ) {}

  netnsOf(network: string): string {
    return `${this.netnsPrefix}${network}`;
  }

  /** The namespace is gone (deleted, or about to be): its ruleset must be loaded again if it comes back. */
  forget(ns?: string): void {
    if (ns === undefined) this.lastNft.clear();
    else this.lastNft.delete(ns);
  }

  /**
   * Makes the namespace match `net`, with `nsNft` as its ruleset. Returns whether it was
   * created (a running dnsmasq would be bound to interfaces that are gone).
   */
  async ensure(net: LocalNetwork, nsNft: string, links: Links, namespaces: Set<string>, rev: Reverter): Promise<boolean> {
    const ctx = this.ctx;
    const ns = this.netnsOf(net.name);
    const created = !namespaces.has(ns);
    if (created) {
      await ip(ctx, 'netns', 'add', ns);
      rev.add(() => ip(ctx, 'netns', 'del', ns));
      namespaces.add(ns);
      this.lastNft.delete(ns);
      // Its lo carries our mark: that is how garbage collection knows the namespace is ours.
      await ip(ctx, '-n', ns, 'link', 'set', 'lo', 'alias', ctx.mark, 'up');
      // Metadata is forwarded from gw0 to up0, egress too.
      await ctx.exec.run('ip', ['netns', 'exec', ns, 'sysctl', '-w', 'net.ipv4.ip_forward=1']);
      ctx.log(`created gateway namespace ${ns} for network ${net.name}`);
    }
    const inside = await readLinks(ctx.exec, ns);
    if (!created && inside.get('lo')?.alias !== ctx.mark) await ip(ctx, '-n', ns, 'link', 'set', 'lo', 'alias', ctx.mark);
    const prefix = net.cidr.split('/')[1]!;

    // gw0: a veth whose host end is a bridge port.
    const port = await this.ensureVeth(net.gatewayPort, GATEWAY_IF, ns, links, inside, rev);
    await enslave(ctx, net.gatewayPort, port, net, true);
    // dnsmasq binds by address label: the metadata address gets its own, so dnsmasq
    // (interface=gw0) binds only the gateway.
    await this.ensureInside(ns, GATEWAY_IF, inside.get(GATEWAY_IF)!, { mac: gatewayMac(net.name), mtu: net.mtu, addrs: new Map([[`${net.gateway}/${prefix}`, GATEWAY_IF], [`${METADATA_ADDR}/32`, `${GATEWAY_IF}:m`]]) });

    // up0: a veth to the host, a /30 from UPLINK_CIDR.
    const u = net.uplink;
    const uplink = await this.ensureVeth(u.device, UPLINK_IF, ns, links, inside, rev);
    const rootAddr = `${u.root}/30`;
    for (const have of uplink.addrs.keys()) if (have !== rootAddr) await ip(ctx, 'addr', 'del', have, 'dev', u.device);
    if (!uplink.addrs.has(rootAddr)) await ip(ctx, 'addr', 'add', rootAddr, 'dev', u.device);
    const uplinkChanges = [...marking(ctx, uplink), ...(uplink.up ? [] : ['up'])];
    if (uplinkChanges.length > 0) await ip(ctx, 'link', 'set', 'dev', u.device, ...uplinkChanges);
    await this.ensureInside(ns, UPLINK_IF, inside.get(UPLINK_IF)!, { addrs: new Map([[`${u.ns}/30`, UPLINK_IF]]) });
    const routes = (await ctx.exec.run('ip', ['-n', ns, '-j', 'route', 'show', 'default'])).stdout.trim();
    if (!((routes ? JSON.parse(routes) : []) as { gateway?: string }[]).some((r) => r.gateway === u.root)) {
      await ip(ctx, '-n', ns, 'route', 'replace', 'default', 'via', u.root, 'dev', UPLINK_IF);
    }
    // The host's answers to the network's guests (metadata) go back up the link.
    await this.routing.ensureTable(u.table, new Map([[`unicast default ${u.device}`, ['default', 'via', u.ns, 'dev', u.device]]]));

    if (this.lastNft.get(ns) !== nsNft) {
      await ctx.exec.run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: nsNft });
      this.lastNft.set(ns, nsNft);
    }
    return created;
  }

  /**
   * A veth pair from the host (`hostEnd`) into the namespace (`nsEnd`), made if missing, or
   * made again if one end is gone or is not a veth. Returns the host end; both ends are in
   * `links`/`inside` afterwards.
   */
  private async ensureVeth(hostEnd: string, nsEnd: string, ns: string, links: Links, inside: Links, rev: Reverter): Promise<Link> {
    const have = links.get(hostEnd);
    if (have && have.kind === 'veth' && inside.has(nsEnd)) return have;
    if (have) {
      await ip(this.ctx, 'link', 'del', hostEnd);
      links.delete(hostEnd);
    }
    await ip(this.ctx, 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd, 'netns', ns);
    rev.add(() => ip(this.ctx, 'link', 'del', hostEnd));
    const made = madeLink('veth');
    links.set(hostEnd, made);
    inside.set(nsEnd, madeLink('veth'));
    return made;
  }

  /** An interface inside a gateway namespace: its MAC, MTU and addresses (label → address), up. */
  private async ensureInside(ns: string, name: string, link: Link, want: { mac?: string; mtu?: number; addrs: Map<string, string> }): Promise<void> {
    const changes: string[] = [];
    if (want.mac && link.mac !== want.mac) changes.push('address', want.mac);
    if (want.mtu && link.mtu !== want.mtu) changes.push('mtu', String(want.mtu));
    if (changes.length > 0) await ip(this.ctx, '-n', ns, 'link', 'set', 'dev', name, ...changes);
    for (const [addr, label] of link.addrs) {
      if (want.addrs.get(addr) !== label) await ip(this.ctx, '-n', ns, 'addr', 'del', addr, 'dev', name);
    }
    for (const [addr, label] of want.addrs) {
      if (link.addrs.get(addr) !== label) await ip(this.ctx, '-n', ns, 'addr', 'add', addr, 'dev', name, 'label', label);
    }
    if (!link.up) await ip(this.ctx, '-n', ns, 'link', 'set', 'dev', name, 'up');
  }
}
