/**
 * The browser's session (the session contract): the token is posted once and traded for an
 * HttpOnly cookie the page never sees; the page keeps only the role and the CSRF token, in
 * memory (never localStorage), and learns them again from GET /v1/session on every load.
 */
import { ButterError, Client } from '../../../src/sdk/client.ts';
import type { UserRole } from './roles.ts';

export interface Session {
  role: UserRole;
  csrf: string;
  expiresAt: string;
}

/** A client of the page's own origin with the cookie, and the CSRF header once signed in. */
export function browserClient(): { client: Client; setCsrf: (c: string | undefined) => void } {
  let csrf: string | undefined;
  const client = new Client({ url: location.origin, credentials: 'same-origin', csrf: () => csrf });
  return { client, setCsrf: (c) => (csrf = c) };
}

// The session routes come from the i15-session branch; until it is merged they are called by id.
type Untyped = (id: string, args: object) => Promise<unknown>;
const call = (c: Client, id: string, args: object = {}) => (c.call as unknown as Untyped).call(c, id, args);

/** The current session, or undefined when there is none (401). */
export async function currentSession(c: Client): Promise<Session | undefined> {
  try {
    return (await call(c, 'getSession')) as Session;
  } catch (e) {
    if (e instanceof ButterError && e.status === 401) return undefined;
    throw e;
  }
}

export async function signIn(c: Client, token: string): Promise<Session> {
  return (await call(c, 'createSession', { body: { token } })) as Session;
}

export async function signOut(c: Client): Promise<void> {
  await call(c, 'deleteSession');
}
