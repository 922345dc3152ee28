/** Nodes: machines that run `butter agent`. */
import { z } from 'zod';
import { Name, Timestamp } from './common.ts';
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

export const Node = z
  .object({
    name: Name,
    state: NodeState,
    accel: Accel.nullable(),
    accelReason: z.string().nullable(),
    driver: z.enum(['qemu', 'sim']).nullable(),
    capacity: Capacity.nullable(),
    allocated: z.object({ cpus: z.number(), memoryBytes: z.number(), diskBytes: z.number() }),
    vmCount: z.number().int(),
    lastHeartbeatAt: Timestamp.nullable(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Node' });
export type Node = z.infer<typeof Node>;

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
  })
  .strict();
export type ObservedVmReport = z.infer<typeof ObservedVmReport>;

export const NodeReport = z
  .object({
    capacity: Capacity,
    accel: Accel,
    accelReason: z.string().optional(),
    driver: z.enum(['qemu', 'sim']),
    vms: z.array(ObservedVmReport),
  })
  .strict()
  .meta({ id: 'NodeReport' });
export type NodeReport = z.infer<typeof NodeReport>;
