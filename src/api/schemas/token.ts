/** API tokens. The secret is shown once, at creation; the store keeps only its hash. */
import { z } from 'zod';
import { Timestamp } from './common.ts';

/**
 * The roles of the tokens made through `/v1/tokens`, least first: each may do all the ones
 * before it may. `viewer` sees the state of the cloud but no secret (user-data, console
 * output, image bytes, tokens); `operator` also runs workloads (VMs, networks, images);
 * `admin` also manages the infrastructure and identities (nodes, groups, join tokens, tokens).
 */
export const USER_ROLES = ['viewer', 'operator', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];
/**
 * The roles `POST /v1/tokens` issues: the user roles, and `metrics`, which is outside their
 * order: it may read `/metrics` (the control plane's and the agents') and nothing else, so a
 * Prometheus server's token reads no state, let alone a secret.
 */
export const ISSUED_ROLES = [...USER_ROLES, 'metrics'] as const;
export type IssuedRole = (typeof ISSUED_ROLES)[number];
/** Every token's role: a `node` token is made with its node and acts only for it. */
export const Role = z.enum([...ISSUED_ROLES, 'node']);
export type Role = z.infer<typeof Role>;

export const TokenCreate = z
  .object({ role: z.enum(ISSUED_ROLES), description: z.string().max(200).optional() })
  .strict()
  .meta({ id: 'TokenCreate' });

export const Token = z
  .object({
    id: z.string(),
    role: Role,
    node: z.string().nullable(),
    description: z.string().nullable(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Token' });
export type Token = z.infer<typeof Token>;

export const TokenCreated = z.object({ token: Token, secret: z.string() }).meta({ id: 'TokenCreated' });
export const TokenParams = z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, 'must be a token id (12 hex digits)') }).strict();
