/** API tokens. The secret is shown once, at creation; the store keeps only its hash. */
import { z } from 'zod';
import { Timestamp } from './common.ts';

export const TokenCreate = z
  .object({ role: z.enum(['admin', 'viewer']), description: z.string().max(200).optional() })
  .strict()
  .meta({ id: 'TokenCreate' });

export const Token = z
  .object({
    id: z.string(),
    role: z.enum(['admin', 'viewer', 'node']),
    node: z.string().nullable(),
    description: z.string().nullable(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Token' });
export type Token = z.infer<typeof Token>;

export const TokenCreated = z.object({ token: Token, secret: z.string() }).meta({ id: 'TokenCreated' });
export const TokenParams = z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, 'must be a token id (12 hex digits)') }).strict();
