/**
 * Paths (issue 14): who may reach a service's instances. `from` is a service of the same
 * network or a CIDR (`0.0.0.0/0`: the internet); `ports` is the CLI's syntax (`80`,
 * `8000-8100`, `53/udp`), parsed by core/paths/model.ts (`parsePortSpec`) on the server, so the
 * errors name the field. A CIDR path that reaches beyond the network's own CIDR publishes
 * the service on every node (`hostPorts`).
 */
import { z } from 'zod';
import { Name, Timestamp } from './common.ts';

export const PathId = z.string().regex(/^[0-9a-f]{12}$/, 'must be a path id (12 hex digits, as `path list` shows)');
export const PathParams = z.object({ id: PathId }).strict();

/** A service name, or a CIDR (anything with a `.`, `/` or `:`: a service name has none). */
const From = z.string().min(1).max(64).describe('A service of the same network, or a CIDR (`0.0.0.0/0` is the internet)');
const Ports = z.string().min(1).max(20).describe('`PORT`, `LO-HI`, either with `/tcp` (the default) or `/udp`');

export const PathCreate = z
  .object({
    /** Default: the network of `to`. */
    network: Name.optional(),
    from: From,
    to: Name,
    ports: Ports,
    /** For a path that publishes (from a CIDR beyond the network): the first host port (default: the first port). */
    hostPort: z.number().int().min(1).max(65535).optional(),
  })
  .strict()
  .meta({ id: 'PathCreate' });
export type PathCreate = z.infer<typeof PathCreate>;

/** `DELETE /v1/paths?from=&to=&ports=`: the path saying exactly that. */
export const PathMatch = z.object({ network: Name.optional(), from: From, to: Name, ports: Ports }).strict();
export type PathMatch = z.infer<typeof PathMatch>;

export const PathListQuery = z.object({ network: Name.optional(), service: Name.optional().describe('Only paths from or to this service') }).strict();

export const PathSource = z.union([z.object({ service: Name }).strict(), z.object({ cidr: z.string() }).strict()]);

export const Path = z
  .object({
    id: PathId,
    network: Name,
    from: PathSource,
    to: Name,
    proto: z.enum(['tcp', 'udp']),
    /** Inclusive; a single port is `[p, p]`. */
    ports: z.tuple([z.number().int(), z.number().int()]),
    /** Where a publishing path's service is reached on every node (null: it publishes nothing). */
    hostPorts: z.tuple([z.number().int(), z.number().int()]).nullable(),
    /** `FROM -> TO:PORTS/PROTO`, as `path list` prints it. */
    text: z.string(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Path' });
export type Path = z.infer<typeof Path>;

const Bool = z.enum(['1', 'true', '0', 'false']).transform((v) => v === '1' || v === 'true');

/** `GET /v1/paths/check`: `from` (a service or CIDR) or `internet=1`, `to`, `port` (`80`, `53/udp`). */
export const PathCheckQuery = z
  .object({
    from: From.optional(),
    internet: Bool.optional().describe('Ask for the internet (0.0.0.0/0) instead of `from`'),
    to: Name,
    port: z.string().min(1).max(20).describe('`PORT`, optionally `/tcp` or `/udp`'),
    proto: z.enum(['tcp', 'udp']).optional().describe('Default: tcp (or what `port` says)'),
  })
  .strict();

export const PathCheck = z
  .object({
    allowed: z.boolean(),
    network: Name,
    from: PathSource,
    to: Name,
    proto: z.enum(['tcp', 'udp']),
    port: z.number().int(),
    /** When allowed: a path that admits it (the first of `paths` that covers FROM alone, if one does). */
    path: Path.nullable(),
    /** Every path that admits some of FROM (several together when none covers it alone). */
    paths: z.array(Path),
    /** When denied: why, in words (no path allows it; only part of FROM is allowed, by which). */
    reason: z.string().nullable(),
  })
  .meta({ id: 'PathCheck' });
export type PathCheck = z.infer<typeof PathCheck>;

/** A service's published endpoint, as `service show` lists it. */
export const PublishedEndpoint = z.object({
  proto: z.enum(['tcp', 'udp']),
  ports: z.tuple([z.number().int(), z.number().int()]),
  hostPorts: z.tuple([z.number().int(), z.number().int()]),
  /** Who may connect: the publishing paths' CIDRs. */
  sources: z.array(z.string()),
  /** The nodes' own addresses it is reached on (every node; an address when its agent reported one). */
  nodes: z.array(z.object({ node: Name, address: z.string().nullable() })),
});
export type PublishedEndpoint = z.infer<typeof PublishedEndpoint>;
