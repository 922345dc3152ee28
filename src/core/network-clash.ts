/**
 * What two networks must not share for an agent to build both on one host: the names of their
 * devices and the addresses of their uplinks. The control plane refuses a network that would
 * (server/networks.ts); the agent still checks what it is handed (linux-network.ts), for
 * stores from before this check.
 *
 * Every host device of a network (bridge `bt-…`, gateway port `btg…`, uplink `btu…`, VXLAN port
 * `btx…`, VPN router `btr…`/`btp…`) is named from one id, its bridge name less `bt-`
 * (core/vm-spec.ts `bridgeName`): a name that fits, else its first three characters and 24
 * bits of a hash. Two networks clash when those ids are equal, a hashed one and a plain one
 * included (`abc-1a2b3c` is what a long `abc…` hashes to). The uplink /30 comes from the VNI
 * modulo UPLINK_SLOTS (core/gateway-ns.ts). Pure.
 */
import { UPLINK_SLOTS, uplinkSlot } from './gateway-ns.ts';
import { bridgeName } from './vm-spec.ts';

export interface NetworkKey {
  name: string;
  vni: number;
}

export interface Clash {
  /** The request field to blame: the name (device names) or the VNI (uplink addresses). */
  field: 'name' | 'vni';
  /** The existing network it clashes with. */
  other: string;
  message: string;
}

/** VXLAN network identifiers are 24 bits; the control plane hands them out from 100. */
export const MIN_VNI = 100;
export const MAX_VNI = 0xffffff;

/** The first network of `existing` that `n` cannot live beside on a host, and why. */
export function networkClash(n: NetworkKey, existing: readonly NetworkKey[]): Clash | undefined {
  const br = bridgeName(n.name);
  for (const o of existing) {
    if (o.name === n.name) continue;
    if (bridgeName(o.name) === br) {
      return { field: 'name', other: o.name, message: `network ${n.name} would have the same device names as network ${o.name} on every host (bridge ${br}); choose another name` };
    }
    if (uplinkSlot(o.vni) === uplinkSlot(n.vni)) {
      return { field: 'vni', other: o.name, message: `VNI ${n.vni} would have the same uplink addresses as network ${o.name}'s VNI ${o.vni} (they differ by a multiple of ${UPLINK_SLOTS})` };
    }
  }
  return undefined;
}

/**
 * The VNI for a new network: the first from `from` up (wrapping to MIN_VNI past MAX_VNI) whose
 * uplink /30 no VNI in `used` has; undefined when all UPLINK_SLOTS are taken.
 */
export function freeVni(used: readonly number[], from: number): number | undefined {
  const taken = new Set(used.map(uplinkSlot));
  const start = Math.min(Math.max(from, MIN_VNI), MAX_VNI);
  // Any UPLINK_SLOTS consecutive VNIs meet every slot once; one wrap can break the run, so twice that.
  for (let i = 0; i < 2 * UPLINK_SLOTS; i++) {
    let v = start + i;
    if (v > MAX_VNI) v = MIN_VNI + (v - MAX_VNI - 1);
    if (!taken.has(uplinkSlot(v))) return v;
  }
  return undefined;
}
