/** Joining a machine to the cluster: a short-lived, single-use join token, traded for a node credential. */
import { z } from 'zod';
import { Name, Timestamp } from './common.ts';
import { Node } from './node.ts';

/** Durations like `30m`, `1h`, `24h`, `7d`. */
export const Ttl = z.string().regex(/^[1-9][0-9]*[smhd]$/, 'must be a duration like 30m, 1h or 7d');

export const JoinTokenCreate = z
  .object({ ttl: Ttl.default('1h'), group: Name.optional(), zone: Name.optional() })
  .strict()
  .meta({ id: 'JoinTokenCreate' });

export const JoinToken = z
  .object({
    id: z.string(),
    group: Name,
    zone: Name,
    expiresAt: Timestamp,
    usedAt: Timestamp.nullable(),
    usedBy: Name.nullable(),
    createdAt: Timestamp,
  })
  .meta({ id: 'JoinToken' });

export const JoinTokenCreated = z
  .object({
    joinToken: JoinToken,
    /** Shown once; only its hash is kept. */
    token: z.string(),
    /** What `butter agent --join` pins: sha256 of the CA's public key. */
    caHash: z.string().nullable(),
  })
  .meta({ id: 'JoinTokenCreated' });

export const JoinRequest = z
  .object({
    name: Name,
    /** Optional: labels the node starts with. */
    labels: z.record(z.string(), z.string()).optional(),
  })
  .strict()
  .meta({ id: 'JoinRequest' });

export const Joined = z.object({ node: Node, token: z.string() }).meta({ id: 'Joined' });

