/**
 * Declarative host networking, in the style of "Router.Set(config)": the agent hands the
 * whole desired set of local networks and ports; `apply` makes the host match and is safe to
 * call again with the same input. Anything of ours not in the input is removed.
 */
import type { DesiredPath, DesiredPublished } from '../../api/schemas/desired.ts';
import type { RemoteNode } from '../../core/fdb-plan.ts';

export interface LocalPort {
  /** Tap device name (<= 15 chars), created by the network host, opened by QEMU. */
  tap: string;
  mac: string;
  ip: string;
  hostname: string;
  /** false for a VM's eth1 and up: DHCP gives them no default route. */
  primary?: boolean;
}

export interface LocalNetwork {
  name: string;
  /** Bridge device name (<= 15 chars). */
  bridge: string;
  /** e.g. `10.200.0.0/16`. */
  cidr: string;
  /** The gateway address, on `gw0` in the network's gateway namespace (same on every node: a distributed gateway). */
  gateway: string;
  mtu: number;
  /** Masquerade egress from the CIDR out of the host. */
  nat: boolean;
  /** The bridge port (a veth) whose other end is `gw0` in the network's gateway namespace (core/gateway-ns.ts). */
  gatewayPort: string;
  /** The link between the host (`device`, address `root`) and the namespace (`ns`); `table` routes the host's answers back up it. */
  uplink: { device: string; root: string; ns: string; table: number };
  /** When false dnsmasq answers only local names and forwards nothing upstream. */
  dnsForward: boolean;
  ports: LocalPort[];
  /** VXLAN over the node mesh, when this node is in it: the network's other hosts. */
  overlay?: Overlay;
  /** The network's VMs on other nodes: answered by this node's DNS like its own. */
  remoteNames?: { ip: string; hostname: string }[];
  /**
   * Its services, each with the addresses of its running instances (wherever they run):
   * `<name>.<network>.internal`; and its address block, which the paths table keys on.
   */
  services?: { name: string; ips: string[]; block?: string }[];
  /** Its paths (issue 14): with the services' blocks, rendered into `inet butter_paths`. */
  paths?: DesiredPath[];
  /** When this node is the network's VPN gateway: the router between its bridge and the peers. */
  vpn?: LocalVpn;
}

/**
 * A network's VPN router: a veth pair whose `port` end sits on the bridge and whose `router`
 * end has its own MAC and address on the network, answers ARP for the peers (proxy ARP), and
 * routes between the bridge and the peers on the mesh interface, in a routing table of its
 * own (`table`), so replies to peers never leave through the bridge under the gateway's MAC
 * (which every node shares).
 */
export interface LocalVpn {
  router: string;
  port: string;
  address: string;
  mac: string;
  /** The peers' addresses. */
  peers: string[];
  /** The WireGuard mesh interface the peers' tunnels arrive on. */
  mesh: string;
  table: number;
}

/**
 * VPN routing tables are this plus the network's VNI: one per network, the same on every node.
 * VNIs are below 2^24, so this range and the uplinks' (core/gateway-ns.ts) never meet.
 */
export const VPN_TABLE_BASE = 0x10000000;
/** Priority of the VPN routing rules: before the main table (32766). */
export const VPN_RULE_PRIORITY = 1000;
/** Priority of the uplink rules (the host's answers to a network's guests). */
export const UPLINK_RULE_PRIORITY = 1001;

export interface Overlay {
  /** VXLAN device name (<= 15 chars), a port of the network's bridge. */
  device: string;
  vni: number;
  /** This node's mesh address: the VXLAN tunnels' source. */
  local: string;
  remotes: RemoteNode[];
}

/** What the host enforces beyond its networks: published service ports (core/paths/nft-publish.ts). */
export interface HostPolicy {
  /** This node's name: published ports' backends on it are local. */
  node: string;
  published: readonly DesiredPublished[];
  /** Its mesh address and the other nodes': remote backends are reached there. Absent: not in a mesh. */
  mesh?: { address: string; peers: readonly { node: string; address: string }[] };
}

export interface NetworkHost {
  /**
   * Makes the host match `networks`. One network that cannot be built does not stop the
   * others: they are converged, then a `NetworkApplyError` names each network that failed and
   * why. Anything else thrown (a ruleset the kernel refuses, input that does not render)
   * changed nothing and concerns every network.
   */
  apply(networks: readonly LocalNetwork[], policy?: HostPolicy): Promise<void>;
  /** Removes every bridge, tap, dnsmasq and nft table this host made. */
  teardown(): Promise<void>;
}

/** Where guests find the metadata server; on every gateway namespace's `gw0` as a /32, forwarded to the agent. */
export const METADATA_ADDR = '169.254.169.254';

/** What `NetworkHost.apply` throws when some networks failed and the others were converged: per network, its error. */
export class NetworkApplyError extends AggregateError {
  constructor(readonly failures: ReadonlyMap<string, unknown>) {
    super([...failures.values()], [...failures].map(([name, e]) => `network ${name}: ${e instanceof Error ? e.message : String(e)}`).join('; '));
    this.name = 'NetworkApplyError';
  }
}
