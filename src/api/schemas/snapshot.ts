/**
 * Disk snapshots of a VM (issue 16): crash-consistent points of its root disk, kept on its
 * node as read-only qcow2 files of its disk's backing chain. `initial` is made with the disk,
 * before the guest's first write; `vm reinit` restores it.
 */
import { z } from 'zod';
import { Name, Timestamp } from './common.ts';

/** The snapshot every VM gets at its first boot; taken by no one, deleted by no one. */
export const INITIAL_SNAPSHOT = 'initial';

/**
 * pending: asked for, its node has not taken it yet; ready: its file is on the node;
 * failed: the node could not take it (reason); lost: its node is unreachable, or the VM
 * was recreated elsewhere (drain, evacuate) and the file stayed behind.
 */
export const SnapshotState = z.enum(['pending', 'ready', 'failed', 'lost']);
export type SnapshotState = z.infer<typeof SnapshotState>;

export const Snapshot = z
  .object({
    id: z.string(),
    name: Name,
    vm: Name,
    node: Name,
    state: SnapshotState,
    reason: z.string().nullable(),
    /** How long the guest was paused while it was taken (a running VM; a memory snapshot: from the vCPUs' stop to their restart), in ms; null when not measured (a stopped VM, the initial one). */
    pauseMs: z.number().nullable(),
    /** Its file's size on the node. */
    sizeBytes: z.number().int().nullable(),
    /** A memory snapshot (`vm snapshot --memory`): the guest's RAM and device state were saved with the disk, and a restore resumes from them. */
    memory: z.boolean(),
    /** A ready memory snapshot: the size of its RAM and device state file; null otherwise. */
    memoryBytes: z.number().int().nullable(),
    /** The snapshot the VM's disk stood on when this one was taken (its backing file). */
    parent: Name.nullable(),
    /** Whether the VM's current disk is an overlay on it. */
    current: z.boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: 'Snapshot' });
export type Snapshot = z.infer<typeof Snapshot>;

export const SnapshotCreate = z
  .object({
    /** Default: `snap-N`, the first number not taken. `initial` is the VM's own. */
    name: Name.refine((n) => n !== INITIAL_SNAPSHOT, `must not be "${INITIAL_SNAPSHOT}" (every VM has its own, made at its first boot)`).optional(),
    /**
     * Also save the guest's RAM and device state, of the same instant as the disk (the VM runs on
     * after it); only of a running VM. A restore of it resumes the guest where it was instead of
     * booting it.
     */
    memory: z.boolean().optional(),
  })
  .strict()
  .meta({ id: 'SnapshotCreate' });
export type SnapshotCreate = z.infer<typeof SnapshotCreate>;

export const SnapshotParams = z.object({ name: Name, snap: Name }).strict();

export const VmClone = z
  .object({
    /** The new VM's name: it gets its own MAC, address and instance-id. */
    name: Name,
    /** The source VM's snapshot its disk starts from; default: a new snapshot (`clone-NAME`) taken now. */
    snapshot: Name.optional(),
    /** Must be the snapshot's node (where its bytes are); default: that node. */
    node: Name.optional(),
  })
  .strict()
  .meta({ id: 'VmClone' });
export type VmClone = z.infer<typeof VmClone>;
