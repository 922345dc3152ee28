/**
 * A network's VXLAN port on its bridge, tunnelling from this node's mesh address, and its
 * forwarding entries as the control plane sees the network (`core/fdb-plan.ts`). No
 * learning: where each MAC lives is known, not guessed from flooded traffic.
 */
import type { LocalNetwork, Overlay } from '../network.ts';
import type { Reverter } from '../reverter.ts';
import { planFdb, VXLAN_PORT, wantedFdb, type FdbEntry } from '../../../core/fdb-plan.ts';
import type { Exec } from '../exec.ts';
import { enslave } from './bridge.ts';
import { ip, type HostCtx, type Links } from './links.ts';

export async function ensureOverlay(ctx: HostCtx, net: LocalNetwork, o: Overlay, links: Links, rev: Reverter): Promise<void> {
  let link = links.get(o.device);
  if (link && (link.kind !== 'vxlan' || link.vni !== o.vni || link.local !== o.local)) {
    if (link.kind !== 'vxlan' || !o.device.startsWith(ctx.prefix)) throw new Error(`${o.device} exists and is not our VXLAN device for VNI ${o.vni}`);
    // The VNI or the node's mesh address changed: neither can be changed in place.
    await ip(ctx, 'link', 'del', o.device);
    links.delete(o.device);
    link = undefined;
  }
  if (!link) {
    await ip(ctx, 'link', 'add', o.device, 'type', 'vxlan', 'id', String(o.vni), 'local', o.local, 'dstport', String(VXLAN_PORT), 'nolearning', 'noudpcsum');
    rev.add(() => ip(ctx, 'link', 'del', o.device));
    await ip(ctx, 'link', 'set', 'dev', o.device, 'alias', ctx.mark, 'mtu', String(net.mtu), 'master', net.bridge, 'up');
    ctx.log(`created VXLAN ${o.device} (VNI ${o.vni}) on ${net.bridge}`);
  } else {
    await enslave(ctx, o.device, link, net, true);
  }
  for (const cmd of planFdb(o.device, await readFdb(ctx.exec, o.device), wantedFdb(o.remotes))) await ctx.exec.run('bridge', cmd);
}

/** The device's own (VXLAN-level) entries: those with a tunnel destination. */
async function readFdb(exec: Exec, device: string): Promise<FdbEntry[]> {
  const out = (await exec.run('bridge', ['-j', 'fdb', 'show', 'dev', device])).stdout.trim();
  return ((out ? JSON.parse(out) : []) as { mac: string; dst?: string }[]).filter((e) => e.dst).map((e) => ({ mac: e.mac.toLowerCase(), dst: e.dst! }));
}
