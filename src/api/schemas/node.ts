/** Nodes: machines that run `butter agent`. */
import { z } from 'zod';
import { WG_KEY } from '../../core/wireguard-config.ts';
import { Name, Size, Timestamp } from './common.ts';
import { VmState } from './vm.ts';

export const Capacity = z
  .object({
    cpus: z.number().int().positive(),
    memoryBytes: z.number().int().positive(),
    diskBytes: z.number().int().positive(),
  })
  .strict();

export const Accel = z.enum(['kvm', 'tcg']);

export const NodeState = z.enum(['new', 'ready', 'unreachable']);

const Res = z.object({ cpus: z.number(), memoryBytes: z.number(), diskBytes: z.number() });

/** Label keys and values: DNS-label-like, so they read well in `node list` and selectors. */
export const LabelKey = z.string().regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/, 'must be a label key: lowercase letters, digits, ".", "_", "/", "-"');
export const LabelValue = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$|^$/, 'must be a label value: letters, digits, ".", "_", "-"');
export const Labels = z.record(LabelKey, LabelValue);

export const Node = z
  .object({
    name: Name,
    state: NodeState,
    cordoned: z.boolean(),
    group: Name,
    zone: Name,
    labels: z.record(z.string(), z.string()),
    accel: Accel.nullable(),
    accelReason: z.string().nullable(),
    driver: z.enum(['qemu', 'sim']).nullable(),
    /** What the host has, as its agent reports it. */
    capacity: Capacity.nullable(),
    /** Kept for the host itself. */
    reserved: Res,
    /** (capacity − reserved) × the group's overcommit ratios. */
    allocatable: Res,
    allocated: Res,
    free: Res,
    vmCount: z.number().int(),
    /** Its end of the WireGuard mesh, once its agent has reported a key. */
    mesh: z.object({ address: z.string(), publicKey: z.string(), endpoint: z.string().nullable() }).nullable(),
    lastHeartbeatAt: Timestamp.nullable(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Node' });
export type Node = z.infer<typeof Node>;

export const NodeUpdate = z
  .object({
    /** `null` removes a label. */
    labels: z.record(LabelKey, LabelValue.nullable()).optional(),
    group: Name.optional(),
    zone: Name.optional(),
    reserved: z.object({ cpus: z.number().int().min(0).max(1024).optional(), memory: Size.optional(), disk: Size.optional() }).strict().optional(),
  })
  .strict()
  .meta({ id: 'NodeUpdate' });
export type NodeUpdate = z.infer<typeof NodeUpdate>;

export const Group = z
  .object({
    name: Name,
    cpuRatio: z.number(),
    memoryRatio: z.number(),
    diskRatio: z.number(),
    policy: z.enum(['spread', 'binpack']),
    nodeCount: z.number().int(),
  })
  .meta({ id: 'Group' });
export type Group = z.infer<typeof Group>;

export const GroupSet = z
  .object({
    cpuRatio: z.number().min(0.1).max(64).optional(),
    memoryRatio: z.number().min(0.1).max(4).optional(),
    diskRatio: z.number().min(0.1).max(16).optional(),
    policy: z.enum(['spread', 'binpack']).optional(),
  })
  .strict()
  .meta({ id: 'GroupSet' });

export const RelocateBody = z
  .object({ confirm: z.literal(true, { error: 'must be true: the VMs are recreated from their images and their local disk data is lost' }) })
  .strict()
  .meta({ id: 'Relocate' });
export const Relocated = z.object({ moved: z.array(z.object({ vm: Name, from: Name, to: Name })), failed: z.array(z.object({ vm: Name, reason: z.string() })) }).meta({ id: 'Relocated' });

export const NodeCreate = z.object({ name: Name }).strict().meta({ id: 'NodeCreate' });
export const NodeCreated = z.object({ node: Node, token: z.string() }).meta({ id: 'NodeCreated' });

/** What an agent reports: heartbeat, capacity and the observed state of its VMs. */
export const ObservedVmReport = z
  .object({
    id: z.string(),
    state: VmState,
    reason: z.string().optional(),
    pid: z.number().int().optional(),
    ip: z.string().optional(),
    /**
     * Scale to zero: its last wake by the agent's activator (issue 16), kept in every report
     * until the next; the control plane records one `wake` event per `at`.
     */
    wake: z
      .object({ at: z.string().max(40), trigger: z.enum(['tcp', 'udp']), port: z.number().int().min(0).max(65535).optional(), ms: z.number().nonnegative() })
      .strict()
      .optional(),
    /**
     * The VM's snapshots of its desired state this node has taken (`ready`) or could not take
     * (`failed`, with a reason); one not reported yet stays pending. Absent: no word.
     */
    snapshots: z
      .array(
        z
          .object({
            id: z.string().regex(/^[a-z0-9]{1,32}$/),
            state: z.enum(['ready', 'failed']),
            reason: z.string().max(1000).optional(),
            /** How long the guest was paused for it (a running VM), in ms. */
            pauseMs: z.number().nonnegative().optional(),
            sizeBytes: z.number().int().nonnegative().optional(),
            /** A memory snapshot: the size of its RAM and device state file. */
            memoryBytes: z.number().int().nonnegative().optional(),
          })
          .strict(),
      )
      .max(1024)
      .optional(),
    /** How its first start went when it was to start warm (issue 16): `cold` when the node fell back to a boot, with why. Absent: as planned. */
    start: z.object({ kind: z.enum(['warm', 'cold']), reason: z.string().max(1000).optional() }).strict().optional(),
  })
  .strict();
export type ObservedVmReport = z.infer<typeof ObservedVmReport>;

/** `host:port`, IPv6 hosts in brackets: where a node's WireGuard listens. */
export const ENDPOINT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** A WireGuard public key (a node's or a VPN peer's). */
export const PublicKey = z.string().regex(WG_KEY, 'must be a WireGuard public key (32 bytes, base64)');

/** What a node tells about its end of the WireGuard mesh; its private key never leaves it. */
export const MeshReport = z
  .object({
    publicKey: PublicKey,
    listenPort: z.number().int().min(1).max(65535),
    /** `host:port` the other nodes send to; default: the address this report came from, at `listenPort`. */
    endpoint: z
      .string()
      .regex(ENDPOINT, 'must be host:port (IPv6 in brackets)')
      .optional(),
    /**
     * This host's address on its default route, reported when it has no `endpoint`: what a VPN
     * peer (a laptop) is given to send to, at `listenPort`, when this report comes from
     * loopback (an agent beside the control plane). The mesh between nodes does not use it.
     */
    defaultAddress: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' }).optional(),
    /** MTU of the interface toward the other nodes; the mesh sizes for the smallest. */
    underlayMtu: z.number().int().min(1280).max(65535).optional(),
  })
  .strict();
export type MeshReport = z.infer<typeof MeshReport>;

/** What an agent's last apply made of one of its networks: built, or not and why. */
export const NetworkReport = z
  .object({
    name: Name,
    state: z.enum(['ready', 'error']),
    error: z.string().max(1000).optional(),
  })
  .strict();
export type NetworkReport = z.infer<typeof NetworkReport>;

export const NodeReport = z
  .object({
    capacity: Capacity,
    accel: Accel,
    accelReason: z.string().optional(),
    driver: z.enum(['qemu', 'sim']),
    vms: z.array(ObservedVmReport),
    mesh: MeshReport.optional(),
    /**
     * Every network its agent last applied, each `ready` or in `error`. Absent: no word (an
     * agent that builds no networks, an older one, or one that has not applied yet); what was
     * said before stands.
     */
    networks: z.array(NetworkReport).max(4096).optional(),
    /** The warm states its desired state lists as `warming` that it finished: `ready`, or `failed` with why (issue 16). Absent: no word. */
    warm: z
      .array(
        z
          .object({
            id: z.string().regex(/^[a-z0-9]{1,32}$/),
            state: z.enum(['ready', 'failed']),
            reason: z.string().max(1000).optional(),
            /** The saved RAM and device state, in bytes. */
            sizeBytes: z.number().int().nonnegative().optional(),
            /** From the template's launch to its saved state, in ms. */
            ms: z.number().nonnegative().optional(),
          })
          .strict(),
      )
      .max(256)
      .optional(),
  })
  .strict()
  .meta({ id: 'NodeReport' });
export type NodeReport = z.infer<typeof NodeReport>;
