/**
 * Declarative host networking, in the style of "Router.Set(config)": the agent hands the
 * whole desired set of local networks and ports; `apply` makes the host match and is safe to
 * call again with the same input. Anything of ours not in the input is removed.
 */
import type { RemoteNode } from '../../core/fdb-plan.ts';

export interface LocalPort {
  /** Tap device name (<= 15 chars), created by the network host, opened by QEMU. */
  tap: string;
  mac: string;
  ip: string;
  hostname: string;
}

export interface LocalNetwork {
  name: string;
  /** Bridge device name (<= 15 chars). */
  bridge: string;
  /** e.g. `10.200.0.0/16`. */
  cidr: string;
  /** The gateway address, put on the bridge (same on every node: a distributed gateway). */
  gateway: string;
  mtu: number;
  /** Masquerade egress from the CIDR out of the host. */
  nat: boolean;
  /** When false dnsmasq answers only local names and forwards nothing upstream. */
  dnsForward: boolean;
  ports: LocalPort[];
  /** VXLAN over the node mesh, when this node is in it: the network's other hosts. */
  overlay?: Overlay;
  /** The network's VMs on other nodes: answered by this node's DNS like its own. */
  remoteNames?: { ip: string; hostname: string }[];
}

export interface Overlay {
  /** VXLAN device name (<= 15 chars), a port of the network's bridge. */
  device: string;
  vni: number;
  /** This node's mesh address: the VXLAN tunnels' source. */
  local: string;
  remotes: RemoteNode[];
}

export interface NetworkHost {
  apply(networks: readonly LocalNetwork[]): Promise<void>;
  /** Removes every bridge, tap, dnsmasq and nft table this host made. */
  teardown(): Promise<void>;
}

/** Where guests find the metadata server; put on every bridge as a /32. */
export const METADATA_ADDR = '169.254.169.254';
