/**
 * Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) on the create routes: a client
 * that lost a create's answer and sends the request again with the same key gets the same
 * answer (`Idempotent-Replayed: true`), not a 409 for the name it took the first time.
 *
 * The key is the caller's: scoped to its token. What is kept per (token, key): the route, a
 * fingerprint of the request (sha256 of its body, keys sorted), the answer's status and body,
 * and when. It is written in the transaction that creates the thing, so either both are
 * durable or neither; a refused create keeps nothing (nothing was made: trying again is fine).
 * Keys expire after `KEY_TTL_MS` (then a retry is a new request) and are pruned.
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Db } from './store/db.ts';
import type { Store, Tx } from './store/store.ts';

/** How long an answer is kept for a retry: a client retries in seconds to minutes, not days. */
export const KEY_TTL_MS = 24 * 3600_000;

/** One request that carries a key: who, which key, which route, and what it asked. */
export interface Once {
  scope: string;
  key: string;
  route: string;
  fingerprint: string;
  /** The status a success answers with (the route's). */
  status?: number;
}

export interface StoredAnswer {
  status: number;
  response: string;
}

/**
 * Thrown inside a write when its key was already used for this very request (by an earlier
 * write of the same group commit, or one committed since the check before the write): the write
 * is undone, and the caller answers the stored response instead.
 */
export class Replayed extends Error {
  constructor(readonly answer: StoredAnswer) {
    super('replayed');
    this.name = 'Replayed';
  }
}

/** The request's fingerprint: sha256 of its body as canonical JSON (object keys sorted). */
export function fingerprint(body: unknown): string {
  return createHash('sha256').update(canonical(body) ?? 'null').digest('hex');
}

function canonical(v: unknown): string | undefined {
  if (Array.isArray(v)) return `[${v.map((x) => canonical(x) ?? 'null').join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const cutoff = (now: string): string => new Date(Date.parse(now) - KEY_TTL_MS).toISOString();

/**
 * The answer kept for `once`, if its key is live; a key used for a different request (another
 * body or another route) is refused, naming the header, as the draft asks (422).
 */
export function findAnswer(db: Db, once: Once, now: string): StoredAnswer | undefined {
  const row = db
    .prepare(`SELECT route, fingerprint, status, response FROM idempotency_keys WHERE token_id = ? AND key = ? AND created_at > ?`)
    .get(once.scope, once.key, cutoff(now)) as { route: string; fingerprint: string; status: number; response: string } | undefined;
  if (!row) return undefined;
  if (row.route !== once.route || row.fingerprint !== once.fingerprint) {
    throw new ApiError('key_reused', `this Idempotency-Key was used for a different request in the last ${KEY_TTL_MS / 3600_000} h; send a new key for a new request`, 'Idempotency-Key');
  }
  return { status: row.status, response: row.response };
}

/**
 * `fn` made idempotent by `once` (unchanged without a key): inside the write, a key already
 * answered throws `Replayed`; otherwise `fn` runs and its answer is kept with the key, in the
 * same transaction (and savepoint) as what `fn` wrote.
 */
export function idempotent<T>(once: Once | undefined, fn: (tx: Tx) => T): (tx: Tx) => T {
  if (!once) return fn;
  return (tx) => {
    const answer = findAnswer(tx.db, once, tx.now);
    if (answer) throw new Replayed(answer);
    const value = fn(tx);
    // An expired row may still hold the key until the next prune: replace it.
    tx.db
      .prepare(`INSERT OR REPLACE INTO idempotency_keys (token_id, key, route, fingerprint, status, response, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(once.scope, once.key, once.route, once.fingerprint, once.status ?? 201, JSON.stringify(value), tx.now);
    return value;
  };
}

export class IdempotencyKeys {
  constructor(private readonly store: Store) {}

  /** The check before a request is handled: its kept answer, or undefined (then the write checks again). */
  find(once: Once): StoredAnswer | undefined {
    return findAnswer(this.store.db, once, this.store.now());
  }

  /** Deletes expired keys. Not a revision: nothing any node or client watches changed. */
  prune(now: Date): number {
    return this.store.db.prepare(`DELETE FROM idempotency_keys WHERE created_at <= ?`).run(cutoff(now.toISOString())).changes;
  }
}
