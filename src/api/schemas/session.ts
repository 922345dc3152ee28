/**
 * Panel sessions: a browser trades an API token for an HTTP-only cookie once, so the token
 * never sits in the page's storage. The cookie authenticates as the token; changing requests
 * also carry the session's CSRF value (`x-csrf-token`), which only the panel's own pages can read.
 */
import { z } from 'zod';
import { Timestamp } from './common.ts';
import { USER_ROLES } from './token.ts';

export const SessionCreate = z
  .object({ token: z.string().min(1, 'must not be empty').max(200).describe('an API token (`bt_…`) of a viewer, operator or admin') })
  .strict()
  .meta({ id: 'SessionCreate' });

export const Session = z
  .object({
    role: z.enum(USER_ROLES),
    csrf: z.string().describe('send it as header `x-csrf-token` with every request that is not GET or HEAD'),
    expiresAt: Timestamp.describe('the session ends then (12 h after sign-in), whatever its use'),
  })
  .meta({ id: 'Session' });
export type Session = z.infer<typeof Session>;

/** `GET /v1/session`: the session the request's cookie names, or null (not signed in, or it ended). */
export const SessionState = z
  .object({ session: Session.nullable().describe('null: the request carries no cookie of a live session (never signed in, signed out, expired, or its token revoked)') })
  .meta({ id: 'SessionState' });
export type SessionState = z.infer<typeof SessionState>;
