/** Private networks: one L2 segment per network, wherever its VMs run. */
import { z } from 'zod';
import { parseCidr } from '../../core/ipv4.ts';
import { Name, Timestamp } from './common.ts';

/** An IPv4 network in CIDR form (`10.20.0.0/16`), /8 to /29, outside the ranges Butter and hosts reserve. */
export const Cidr = z.string().superRefine((text, ctx) => {
  try {
    parseCidr(text, { maxPrefix: 29 });
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

export const NetworkCreate = z
  .object({
    name: Name,
    /** Default: the first 10.x.0.0/16 that no network uses yet. */
    cidr: Cidr.optional(),
    /** Masquerade the network's traffic out of each host (default true). */
    nat: z.boolean().optional(),
  })
  .strict()
  .meta({ id: 'NetworkCreate' });
export type NetworkCreate = z.infer<typeof NetworkCreate>;

/** A network on one node that hosts it, as that node's agent last said. */
export const NetworkNodeState = z
  .object({
    node: Name,
    /** `ready`: built; `error`: its agent could not build it (`error` says why; its VMs there do not start); `pending`: no word yet (not applied yet, or an agent that builds no networks: simulated or older). */
    state: z.enum(['ready', 'error', 'pending']),
    error: z.string().nullable(),
  })
  .meta({ id: 'NetworkNodeState' });
export type NetworkNodeState = z.infer<typeof NetworkNodeState>;

export const Network = z
  .object({
    name: Name,
    cidr: z.string(),
    /** The first address: every node hosting the network answers on it (a distributed gateway). */
    gateway: z.string(),
    /** Handed to guests by DHCP: the underlay's MTU less the WireGuard and VXLAN headers. */
    mtu: z.number().int(),
    nat: z.boolean(),
    /** Its VXLAN network identifier on the node mesh. */
    vni: z.number().int(),
    vmCount: z.number().int(),
    /** The node VPN peers' tunnels end on; null until the first peer joins. */
    vpnGateway: Name.nullable(),
    peerCount: z.number().int(),
    /** The nodes hosting it (those running its VMs, and its VPN gateway), each with its state there. */
    nodes: z.array(NetworkNodeState),
    createdAt: Timestamp,
  })
  .meta({ id: 'Network' });
export type Network = z.infer<typeof Network>;
