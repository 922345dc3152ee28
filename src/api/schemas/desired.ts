/** What a node's agent is told to run: its VMs and the networks they sit on. */
import { z } from 'zod';
import { Name, Revision, Sha256 } from './common.ts';
import { DiskFormat } from './image.ts';
import { Network } from './network.ts';
import { ProbeBatch } from './verify.ts';
import { MAX_DATA_DISKS, MetadataTokens, Power, RestartPolicy } from './vm.ts';

export const DesiredImage = z.object({
  name: Name,
  kind: z.enum(['disk', 'kernel']),
  format: DiskFormat.nullable(),
  disk: Sha256.optional(),
  kernel: Sha256.optional(),
  initrd: Sha256.optional(),
  rootDisk: Sha256.optional(),
  rootFormat: DiskFormat.nullable(),
  cmdline: z.string().nullable(),
});
export type DesiredImage = z.infer<typeof DesiredImage>;

/** A snapshot's id names its file on the node: a safe alphabet only. */
export const SnapshotId = z.string().regex(/^[a-z0-9]{1,32}$/);

export const DesiredVm = z.object({
  id: z.string(),
  name: Name,
  cpus: z.number().int(),
  memoryBytes: z.number().int(),
  diskBytes: z.number().int(),
  /**
   * Data disks, each made once, empty, on this node and kept until the VM is deleted; index 1
   * is attached right after the root disk (the guest's `vdb`). Absent: none.
   */
  disks: z.array(z.object({ index: z.number().int().min(1).max(MAX_DATA_DISKS), sizeBytes: z.number().int().positive() })).optional(),
  /** `deleted`: destroy it and report it gone. */
  power: z.union([Power, z.literal('deleted')]),
  image: DesiredImage,
  /** Its NICs, `eth0` first: each on its network's bridge, with its reserved address. */
  nics: z.array(z.object({ network: Name, ip: z.string(), mac: z.string() })).min(1),
  userData: z.string(),
  sshKeys: z.array(z.string()),
  /** Whether its metadata server answers tokenless GETs on the EC2 paths. */
  metadataTokens: MetadataTokens,
  /** Power generation, bumped by `vm start` and `vm restart`: the agent (re)starts the VM once per generation. */
  restartGen: z.number().int(),
  /** What the agent does when the VM ends by itself (core/restart-policy.ts). */
  restart: RestartPolicy,
  /**
   * Disk snapshots (issue 16), oldest first: the ones this node is to keep. One it lacks it
   * takes (a running VM: paused, external qcow2 snapshot over QMP, resumed; a stopped one:
   * with qemu-img) and reports `ready` (or `failed`) in `ObservedVmReport.snapshots`; one it
   * has that is not listed it deletes, unless a disk or another snapshot stands on it.
   * Only `pending` ones are reported. Absent: no word (an older control plane): nothing is deleted.
   * `memory`: take the guest's RAM and device state with it (a running VM only; else it fails).
   */
  snapshots: z.array(z.object({ id: SnapshotId, name: Name, state: z.enum(['pending', 'ready']), memory: z.boolean().optional() })).optional(),
  /**
   * Scale to zero (issue 16): after this long (`10m`, core/scale-to-zero/idle-plan.ts) with no
   * byte on its taps the agent suspends it (power stays `running`) and holds its taps until a
   * connection wakes it. Absent: never.
   */
  idleStop: z.string().optional(),
  /** Bumped by a user's `vm resume` of a VM suspended for idleness: the agent wakes it. Absent: 0. */
  wakeGen: z.number().int().optional(),
  /** The `initial` snapshot: made with the disk, before the guest's first write (never taken later). */
  initialSnapshot: SnapshotId.optional(),
  /** A clone: its first disk is an overlay on this snapshot of another VM on this node, not on the image. */
  base: z.object({ vm: z.string(), snapshot: SnapshotId }).optional(),
  /**
   * A clone made on another node than its snapshot's (issue 16): its first disk is an overlay
   * on this blob, a flattened copy of the snapshot, fetched and verified like an image's blob.
   */
  baseBlob: z.object({ sha256: Sha256, format: DiskFormat }).optional(),
  /**
   * Restore: at its next start (this generation's), the disk becomes a new overlay on this
   * snapshot, once per `gen`; `memory`: a memory snapshot, whose saved RAM the guest goes on
   * from (a launch from its state, not a boot).
   */
  restore: z.object({ snapshot: SnapshotId, gen: z.number().int().positive(), memory: z.boolean().optional() }).optional(),
  /** Warm images (issue 16): its first start is a restore of this warm state of the node (`NodeDesired.warm`), not a boot. */
  warm: z.object({ id: SnapshotId }).optional(),
});
export type DesiredVm = z.infer<typeof DesiredVm>;

