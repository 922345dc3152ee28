/** What a node's agent is told to run: its VMs and the networks they sit on. */
import { z } from 'zod';
import { Name, Revision, Sha256 } from './common.ts';
import { DiskFormat } from './image.ts';
import { Power } from './vm.ts';

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

export const DesiredVm = z.object({
  id: z.string(),
  name: Name,
  cpus: z.number().int(),
  memoryBytes: z.number().int(),
  diskBytes: z.number().int(),
  /** `deleted`: destroy it and report it gone. */
  power: z.union([Power, z.literal('deleted')]),
  image: DesiredImage,
  network: Name,
  ip: z.string(),
  mac: z.string(),
  userData: z.string(),
  sshKeys: z.array(z.string()),
  /** Power generation, bumped by `vm start` and `vm restart`: the agent (re)starts the VM once per generation. */
  restartGen: z.number().int(),
});
export type DesiredVm = z.infer<typeof DesiredVm>;

export const DesiredNetwork = z.object({
  name: Name,
  cidr: z.string(),
  gateway: z.string(),
  mtu: z.number().int(),
  nat: z.boolean(),
});
export type DesiredNetwork = z.infer<typeof DesiredNetwork>;

export const NodeDesired = z
  .object({ revision: Revision, vms: z.array(DesiredVm), networks: z.array(DesiredNetwork) })
  .meta({ id: 'NodeDesired' });
export type NodeDesired = z.infer<typeof NodeDesired>;

/** A watch that timed out with nothing new: the agent keeps (and re-checks) what it has. */
export const DesiredUnchanged = z.object({ revision: Revision, unchanged: z.literal(true) }).meta({ id: 'DesiredUnchanged' });
export const DesiredWatch = z.union([NodeDesired, DesiredUnchanged]);

export const DesiredQuery = z
  .object({
    since: z.coerce.number().int().nonnegative().optional(),
    wait: z.coerce.number().int().min(0).max(60).optional(),
  })
  .strict();

export const ConsoleChunk = z.object({ offset: z.number().int().nonnegative(), base64: z.string().max(1_500_000) }).strict().meta({ id: 'ConsoleChunk' });

/** Keystrokes for VM consoles on a node, queued by `butter vm console` until the agent takes them. */
export const ConsoleInputs = z
  .object({ items: z.array(z.object({ id: z.string(), base64: z.string() })) })
  .meta({ id: 'ConsoleInputs' });
export const ConsoleInputQuery = z.object({ wait: z.coerce.number().int().min(0).max(60).optional() }).strict();
