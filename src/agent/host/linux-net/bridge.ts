/** A network's bridge and its ports (the VMs' taps and any other interface enslaved to it). */
import type { LocalNetwork, LocalPort } from '../network.ts';
import type { Reverter } from '../reverter.ts';
import { bridgeMac } from '../../../core/network-macs.ts';
import { ip, marking, type HostCtx, type Link, type Links } from './links.ts';

/**
 * The network's bridge: the VMs' taps, the VXLAN port and the gateway namespace's port. It
 * has no address: the host takes no part in the network (the namespace does).
 */
export async function ensureBridge(ctx: HostCtx, net: LocalNetwork, links: Links, rev: Reverter): Promise<void> {
  const br = net.bridge;
  // A fixed MAC, and not the gateway's: frames for the gateway must go on to its port, not
  // up into the host; and taps coming and going would otherwise change it.
  const mac = bridgeMac(net.name);
  let link = links.get(br);
  if (!link) {
    await ip(ctx, 'link', 'add', 'name', br, 'address', mac, 'mtu', String(net.mtu), 'type', 'bridge');
    rev.add(() => ip(ctx, 'link', 'del', br));
    ctx.log(`created bridge ${br} for network ${net.name}`);
    link = { kind: 'bridge', mtu: net.mtu, up: false, mac, addrs: new Map() };
    links.set(br, link);
  } else if (link.kind !== 'bridge') {
    throw new Error(`${br} exists and is a ${link.kind ?? 'plain'} interface, not a bridge`);
  }
  if (link.mtu !== net.mtu) await ip(ctx, 'link', 'set', 'dev', br, 'mtu', String(net.mtu));
  if (link.mac !== mac) await ip(ctx, 'link', 'set', 'dev', br, 'address', mac);
  // Addresses an older Butter put on the bridge: the gateway lives in the namespace now.
  for (const addr of link.addrs.keys()) await ip(ctx, 'addr', 'del', addr, 'dev', br);
  const changes = [...marking(ctx, link), ...(link.up ? [] : ['up'])];
  if (changes.length > 0) await ip(ctx, 'link', 'set', 'dev', br, ...changes);
}

/** A VM's tap on the network's bridge. */
export async function ensurePort(ctx: HostCtx, port: LocalPort, net: LocalNetwork, links: Links, rev: Reverter): Promise<void> {
  const link = links.get(port.tap);
  if (!link) {
    // Persistent tap: it outlives QEMU restarts; QEMU opens it by name.
    await ip(ctx, 'tuntap', 'add', 'dev', port.tap, 'mode', 'tap');
    rev.add(() => ip(ctx, 'link', 'del', port.tap));
    await ip(ctx, 'link', 'set', 'dev', port.tap, 'alias', ctx.mark, 'mtu', String(net.mtu), 'master', net.bridge, 'up');
    ctx.log(`created tap ${port.tap} on ${net.bridge}`);
    return;
  }
  if (link.kind === 'bridge') throw new Error(`port ${port.tap} is a bridge`);
  // An existing interface of another kind (e.g. a veth) is used as is: only enslaved, and
  // not marked (not ours to delete). A tap of ours from before marks is.
  await enslave(ctx, port.tap, link, net, link.kind === 'tun' && port.tap.startsWith(ctx.prefix));
}

/** Makes an existing port of the network's bridge match: its MTU, its master, up; and our mark when `ours`. */
export async function enslave(ctx: HostCtx, name: string, link: Link, net: LocalNetwork, ours = false): Promise<void> {
  const changes: string[] = ours ? marking(ctx, link) : [];
  if (link.mtu !== net.mtu) changes.push('mtu', String(net.mtu));
  if (link.master !== net.bridge) changes.push('master', net.bridge);
  if (!link.up) changes.push('up');
  if (changes.length > 0) await ip(ctx, 'link', 'set', 'dev', name, ...changes);
}