/** A path as the node renders it: from a service of the network or a CIDR, to a service, on a port range. */
export const DesiredPath = z.object({
  from: z.union([z.object({ service: Name }).strict(), z.object({ cidr: z.string() }).strict()]),
  to: Name,
  proto: z.enum(['tcp', 'udp']),
  /** Inclusive; a single port is `[p, p]`. */
  ports: z.tuple([z.number().int(), z.number().int()]),
});
export type DesiredPath = z.infer<typeof DesiredPath>;

/**
 * A published service port (issue 14: a path from a CIDR publishes its target): every ready
 * node accepts `hostPorts` on its own addresses from `sources` and balances over `backends`,
 * the service's running instances wherever they run (over the mesh when on another node).
 */
export const DesiredPublished = z.object({
  network: Name,
  service: Name,
  proto: z.enum(['tcp', 'udp']),
  /** The instances' ports, inclusive; host port `hostPorts[0] + i` leads to `ports[0] + i`. */
  ports: z.tuple([z.number().int(), z.number().int()]),
  hostPorts: z.tuple([z.number().int(), z.number().int()]),
  /** The CIDRs of the paths that publish it: only clients from these may connect. */
  sources: z.array(z.string()).min(1),
  backends: z.array(z.object({ ip: z.string(), node: Name })),
});
export type DesiredPublished = z.infer<typeof DesiredPublished>;

/** A network as the API shows it (less its counts), and where else it runs. */
export const DesiredNetwork = Network.pick({ name: true, cidr: true, gateway: true, mtu: true, nat: true, vni: true }).extend({
  /** Other mesh nodes with VMs on it, and those VMs: VXLAN forwarding entries and DNS names. */
  remotes: z.array(
    z.object({
      node: Name,
      address: z.string(),
      vms: z.array(z.object({ name: Name, mac: z.string(), ip: z.string() })),
      /** The network's VPN router port, on its VPN gateway node. */
      router: z.object({ mac: z.string(), ip: z.string() }).optional(),
    }),
  ),
  /**
   * The network's services and the addresses of their running instances: DNS answers
   * `<service>.<network>.internal` with all of them (and no address of an instance that is not
   * running, so a client never gets one that does not answer yet).
   */
  services: z.array(z.object({ name: Name, ips: z.array(z.string()), /** Its address block (issue 14: the paths' sets are keyed by blocks). */ block: z.string().optional() })).optional(),
  /**
   * Every path of the network (issue 14): with `services`' blocks, what the node renders into
   * `inet butter_paths` (core/paths/nft-paths.ts). Absent: the network has no path (its
   * service instances are still default-deny: nothing reaches them but DHCP, DNS, metadata).
   */
  paths: z.array(DesiredPath).optional(),
  /** Present on the network's VPN gateway node: its router port and the peers it routes to. */
  vpn: z
    .object({
      address: z.string(),
      mac: z.string(),
      peers: z.array(z.object({ name: Name, publicKey: z.string(), ip: z.string() })),
    })
    .optional(),
});
export type DesiredNetwork = z.infer<typeof DesiredNetwork>;

