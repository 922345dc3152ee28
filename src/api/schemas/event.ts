/** Audit events: every change, who made it, when. */
import { z } from 'zod';
import { Timestamp } from './common.ts';
import { Role } from './token.ts';

export const Event = z
  .object({
    id: z.number().int(),
    at: Timestamp,
    actor: z.string(),
    action: z.string(),
    resource: z.string(),
    name: z.string(),
    message: z.string(),
    revision: z.number().int(),
  })
  .meta({ id: 'Event' });
export type Event = z.infer<typeof Event>;

export const EventsQuery = z
  .object({
    since: z.coerce.number().int().nonnegative().optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();

export const Health = z.object({ ok: z.boolean(), version: z.string(), revision: z.number().int() }).meta({ id: 'Health' });
export const Whoami = z
  .object({
    role: Role,
    node: z.string().nullable(),
    tls: z
      .object({
        caHash: z.string().describe("sha256 of the CA's public key, the value agents and the CLI pin"),
        caNotAfter: Timestamp.describe('when the CA expires; it is never replaced automatically (every machine would have to join again)'),
        certNotAfter: Timestamp.describe('when the server certificate being served expires; it is renewed while running, 30 days before'),
      })
      .nullable()
      .describe('the control plane\'s certificates; null over plain HTTP'),
  })
  .meta({ id: 'Whoami' });
