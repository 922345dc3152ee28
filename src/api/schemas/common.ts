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
