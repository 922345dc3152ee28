/**
 * A network's VPN router (see `LocalVpn`): a veth pair on the bridge, its host end with the
 * router's MAC and address, proxy ARP for the peers, and a routing table that sends the
 * network to the router end and each peer into the mesh interface (nothing else: a
 * blackhole default, so neither side reaches beyond the other).
 */
import type { LocalNetwork, LocalVpn } from '../network.ts';
import type { PolicyRouting } from '../linux-routing.ts';
import type { Reverter } from '../reverter.ts';
import { enslave } from './bridge.ts';
import { ip, madeLink, marking, type HostCtx, type Links } from './links.ts';

export async function ensureVpnRouter(ctx: HostCtx, routing: PolicyRouting, net: LocalNetwork, v: LocalVpn, links: Links, rev: Reverter): Promise<void> {
  let router = links.get(v.router);
  if (router && router.kind !== 'veth') throw new Error(`${v.router} exists and is a ${router.kind ?? 'plain'} interface, not our veth`);
  if (!router) {
    await ip(ctx, 'link', 'add', v.router, 'type', 'veth', 'peer', 'name', v.port);
    rev.add(() => ip(ctx, 'link', 'del', v.router));
    // proxy_arp: answer for the peers (their route leaves by another interface).
    // arp_ignore=1: never for the host's other addresses (the gateway!) on this port.
    // rp_filter=0: the VMs' addresses route via the bridge, not this end.
    for (const [key, value] of [['proxy_arp', '1'], ['arp_ignore', '1'], ['rp_filter', '0']]) {
      await ctx.exec.run('sysctl', ['-w', `net.ipv4.conf.${v.router}.${key}=${value}`]);
    }
    ctx.log(`created VPN router ${v.router} on ${net.bridge}`);
    router = madeLink('veth');
    links.set(v.router, router);
    links.set(v.port, madeLink('veth'));
  }
  if (router.mac !== v.mac || router.mtu !== net.mtu || !router.up || router.alias !== ctx.mark) {
    await ip(ctx, 'link', 'set', 'dev', v.router, ...marking(ctx, router), 'address', v.mac, 'mtu', String(net.mtu), 'up');
  }
  await enslave(ctx, v.port, links.get(v.port)!, net, true);
  const prefix = net.cidr.split('/')[1]!;
  const addr = `${v.address}/${prefix}`;
  for (const have of router.addrs.keys()) if (have !== addr) await ip(ctx, 'addr', 'del', have, 'dev', v.router);
  // No prefix route: the network's route in the main table stays the bridge's.
  if (!router.addrs.has(addr)) await ip(ctx, 'addr', 'add', addr, 'dev', v.router, 'noprefixroute');

  await routing.ensureTable(
    v.table,
    new Map<string, string[]>([
      [`unicast ${net.cidr} ${v.router}`, [net.cidr, 'dev', v.router, 'src', v.address]],
      ['blackhole default ', ['blackhole', 'default']],
      ...v.peers.map((p): [string, string[]] => [`unicast ${p} ${v.mesh}`, [`${p}/32`, 'dev', v.mesh]]),
    ]),
  );
}
