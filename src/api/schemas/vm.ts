/** Virtual machines, with one shape per verb. */
import { z } from 'zod';
import { Name, Size, Timestamp } from './common.ts';
import { MiB, parseSize } from '../../core/units.ts';
import { RESTART_POLICIES } from '../../core/restart-policy.ts';
import { MAX_IDLE_STOP_MS, MIN_IDLE_STOP_MS, parseIdleStop } from '../../core/scale-to-zero/idle-plan.ts';

/**
 * Scale to zero (issue 16): after this long with no traffic on its taps its agent suspends it
 * (`30s`, `10m`, `2h`: whole seconds, minutes or hours, 5 s to 7 days).
 */
export const IdleStop = z
  .string()
  .refine((t) => {
    const ms = parseIdleStop(t);
    return ms !== undefined && ms >= MIN_IDLE_STOP_MS && ms <= MAX_IDLE_STOP_MS;
  }, 'must be a duration like 30s, 10m or 2h, from 5s to 168h');

/**
 * pending: accepted, no agent has acted yet; creating: the agent prepares image and disk;
 * booting: QEMU runs, the guest has not fetched its metadata; running: it has;
 * unknown: its node stopped reporting; suspending: its RAM and device state are being saved
 * (`vm suspend`); suspended: saved on its node, QEMU gone, `vm resume` brings it back.
 */
export const VmState = z.enum(['pending', 'creating', 'booting', 'running', 'stopping', 'stopped', 'suspending', 'suspended', 'deleting', 'error', 'unknown']);
export type VmState = z.infer<typeof VmState>;

/** What the VM should be. `suspended`: its memory state saved on its node and QEMU ended (issue 16). */
export const Power = z.enum(['running', 'stopped', 'suspended']);

export const MAX_USER_DATA = 64 * 1024;

/**
 * Data disks beyond the root disk: empty qcow2 files on the VM's node, attached as virtio
 * disks after the root disk, so the guest sees the first as `vdb`, the next as `vdc`, ...
 * They live as long as the VM (kept across stop and start), and like the root disk they are
 * local: a VM recreated on another node (drain, evacuate) gets them again, empty.
 */
export const MAX_DATA_DISKS = 8;
export const MIN_DATA_DISK = MiB;
export const DataDisk = z
  .object({ size: Size.refine((s) => (parseSize(s) ?? 0) >= MIN_DATA_DISK, 'must be at least 1M') })
  .strict();

/**
 * The EC2-style metadata paths (`/latest/...`, `/2009-04-04/...`), as EC2's `HttpTokens`:
 * `optional` answers plain GETs (IMDSv1) and IMDSv2 tokens; `required` only GETs that carry a
 * token. The NoCloud files answer plain GETs either way (cloud-init's NoCloud source sends no
 * headers), so `required` protects only software that reads the EC2 paths.
 */
export const MetadataTokens = z.enum(['optional', 'required']);
export type MetadataTokens = z.infer<typeof MetadataTokens>;
export const SshKey = z.string().regex(/^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$/, 'must be an OpenSSH public key line');

/**
 * When a VM that should run ends by itself: `on-failure` restarts it after its QEMU was killed
 * or crashed, not after its guest powered off; `always` after either; `never` leaves it
 * stopped. Restarts back off, and after 5 within 10 minutes the VM stays stopped ("crash loop").
 */
export const RestartPolicy = z.enum(RESTART_POLICIES);
export type RestartPolicy = z.infer<typeof RestartPolicy>;

export const VmCreate = z
  .object({
    name: Name,
    image: Name,
    cpus: z.number().int().min(1).max(64).default(1),
    memory: Size.default('512M'),
    disk: Size.default('2G'),
    /** Data disks, in the order the guest sees them: `vdb`, `vdc`, ... (at most 8, each at least 1M). */
    disks: z.array(DataDisk).max(MAX_DATA_DISKS, `at most ${MAX_DATA_DISKS} data disks`).optional(),
    /** The private network of its `eth0` (default: `default`). */
    network: Name.optional(),
    /** Its NICs' networks, in order: `eth0`, `eth1`, ... (instead of `network`). */
    networks: z
      .array(Name)
      .min(1, 'must name at least one network')
      .max(8, 'at most 8 NICs')
      .refine((a) => new Set(a).size === a.length, 'must not name a network twice (one NIC per network)')
      .optional(),
    node: Name.optional(),
    group: Name.optional(),
    zone: Name.optional(),
    /** Node selector: every label must match. */
    labels: z.record(z.string(), z.string()).optional(),
    policy: z.enum(['spread', 'binpack']).optional(),
    /** Anti-affinity: VMs with the same key spread across zones, then nodes. */
    spreadKey: Name.optional(),
    /** Place beyond the overcommit ratios; the VM carries a warning. */
    force: z.boolean().optional(),
    userData: z.string().max(MAX_USER_DATA).optional(),
    sshKeys: z.array(SshKey).max(32).optional(),
    metadataTokens: MetadataTokens.default('optional'),
    restart: RestartPolicy.default('on-failure'),
    /** Scale to zero: suspended by its agent after this long without traffic, woken by the next connection. */
    idleStop: IdleStop.optional(),
  })
  .strict()
  .refine((v) => v.network === undefined || v.networks === undefined, { message: 'give network or networks, not both', path: ['networks'] })
  .meta({ id: 'VmCreate' });
