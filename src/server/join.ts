/**
 * Join tokens: `bj_<id>_<secret>`, hashed at rest, single use, with an expiry. A machine
 * trades one (over HTTPS, having pinned the CA) for its node's own credential and never needs
 * it again. Expired, used or unknown tokens are refused, each with its own message.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Node } from '../api/schemas/node.ts';
import { issueToken } from './auth.ts';
import type { Nodes } from './nodes.ts';
import type { Db } from './store/db.ts';
import type { Store } from './store/store.ts';

interface JoinTokenRow {
  id: string;
  hash: string;
  node_group: string;
  zone: string;
  expires_at: string;
  used_at: string | null;
  used_by: string | null;
  created_at: string;
}

export interface JoinTokenView {
  id: string;
  group: string;
  zone: string;
  expiresAt: string;
  usedAt: string | null;
  usedBy: string | null;
  createdAt: string;
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MAX_TTL_MS = 7 * UNIT_MS.d;

export function ttlMs(ttl: string): number {
  return Number(ttl.slice(0, -1)) * UNIT_MS[ttl.slice(-1) as keyof typeof UNIT_MS];
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');
const view = (r: JoinTokenRow): JoinTokenView => ({ id: r.id, group: r.node_group, zone: r.zone, expiresAt: r.expires_at, usedAt: r.used_at, usedBy: r.used_by, createdAt: r.created_at });

const JOIN_BEARER = /^Bearer bj_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/;

function parseJoinBearer(header: string | undefined): { id: string; secret: string } {
  const m = JOIN_BEARER.exec(header ?? '');
  if (!m) throw new ApiError('unauthenticated', 'a join needs a join token (bj_…) as the bearer token');
  return { id: m[1]!, secret: m[2]! };
}

/**
 * The join token in the Authorization header, if it may still be spent; else unauthenticated.
 * The HTTP layer asks before it reads the body, and `join` asks again in its transaction.
 */
export function checkJoinToken(db: Db, header: string | undefined, now: string): JoinTokenRow {
  const { id, secret } = parseJoinBearer(header);
  const row = db.prepare(`SELECT * FROM join_tokens WHERE id = ?`).get(id) as JoinTokenRow | undefined;
  if (!row || !timingSafeEqual(Buffer.from(hash(secret), 'hex'), Buffer.from(row.hash, 'hex'))) throw new ApiError('unauthenticated', 'unknown join token');
  if (row.used_at) throw new ApiError('unauthenticated', `join token ${row.id} was already used (by node ${row.used_by}); issue a new one with \`butter node token create\``);
  if (row.expires_at <= now) throw new ApiError('unauthenticated', `join token ${row.id} expired at ${row.expires_at}; issue a new one with \`butter node token create\``);
  return row;
}

export class JoinTokens {
  constructor(
    private readonly store: Store,
    private readonly nodes: Nodes,
  ) {}

  create(actor: string, req: { ttl: string; group?: string | undefined; zone?: string | undefined }): { joinToken: JoinTokenView; token: string } {
    const ms = ttlMs(req.ttl);
    if (ms > MAX_TTL_MS) throw new ApiError('invalid', 'ttl: at most 7d', 'ttl');
    return this.store.write(actor, (tx) => {
      const id = randomBytes(6).toString('hex');
      const secret = randomBytes(24).toString('base64url');
      const row: JoinTokenRow = { id, hash: hash(secret), node_group: req.group ?? 'default', zone: req.zone ?? 'default', expires_at: new Date(Date.parse(tx.now) + ms).toISOString(), used_at: null, used_by: null, created_at: tx.now };
      tx.db.prepare(`INSERT INTO join_tokens (id, hash, node_group, zone, expires_at, used_at, used_by, created_at) VALUES (@id, @hash, @node_group, @zone, @expires_at, @used_at, @used_by, @created_at)`).run(row);
      tx.event('create', 'join-token', id, `join token ${id} for group ${row.node_group}, zone ${row.zone}, valid until ${row.expires_at}`);
      return { joinToken: view(row), token: `bj_${id}_${secret}` };
    });
  }

  list(): JoinTokenView[] {
    return (this.store.db.prepare(`SELECT * FROM join_tokens ORDER BY created_at`).all() as JoinTokenRow[]).map(view);
  }

  /** Spends the join token in the Authorization header on a new node named `name`. */
  join(header: string | undefined, name: string, labels: Record<string, string> | undefined): { node: Node; token: string } {
    const { id } = parseJoinBearer(header);
    return this.store.write(`join:${id}`, (tx) => {
      const row = checkJoinToken(tx.db, header, tx.now);
      if (tx.db.prepare(`SELECT 1 FROM nodes WHERE name = ?`).get(name)) throw new ApiError('conflict', `node ${name} already exists; join under another --name`, 'name');
      tx.db
        .prepare(`INSERT INTO nodes (name, state, created_at, desired_rev, node_group, zone, labels) VALUES (?, 'new', ?, ?, ?, ?, ?)`)
        .run(name, tx.now, tx.revision, row.node_group, row.zone, JSON.stringify(labels ?? {}));
      const token = issueToken(tx.db, 'node', name, tx.now);
      tx.db.prepare(`UPDATE join_tokens SET used_at = ?, used_by = ? WHERE id = ?`).run(tx.now, name, row.id);
      tx.event('join', 'node', name, `node ${name} joined with join token ${row.id} (group ${row.node_group}, zone ${row.zone})`);
      return { node: this.nodes.get(name), token };
    });
  }
}
