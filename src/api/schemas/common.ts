/** Shapes shared by every resource: names, sizes, timestamps, list envelopes. */
import { z } from 'zod';
import { parseSize } from '../../core/units.ts';

/** A DNS label (RFC 1123): what a VM's hostname and DNS name will be. */
export const Name = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and "-", not starting or ending with "-"');

/** A size with a unit (`512M`, `2G`); the wire carries the text, the server the bytes. */
export const Size = z.string().refine((s) => parseSize(s) !== undefined, 'must be a size with a unit, e.g. 512M or 2G');

export const Timestamp = z.iso.datetime().describe('ISO-8601 UTC');

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const Revision = z.number().int().nonnegative().describe('global store revision of the last change');

export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), revision: Revision });
}

export const NameParams = z.object({ name: Name }).strict();
export const Empty = z.object({}).strict();

/**
 * An `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): a structured-field string,
 * `"…"`, or the same characters bare (as most clients send it); both name the same key.
 * Visible ASCII without quote or backslash, 1 to 255 of them (a UUID is the usual choice).
 */
export const IdempotencyKey = z
  .string()
  .regex(/^(?:"[\x21\x23-\x5b\x5d-\x7e]{1,255}"|[\x21\x23-\x5b\x5d-\x7e]{1,255})$/, 'must be 1 to 255 visible ASCII characters (no quote or backslash), optionally in double quotes, e.g. a UUID')
  .transform((k) => (k.startsWith('"') ? k.slice(1, -1) : k))
  .describe('A key of your choosing, new for each new request (e.g. a UUID): the same request sent again with it gets the first answer again (`Idempotent-Replayed: true`) instead of making a second thing; kept 24 h, per token. Another request with a used key is refused (422).');

/** The headers of a create route: a retry with the same key is answered, not repeated. */
export const IdempotentHeaders = z.object({ 'Idempotency-Key': IdempotencyKey.optional() });

/** `?force=true` on a delete (see the route's summary for what it forgets). */
export const ForceQuery = z
  .object({ force: z.enum(['true', 'false']).transform((v) => v === 'true').optional() })
  .strict();
