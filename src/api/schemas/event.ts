/** Audit events: every change, who made it, when. */
import { z } from 'zod';
import { Name, Timestamp } from './common.ts';
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

/** The kinds of thing an audit event is about (`Event.resource`): what `resource=` may filter by. */
export const EventResource = z.enum(['vm', 'node', 'network', 'service', 'path', 'image', 'token', 'blob', 'group', 'join-token']);

/** A store revision as a query or header value. */
const RevisionText = z.coerce.number().int().nonnegative();

export const EventsQuery = z
  .object({
    since: z.coerce.number().int().nonnegative().optional().describe('an event id: events after it, oldest first'),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    resource: EventResource.optional().describe('only events about this kind of thing'),
    name: Name.optional().describe('only events about the thing of this name'),
    sinceRevision: RevisionText.optional().describe('a store revision: only events after it (the stream\'s `since`)'),
    last: z.coerce.number().int().min(1).max(1000).optional().describe('only the newest this many (after the other filters), still oldest first'),
  })
  .strict();

export const EventStreamQuery = z
  .object({
    resource: EventResource.optional().describe('only events about this kind of thing'),
    name: Name.optional().describe('only events about the thing of this name'),
    since: RevisionText.optional().describe('a store revision: the stored events after it are sent first, then the live ones; without it (and without `Last-Event-ID`), only live ones'),
  })
  .strict();

export const EventStreamHeaders = z.object({
  'Last-Event-ID': RevisionText.optional().describe('the `id` of the last message received (a store revision), sent by a reconnecting client; wins over `since`'),
});

/** The data of an `event: gap` message: events after `from` were pruned; the oldest kept is at revision `oldest`. */
export const EventGap = z.object({ from: z.number().int(), oldest: z.number().int() }).meta({ id: 'EventGap' });
export type EventGap = z.infer<typeof EventGap>;

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
