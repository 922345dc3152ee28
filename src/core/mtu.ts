/**
 * MTUs of the overlay, pure. A guest's frame travels bridge → VXLAN → WireGuard → underlay, and
 * each layer adds a header; if the guest's MTU leaves no room for them, large packets are
 * fragmented or (with DF set, as TCP does) dropped: a path-MTU black hole. So the MTU is set
 * on every layer and handed to guests by DHCP.
 */

/** Outer IPv4 (20) + UDP (8) + WireGuard's header (16) and authentication tag (16). */
export const WIREGUARD_OVERHEAD = 60;
/** Inner Ethernet (14) + VXLAN (8) + UDP (8) + IPv4 (20), carried inside WireGuard. */
export const VXLAN_OVERHEAD = 50;
/** Assumed for an underlay until its node reports one. */
export const DEFAULT_UNDERLAY_MTU = 1500;

/** The WireGuard interface's MTU over an IPv4 underlay of `underlay` bytes. */
export function wireguardMtu(underlay: number): number {
  return underlay - WIREGUARD_OVERHEAD;
}

/** What guests get: the largest IP packet that crosses the overlay unfragmented. */
export function guestMtu(underlay: number = DEFAULT_UNDERLAY_MTU): number {
  return wireguardMtu(underlay) - VXLAN_OVERHEAD;
}
