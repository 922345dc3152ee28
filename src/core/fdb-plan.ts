/**
 * Forwarding entries of a network's VXLAN device, planned from the control plane's view
 * instead of learned from flooded traffic (no multicast underlay, no learning):
 *
 * - for each other node hosting the network, an all-zeros entry: broadcast and unknown
 *   unicast (ARP requests) are replicated to it, head-end, over the mesh;
 * - for each VM there, its MAC → that node's mesh address: unicast goes straight to it.
 *
 * Pure: `planFdb` compares what the device has with what is wanted and returns `bridge fdb`
 * argument lists, removals first so a moved MAC never has two destinations.
 */

/** IANA's VXLAN port: the devices' tunnel port, and what `inet butter` opens to the mesh only. */
export const VXLAN_PORT = 4789;

export const FLOOD_MAC = '00:00:00:00:00:00';

export interface FdbEntry {
  mac: string;
  /** The remote node's mesh address. */
  dst: string;
}

export interface RemoteNode {
  /** Its mesh address. */
  address: string;
  /** MACs of the network's VMs on it. */
  macs: readonly string[];
}

export function wantedFdb(remotes: readonly RemoteNode[]): FdbEntry[] {
  const out: FdbEntry[] = [];
  for (const r of remotes) {
    out.push({ mac: FLOOD_MAC, dst: r.address });
    for (const mac of r.macs) out.push({ mac: mac.toLowerCase(), dst: r.address });
  }
  return out;
}

export function planFdb(device: string, have: readonly FdbEntry[], want: readonly FdbEntry[]): string[][] {
  const key = (e: FdbEntry) => `${e.mac.toLowerCase()} ${e.dst}`;
  const haveKeys = new Set(have.map(key));
  const wantKeys = new Set(want.map(key));
  const cmds: string[][] = [];
  for (const e of have) if (!wantKeys.has(key(e))) cmds.push(['fdb', 'del', e.mac.toLowerCase(), 'dev', device, 'dst', e.dst]);
  for (const e of want) {
    if (haveKeys.has(key(e))) continue;
    // The flood MAC has one entry per remote node (append); a VM's MAC has exactly one.
    cmds.push(['fdb', e.mac === FLOOD_MAC ? 'append' : 'replace', e.mac, 'dev', device, 'dst', e.dst]);
    haveKeys.add(key(e));
  }
  return cmds;
}
