/**
 * The browser's session (the session contract): the token is posted once and traded for an
 * HttpOnly cookie the page never sees; the page keeps only the role and the CSRF value, in
 * memory (never localStorage), and learns them again from GET /v1/session on every load.
 */
import type { Session } from '../../../src/api/schemas/session.ts';
import { ButterError, Client } from '../../../src/sdk/client.ts';

export type { Session };

/** A client of the page's own origin with the cookie, and the CSRF header once signed in. */
export function browserClient(): { client: Client; setCsrf: (c: string | undefined) => void } {
  let csrf: string | undefined;
  const client = new Client({ url: location.origin, credentials: 'same-origin', csrf: () => csrf });
  return { client, setCsrf: (c) => (csrf = c) };
}

/** The current session, or undefined when there is none (401). */
export async function currentSession(c: Client): Promise<Session | undefined> {
  try {
    return await c.call('getSession', {});
  } catch (e) {
    if (e instanceof ButterError && e.status === 401) return undefined;
    throw e;
  }
}

export async function signIn(c: Client, token: string): Promise<Session> {
  return c.call('createSession', { body: { token } });
}

export async function signOut(c: Client): Promise<void> {
  await c.call('deleteSession', {});
}
