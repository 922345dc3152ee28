/**
 * VPN peers of a private network: laptops (or any WireGuard client) that join one network's
 * LAN through its VPN gateway node. The peer's private key is made on the client; the
 * control plane sees and stores only the public key.
 */
import { z } from 'zod';
import { Name, Timestamp } from './common.ts';
import { ENDPOINT, PublicKey } from './node.ts';

export const VpnPeerCreate = z
  .object({
    name: Name,
    publicKey: PublicKey,
    /**
     * `host:port` the peer sends to, when the gateway node's own mesh endpoint is not what a
     * laptop reaches (a port forward on a home router, a DNS name). Default: the gateway's.
     */
    endpoint: z.string().regex(ENDPOINT, 'must be host:port (IPv6 in brackets)').optional(),
  })
  .strict()
  .meta({ id: 'VpnPeerCreate' });
export type VpnPeerCreate = z.infer<typeof VpnPeerCreate>;

export const VpnPeer = z
  .object({
    name: Name,
    network: Name,
    /** Its address inside the network's CIDR. */
    ip: z.string(),
    publicKey: z.string(),
    /** The node whose WireGuard interface it talks to. */
    gateway: Name,
    endpoint: z.string(),
    createdAt: Timestamp,
  })
  .meta({ id: 'VpnPeer' });
export type VpnPeer = z.infer<typeof VpnPeer>;

/** What a wg-quick configuration needs besides the peer's own private key. */
export const VpnClientConfig = z.object({
  /** `ip/prefix`: the peer's address on the network. */
  address: z.string(),
  /** The network's gateway address, whose DNS answers `<vm>.<network>.internal`. */
  dns: z.string(),
  /** The network's guest MTU: a peer's packets may cross the overlay to another node. */
  mtu: z.number().int(),
  serverPublicKey: z.string(),
  endpoint: z.string(),
  /** Routed into the tunnel on the peer: the network's CIDR. */
  allowedIps: z.array(z.string()),
  persistentKeepalive: z.number().int(),
});
export type VpnClientConfig = z.infer<typeof VpnClientConfig>;

export const VpnPeerJoined = VpnPeer.extend({
  /**
   * Why `endpoint` is what it is: `request`, the request named it; `mesh`, the gateway node's
   * mesh endpoint (its --wg-endpoint, or the address its reports come from); `default-route`,
   * its address on its default route (its agent reports from loopback: beside the control plane).
   */
  endpointSource: z.enum(['request', 'mesh', 'default-route']),
  config: VpnClientConfig,
}).meta({ id: 'VpnPeerJoined' });
export type VpnPeerJoined = z.infer<typeof VpnPeerJoined>;

export const PeerParams = z.object({ name: Name, peer: Name }).strict();
