/**
 * Which VM is behind a metadata request: pure, over the node's desired state.
 *
 * The key is (network the request came from, source address of its packet) and nothing
 * else: the network is told by which per-network server the request reached (its gateway
 * namespace forwards to that server alone), and the address is tied to one tap by the
 * bridge's anti-spoofing rules (`bridge butter`, core/nft-rules.ts). Nothing the guest sends
 * (headers, path, query, its name, MAC or id) is an input here.
 */
import type { DesiredVm, NodeDesired } from '../../api/schemas/desired.ts';
import { isIpv4 } from '../../core/ipv4.ts';

/**
 * The VM that owns `sourceIp` on `network`, if exactly one does.
 *
 * - Any of its NICs counts, but only a NIC on `network`: networks may share a CIDR, so the
 *   same address on another network is another VM.
 * - Only this node's VMs: the desired state lists no other node's (remote VMs appear only
 *   as forwarding entries), and metadata is served node-local.
 * - A VM being deleted is never served: its address goes back to the pool with its row.
 * - A stopped VM is served: it may still be shutting down, and its address stays bound to
 *   its own tap (taps and rules outlive a stop) until it is deleted, so no one else can
 *   send from it.
 * - A NIC with no address yet (the control plane sends `''` for NULL) never matches.
 * - Two live VMs claiming one address cannot happen (UNIQUE (network, ip) in the store); if
 *   it ever did, neither is served rather than whichever comes first.
 */
export function vmBySource(desired: NodeDesired | undefined, network: string, sourceIp: string): DesiredVm | undefined {
  if (!desired || !isIpv4(sourceIp)) return undefined;
  const found = desired.vms.filter((v) => v.power !== 'deleted' && v.nics.some((n) => n.network === network && n.ip === sourceIp));
  return found.length === 1 ? found[0] : undefined;
}
