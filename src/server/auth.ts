/**
 * Bearer tokens: `bt_<id>_<secret>`. Only sha256(secret) is stored; the id finds the row,
 * a constant-time compare checks the secret.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import { WHO_MAY_CALL, type Access } from '../api/routes.ts';
import { Role, USER_ROLES, type UserRole } from '../api/schemas/token.ts';
import type { Db } from './store/db.ts';

export type { Role };
export interface Principal {
  role: Role;
  node: string | null;
  tokenId: string;
  /** Set when the caller came with a panel session cookie instead of an Authorization header (sessions.ts). */
  session?: SessionRef;
}

/** A session as the request that used it needs it: which row, its CSRF value, its end. */
export interface SessionRef {
  hash: string;
  csrf: string;
  expiresAt: string;
}

export const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

/**
 * The one writer of tokens: it checks the role, which the table does not (a CHECK constraint
 * there would cost a copy of the table for every new role: see the migrations).
 */
export function issueToken(db: Db, role: Role, node: string | null, now: string, description: string | null = null): string {
  if (!Role.safeParse(role).success) throw new Error(`unknown role ${JSON.stringify(role)}: a token's role is one of ${Role.options.join(', ')}`);
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(24).toString('base64url');
  db.prepare(`INSERT INTO tokens (id, hash, role, node, description, created_at) VALUES (?, ?, ?, ?, ?, ?)`).run(id, hash(secret), role, node, description, now);
  return `bt_${id}_${secret}`;
}

/** The id part of a token, for audit events and listings. */
export function tokenId(token: string): string {
  return token.slice(3, 15);
}

/** A token's stored row, by its id. */
export interface TokenRow {
  id: string;
  hash: string;
  role: Role;
  node: string | null;
}
export type TokenRows = (id: string) => TokenRow | undefined;

const readTokenRow = (db: Db, id: string) => db.prepare(`SELECT id, hash, role, node FROM tokens WHERE id = ?`).get(id) as TokenRow | undefined;

/**
 * Token rows kept between writes: a token is made, changed and revoked only by a write, so a
 * row read since the last commit is still the row. Saves a query on most requests (an agent's
 * heartbeat every 5 s, 1,000 agents). Only tokens that exist are kept: made-up ids are read
 * each time, and never fill memory.
 */
export function cachedTokenRows(store: { readonly db: Db; readonly commits: number }): TokenRows {
  let at = -1;
  const rows = new Map<string, TokenRow>();
  return (id) => {
    if (at !== store.commits) {
      rows.clear();
      at = store.commits;
    }
    let row = rows.get(id);
    if (!row && (row = readTokenRow(store.db, id))) rows.set(id, row);
    return row;
  };
}

export function authenticate(db: Db, header: string | undefined, rows?: TokenRows): Principal {
  const m = /^Bearer (.*)$/.exec(header ?? '');
  if (!m) throw new ApiError('unauthenticated', 'missing or malformed bearer token');
  return tokenPrincipal(db, m[1]!, rows);
}

/** Who a token's text (`bt_<id>_<secret>`) stands for; 401 for anything but a live token. */
export function tokenPrincipal(db: Db, token: string, rows: TokenRows = (id) => readTokenRow(db, id)): Principal {
  const m = /^bt_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/.exec(token);
  if (!m) throw new ApiError('unauthenticated', 'missing or malformed bearer token');
  const row = rows(m[1]!);
  const given = Buffer.from(hash(m[2]!), 'hex');
  if (!row || !timingSafeEqual(given, Buffer.from(row.hash, 'hex'))) throw new ApiError('unauthenticated', 'unknown token');
  return { role: row.role, node: row.node, tokenId: row.id };
}

/** A user role's place in USER_ROLES (least first); a node or metrics token has none (-1). */
const rank = (role: Role): number => USER_ROLES.indexOf(role as UserRole);

/**
 * The one place that decides whether `who` may call a route with access `access` (whose
 * path names node `pathNode`, for `node` routes). Called before anything else looks at the
 * request: its params, query and body.
 */
export function authorize(who: Principal, access: Access, pathNode: string | undefined): void {
  if (access === 'public' || access === 'join' || access === 'any' || who.role === 'admin') return;
  // A metrics token reads /metrics and nothing else; no other role reads /metrics (but admin).
  if (access === 'metrics' && who.role === 'metrics') return;
  if (access === 'node' && who.role === 'node' && who.node === pathNode) return;
  if (access === 'blob' && (who.role === 'node' || rank(who.role) >= rank('operator'))) return;
  if (access !== 'node' && access !== 'blob' && access !== 'metrics' && rank(who.role) >= 0 && rank(who.role) >= rank(access)) return;
  throw new ApiError('forbidden', `${/^[aeiou]/.test(who.role) ? 'an' : 'a'} ${who.role} token may not call this route: it needs ${WHO_MAY_CALL[access]}`);
}

export function actorOf(who: Principal): string {
  return who.role === 'node' ? `node:${who.node}` : `${who.role}:${who.tokenId}`;
}