export type VmCreate = z.input<typeof VmCreate>;

export const VmResize = z
  .object({ cpus: z.number().int().min(1).max(64).optional(), memory: Size.optional() })
  .strict()
  .refine((v) => v.cpus !== undefined || v.memory !== undefined, 'give cpus or memory')
  .meta({ id: 'VmResize' });

/** `release`: its CPUs and memory go back to the node while it is suspended (its disk stays held); a resume must fit again there. */
export const VmSuspend = z.object({ release: z.boolean().optional() }).strict().meta({ id: 'VmSuspend' });

export const VmUserDataSet = z.object({ userData: z.string().max(MAX_USER_DATA) }).strict().meta({ id: 'VmUserDataSet' });
export const VmUserData = z.object({ userData: z.string() }).meta({ id: 'VmUserData' });

export const Nic = z.object({ network: Name, ip: z.string().nullable(), mac: z.string() });
export type Nic = z.infer<typeof Nic>;

export const Vm = z
  .object({
    id: z.string(),
    name: Name,
    image: Name,
    node: Name.nullable(),
    cpus: z.number().int(),
    memoryBytes: z.number().int(),
    /** The root disk's size (`vda`). */
    diskBytes: z.number().int(),
    /** Data disks: index 1 is `vdb`, 2 `vdc`, ... (the root disk, `vda`, is not listed). */
    disks: z.array(z.object({ index: z.number().int(), sizeBytes: z.number().int(), device: z.string() })),
    power: Power,
    state: VmState,
    reason: z.string().nullable(),
    /** Of `eth0`, as in `nics[0]`. */
    network: Name,
    ip: z.string().nullable(),
    mac: z.string(),
    /** Every NIC, `eth0` first. */
    nics: z.array(Nic),
    /** Suspended with `release`: its CPUs and memory are not held on its node until a resume places them again. */
    released: z.boolean(),
    /** A resize waiting for the next start. */
    pending: z.object({ cpus: z.number().int(), memoryBytes: z.number().int() }).nullable(),
    sshKeys: z.array(z.string()),
    spreadKey: Name.nullable(),
    metadataTokens: MetadataTokens,
    restart: RestartPolicy,
    /** Scale to zero: its idle time (`10m`), or null. Suspended for idleness, it shows `suspended`, reason `idle for …`, power `running`. */
    idleStop: z.string().nullable(),
    /** Set when the VM was placed with --force beyond the overcommit ratios. */
    warning: z.string().nullable(),
    /** The service it is an instance of (`butter service`), or null. */
    service: Name.nullable(),
    /** Warm images (issue 16): `warm` when its first start restores its image's warm state on its node, else `cold`. */
    start: z.enum(['warm', 'cold']),
    /** Why it started cold although its image has a warm state (another node, another size, warming, failed, the node's fallback); null otherwise. */
    startReason: z.string().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: 'Vm' });
export type Vm = z.infer<typeof Vm>;

export const LogsQuery = z
  .object({
    offset: z.coerce.number().int().nonnegative().optional(),
    wait: z.coerce.number().int().min(0).max(60).optional(),
  })
  .strict();
/**
 * `offset`: where the next read starts. `start`: the oldest offset still kept (the control plane
 * keeps the newest bytes up to its cap); a reader that asked for less missed `start − offset`
 * bytes. Offsets only grow, across drains and evacuations too.
 */
export const Logs = z.object({ offset: z.number().int(), start: z.number().int(), data: z.string() }).meta({ id: 'Logs' });

/** The console WebSocket's start: output from `offset` (by default the current end: only what comes next). */
export const ConsoleSocketQuery = z
  .object({ offset: z.coerce.number().int().nonnegative().optional().describe('the first byte of output to send, as `vm logs` counts them (default: the current end)') })
  .strict();

/** Up to 4 KiB of keystrokes per request, base64-encoded. */
export const ConsoleInput = z.object({ base64: z.string().max(5464) }).strict().meta({ id: 'ConsoleInput' });
