/**
 * Services: groups of VMs made from a blueprint (YAML, see docs/blueprints.md), with numbered
 * revisions, rolling updates and rollback. The blueprint travels as text with its templates
 * (path as the blueprint names it -> text): the control plane reads no file of the caller's.
 */
import { z } from 'zod';
import { Name, Timestamp } from './common.ts';
import { PublishedEndpoint } from './path.ts';
import { VmState } from './vm.ts';

const MAX_TEXT = 64 * 1024;

/** Variables for the templates: strings, numbers, lists, maps (as YAML gives them). */
export const ServiceVars = z.record(z.string(), z.unknown());

const Content = {
  blueprint: z.string().max(MAX_TEXT).describe('The blueprint, as YAML text'),
  /** The blueprint's file name, for messages (`web.yml:3:5: instance.memory: ...`). */
  file: z.string().max(255).optional(),
  files: z.record(z.string().max(1024), z.string().max(MAX_TEXT)).default({}).describe("Every template the blueprint's `initialization` names: its path as written there -> its text"),
  vars: ServiceVars.default({}),
};

/** Its instances are `NAME-INDEX`, DNS labels too: room is left for the index. */
export const ServiceName = Name.refine((n) => n.length <= 58, 'must be at most 58 characters (its instances are NAME-INDEX, at most 63)');

export const ServiceCreate = z
  .object({
    network: Name,
    name: ServiceName,
    ...Content,
    /** Instances (default: the blueprint's `count`, else `placement.availability_zones`). */
    count: z.number().int().min(1).max(1000).optional(),
    /** Place even when fewer zones than `placement.availability_zones` exist; the service carries a warning. */
    force: z.boolean().optional(),
  })
  .strict()
  .meta({ id: 'ServiceCreate' });
export type ServiceCreate = z.input<typeof ServiceCreate>;

export const ServiceUpdate = z.object(Content).strict().meta({ id: 'ServiceUpdate' });
export type ServiceUpdate = z.input<typeof ServiceUpdate>;

export const ServiceScale = z.object({ count: z.number().int().min(0).max(1000) }).strict().meta({ id: 'ServiceScale' });
export const ServiceRollback = z
  .object({ to: z.number().int().min(1).optional().describe('Revision to roll back to (default: the one before the current, or the current when a rollout away from it failed or runs)') })
  .strict()
  .meta({ id: 'ServiceRollback' });

export const ServiceListQuery = z.object({ network: Name.optional() }).strict();

export const ServiceInstance = z.object({
  name: Name,
  index: z.number().int(),
  node: Name.nullable(),
  zone: z.string().nullable(),
  ip: z.string().nullable(),
  state: VmState,
  reason: z.string().nullable(),
  revision: z.number().int(),
});

/**
 * `rollout`: `done` (every instance at `revision`), `rolling` (to `targetRevision`, one
 * instance at a time), `failed` (stopped: `message` names the instance and why; the others are
 * as they were). `state`: `deleting` while its instances go; the service goes with the last.
 */
export const Service = z
  .object({
    name: Name,
    network: Name,
    /** The service's address block inside its network: its instances' addresses. */
    block: z.string(),
    dnsName: z.string(),
    zones: z.number().int(),
    count: z.number().int(),
    state: z.enum(['active', 'deleting']),
    revision: z.number().int(),
    targetRevision: z.number().int(),
    rollout: z.object({ state: z.enum(['done', 'rolling', 'failed']), message: z.string().nullable() }),
    warnings: z.array(z.string()),
    image: Name,
    /** The blueprint of the target revision, as given. */
    blueprint: z.string(),
    instances: z.array(ServiceInstance),
    /** Where paths from CIDRs beyond its network publish it: host ports on every node (issue 14). */
    published: z.array(PublishedEndpoint),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: 'Service' });
export type Service = z.infer<typeof Service>;

/** A revision with what it rolls out (variables included: operators only). */
export const ServiceRevision = z
  .object({
    number: z.number().int(),
    current: z.boolean(),
    target: z.boolean(),
    image: Name,
    imageDigest: z.string(),
    blueprint: z.string(),
    templates: z.array(z.string()),
    vars: ServiceVars,
    createdAt: Timestamp,
  })
  .meta({ id: 'ServiceRevision' });
export type ServiceRevision = z.infer<typeof ServiceRevision>;
