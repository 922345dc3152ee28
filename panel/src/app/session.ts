/**
 * The browser's session (the session contract): the token is posted once and traded for an
 * HttpOnly cookie the page never sees; the page keeps only the role and the CSRF value, in
 * memory (never localStorage), and learns them again from GET /v1/session on every load.
 */
import type { Session } from '../../../src/api/schemas/session.ts';
import { routes } from '../../../src/api/routes.ts';
import { Client } from '../../../src/sdk/client.ts';

export type { Session };

/**
 * A client of the page's own origin with the cookie, and the CSRF header once signed in.
 * `onEnded` hears of every 401 but the sign-in's own (a wrong token): the session ended while
 * the page was open (expired, signed out elsewhere, its token revoked), whichever call learnt it,
 * the event stream's reconnect included.
 */
export function browserClient(): { client: Client; setCsrf: (c: string | undefined) => void; onEnded: (cb: (() => void) | undefined) => void } {
  let csrf: string | undefined;
  let ended: (() => void) | undefined;
  const signInPath = routes.createSession.path;
  const fetchEnded: typeof fetch = async (input, init) => {
    const res = await globalThis.fetch(input, init);
    if (res.status === 401 && new URL(String(input), location.origin).pathname !== signInPath) ended?.();
    return res;
  };
  const client = new Client({ url: location.origin, credentials: 'same-origin', csrf: () => csrf, fetch: fetchEnded });
  return { client, setCsrf: (c) => (csrf = c), onEnded: (cb) => (ended = cb) };
}

/** The current session, or undefined when there is none (the answer says `session: null`; never a 401). */
export async function currentSession(c: Client): Promise<Session | undefined> {
  return (await c.call('getSession', {})).session ?? undefined;
}

/** What the sign-in form says when a session ended under an open page. */
export const SESSION_ENDED = 'Your session ended (it expired, you signed out elsewhere, or its token was revoked): sign in again.';

export async function signIn(c: Client, token: string): Promise<Session> {
  return c.call('createSession', { body: { token } });
}

export async function signOut(c: Client): Promise<void> {
  await c.call('deleteSession', {});
}
