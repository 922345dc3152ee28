/** API tokens: issue, list, revoke. Refuses to revoke the last admin token (no lock-out). */
import { ApiError } from '../api/errors.ts';
import type { IssuedRole, Token } from '../api/schemas/token.ts';
import { issueToken, tokenId } from './auth.ts';
import type { Store } from './store/store.ts';

interface TokenRow {
  id: string;
  role: Token['role'];
  node: string | null;
  description: string | null;
  created_at: string;
}

const toApi = (r: TokenRow): Token => ({ id: r.id, role: r.role, node: r.node, description: r.description, createdAt: r.created_at });

export class Tokens {
  constructor(private readonly store: Store) {}

  list(): Token[] {
    return (this.store.db.prepare(`SELECT id, role, node, description, created_at FROM tokens ORDER BY created_at, id`).all() as TokenRow[]).map(toApi);
  }

  create(actor: string, role: IssuedRole, description: string | undefined): { token: Token; secret: string } {
    return this.store.write(actor, (tx) => {
      const secret = issueToken(tx.db, role, null, tx.now, description ?? null);
      const id = tokenId(secret);
      tx.event('create', 'token', id, `${role} token ${id} issued${description ? ` (${description})` : ''}`);
      const row = tx.db.prepare(`SELECT id, role, node, description, created_at FROM tokens WHERE id = ?`).get(id) as TokenRow;
      return { token: toApi(row), secret };
    });
  }

  remove(actor: string, id: string): void {
    this.store.write(actor, (tx) => {
      const row = tx.db.prepare(`SELECT id, role FROM tokens WHERE id = ?`).get(id) as { id: string; role: string } | undefined;
      if (!row) throw new ApiError('not_found', `token ${id} not found`, 'id');
      const admins = (tx.db.prepare(`SELECT COUNT(*) AS n FROM tokens WHERE role = 'admin'`).get() as { n: number }).n;
      if (row.role === 'admin' && admins === 1) throw new ApiError('conflict', 'this is the last admin token: issue another before revoking it', 'id');
      tx.db.prepare(`DELETE FROM tokens WHERE id = ?`).run(id);
      tx.event('delete', 'token', id, `${row.role} token ${id} revoked`);
    });
  }
}
