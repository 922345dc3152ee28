/**
 * Panel sessions. `POST /v1/sessions` trades an API token for a cookie, `butter_session`:
 * HttpOnly (the page's scripts never see it), Secure, SameSite=Strict (another site's page
 * cannot make the browser send it), Path=/. The cookie holds a random opaque id; the store keeps
 * sha256 of it (`sessions.hash`), the token it stands for, and a CSRF value. A request with the
 * cookie and no Authorization header authenticates as that token; one that is not GET or HEAD
 * must also echo the CSRF value in `x-csrf-token` (compared in constant time), else 403
 * `csrf_failed`: SameSite is the first defence, the header the second (an old browser, a
 * sibling subdomain on the same site).
 *
 * Lifetime: 12 h from sign-in, fixed. Use does not extend it, so a request never costs a write
 * (every write is fsynced); the panel asks for the token again after 12 h. Revoking the token
 * ends its sessions (ON DELETE CASCADE); expired rows are pruned with the Idempotency-Keys.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Session } from '../api/schemas/session.ts';
import type { UserRole } from '../api/schemas/token.ts';
import { actorOf, authenticate, hash, type Principal, type Role, type TokenRows } from './auth.ts';
import type { Db } from './store/db.ts';
import type { Store } from './store/store.ts';

export const SESSION_COOKIE = 'butter_session';
export const SESSION_TTL_MS = 12 * 3600_000;

/** What the cookie carries besides its value (the contract's flags; no Max-Age: the browser drops it when it closes). */
export const COOKIE_OPTIONS = { httpOnly: true, secure: true, sameSite: 'strict', path: '/' } as const;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface SessionRow {
  hash: string;
  token_id: string;
  csrf: string;
  expires_at: string;
  role: Role;
  node: string | null;
}

export class Sessions {
  constructor(private readonly store: Store) {}

  /** Opens a session for `who` (a user token's principal): the cookie's value and the answer's body. */
  open(who: Principal): { cookie: string; session: Session } {
    if (who.role === 'node') throw new ApiError('forbidden', 'a node token may not open a panel session: sign in with a viewer, operator or admin token', 'token');
    const cookie = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    return this.store.write(actorOf(who), (tx) => {
      // Revoked since it was checked: refused as then, not a foreign-key error.
      if (!tx.db.prepare(`SELECT 1 FROM tokens WHERE id = ?`).get(who.tokenId)) throw new ApiError('unauthenticated', 'unknown token', 'token');
      const expiresAt = new Date(Date.parse(tx.now) + SESSION_TTL_MS).toISOString();
      tx.db.prepare(`INSERT INTO sessions (hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`).run(hash(cookie), who.tokenId, csrf, tx.now, expiresAt);
      tx.event('create', 'session', who.tokenId, `${who.role} token ${who.tokenId} signed in to the panel (session until ${expiresAt})`);
      tx.preserveSchedule();
      return { cookie, session: { role: who.role as UserRole, csrf, expiresAt } };
    });
  }

  /** The session's principal (its token's role), or 401 when the cookie names no live session. */
  principal(cookie: string): Principal {
    const row = this.store.db
      .prepare(`SELECT s.hash, s.token_id, s.csrf, s.expires_at, t.role, t.node FROM sessions s JOIN tokens t ON t.id = s.token_id WHERE s.hash = ? AND s.expires_at > ?`)
      .get(hash(cookie), this.store.now()) as SessionRow | undefined;
    if (!row) throw new ApiError('unauthenticated', 'the session has ended (signed out, expired, or its token was revoked): sign in again');
    return { role: row.role, node: row.node, tokenId: row.token_id, session: { hash: row.hash, csrf: row.csrf, expiresAt: row.expires_at } };
  }

  /**
   * The answer of `GET /v1/session`: the live session the cookie names, else null (no cookie,
   * or one whose session ended). Never a 401: a page asking whether it is signed in is not
   * refused anything, so the sign-in page loads without an error.
   */
  current(cookie: string | undefined): Session | null {
    if (!cookie) return null;
    let who: Principal;
    try {
      who = this.principal(cookie);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthenticated') return null;
      throw e;
    }
    return { role: who.role as UserRole, csrf: who.session!.csrf, expiresAt: who.session!.expiresAt };
  }

  end(who: Principal): void {
    const session = who.session;
    if (!session) throw new ApiError('not_found', 'no session: this request was authenticated by its Authorization header, not a session cookie');
    this.store.write(actorOf(who), (tx) => {
      tx.db.prepare(`DELETE FROM sessions WHERE hash = ?`).run(session.hash);
      tx.event('delete', 'session', who.tokenId, `${who.role} token ${who.tokenId} signed out of the panel`);
      tx.preserveSchedule();
    });
  }

  /** Whether `who`'s credential still holds: its session live, else its token not revoked (long-lived sockets ask). */
  stillValid(who: Principal): boolean {
    if (who.session) return this.store.db.prepare(`SELECT 1 FROM sessions WHERE hash = ? AND expires_at > ?`).get(who.session.hash, this.store.now()) !== undefined;
    return this.store.db.prepare(`SELECT 1 FROM tokens WHERE id = ?`).get(who.tokenId) !== undefined;
  }

  /** Deletes expired sessions (lookups ignore them already); no revision, like the key pruner. */
  prune(now: Date): number {
    return this.store.db.prepare(`DELETE FROM sessions WHERE expires_at <= ?`).run(now.toISOString()).changes;
  }
}

/**
 * Who is calling: an Authorization header wins; else the session cookie, with the CSRF check
 * for changing methods; else 401.
 */
export function callerOf(db: Db, sessions: Sessions, req: { method: string; headers: Record<string, string | string[] | undefined>; cookies?: Record<string, string | undefined> }, rows?: TokenRows): Principal {
  const authorization = req.headers.authorization;
  const cookie = req.cookies?.[SESSION_COOKIE];
  if (authorization !== undefined || !cookie) return authenticate(db, typeof authorization === 'string' ? authorization : undefined, rows);
  const who = sessions.principal(cookie);
  if (!SAFE_METHODS.has(req.method) && !sameSecret(who.session!.csrf, req.headers['x-csrf-token'])) {
    throw new ApiError('csrf_failed', 'a request with the session cookie that changes something must carry the session\'s csrf value in header x-csrf-token (GET /v1/session tells it)', 'x-csrf-token');
  }
  return who;
}

/**
 * A WebSocket opened with the session cookie: its Origin must be the control plane's own. The
 * CSRF header cannot ride on a browser's WebSocket, and SameSite does not stop a page of a
 * sibling host on the same site; the Origin the browser sets can (a non-browser client uses a bearer token).
 */
export function checkOrigin(req: { headers: Record<string, string | string[] | undefined>; protocol: string; host: string }): void {
  const given = req.headers.origin;
  const own = originOf(`${req.protocol}://${req.host}`);
  if (typeof given !== 'string' || own === undefined || originOf(given) !== own) {
    throw new ApiError('csrf_failed', `with the session cookie, a WebSocket's Origin must be this control plane's own (${own ?? req.host}), not ${typeof given === 'string' ? given : 'missing'}`, 'origin');
  }
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** Constant-time equality of two secrets of any length (their hashes are compared). */
function sameSecret(expected: string, given: string | string[] | undefined): boolean {
  if (typeof given !== 'string') return false;
  return timingSafeEqual(Buffer.from(hash(expected), 'hex'), Buffer.from(hash(given), 'hex'));
}