/** Keystrokes typed by `butter vm console` into the serial consoles of a node's VMs. */
export const ConsoleInputs = z.array(z.object({ id: z.string(), base64: z.string() }));

/** The node's place in the WireGuard mesh: its address and every other node's end. */
export const DesiredMesh = z.object({
  /** Its mesh address, inside MESH_CIDR (prefix `prefix`). */
  address: z.string(),
  prefix: z.number().int(),
  /** Of the WireGuard interface: the underlay's less WireGuard's headers. */
  mtu: z.number().int(),
  peers: z.array(z.object({ node: Name, publicKey: z.string(), endpoint: z.string().nullable(), address: z.string() })),
});
export type DesiredMesh = z.infer<typeof DesiredMesh>;

/**
 * A warm state the node is to keep (issue 16): `warming`, it boots the image's template,
 * saves it and reports `ready` or `failed` (`ObservedReport.warm`); `ready`, it keeps the
 * files. One it has that is not listed it deletes, unless a VM's disk stands on it.
 */
export const DesiredWarm = z.object({
  id: SnapshotId,
  image: DesiredImage,
  cpus: z.number().int(),
  memoryBytes: z.number().int(),
  state: z.enum(['warming', 'ready']),
});
export type DesiredWarm = z.infer<typeof DesiredWarm>;

export const NodeDesired = z
  .object({
    revision: Revision,
    vms: z.array(DesiredVm),
    networks: z.array(DesiredNetwork),
    mesh: DesiredMesh.nullable(),
    /** Published service ports, the same on every ready node (issue 14). Absent: none. */
    published: z.array(DesiredPublished).optional(),
    /**
     * Snapshots of its VMs to flatten (`qemu-img convert`) and upload to
     * `PUT /v1/nodes/{name}/exports/{id}` (an image made from a VM, or a clone's base on
     * another node), or to report failed. Absent: none.
     */
    exports: z.array(z.object({ id: SnapshotId, vm: z.string(), snapshot: SnapshotId })).optional(),
    /** Warm images' states on this node (issue 16). Absent: none (an older control plane: nothing is deleted). */
    warm: z.array(DesiredWarm).optional(),
  })
  .meta({ id: 'NodeDesired' });
export type NodeDesired = z.infer<typeof NodeDesired>;

/**
 * The node's one watch: a new desired state, or nothing new (the agent keeps and re-checks what
 * it has). Either may carry console input, taken from the queue by this answer: one pending
 * request per agent instead of two (each costs the control plane memory, times 1,000 agents).
 */
/** `path verify`'s probes for this node to send (server/path-verify.ts): like console input, carried by the one watch. */
const Probes = z.array(ProbeBatch);
export const DesiredChanged = NodeDesired.extend({ consoleInput: ConsoleInputs.optional(), probes: Probes.optional() }).meta({ id: 'DesiredChanged' });
export const DesiredUnchanged = z.object({ revision: Revision, unchanged: z.literal(true), consoleInput: ConsoleInputs.optional(), probes: Probes.optional() }).meta({ id: 'DesiredUnchanged' });
export const DesiredWatch = z.union([DesiredChanged, DesiredUnchanged]);

export const DesiredQuery = z
  .object({
    since: z.coerce.number().int().nonnegative().optional(),
    wait: z.coerce.number().int().min(0).max(60).optional(),
  })
  .strict();

/**
 * Bytes of a VM's console log on its node, read at `offset` of that log. `stream` names the
 * log file (the agent picks one per file): a new file (the VM recreated on this node) is a
 * new stream, appended after what the control plane has instead of taken for bytes it has.
 */
export const ConsoleChunk = z
  .object({ offset: z.number().int().nonnegative(), base64: z.string().max(1_500_000), stream: z.string().regex(/^[0-9a-f]{8,32}$/).optional() })
  .strict()
  .meta({ id: 'ConsoleChunk' });

