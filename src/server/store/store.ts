/**
 * The store: one SQLite database and a global revision. Every write runs in `write()`,
 * which bumps the revision once, records audit events at that revision, marks the nodes
 * whose desired state changed, and tells waiters after the commit.
 */
import { EventEmitter } from 'node:events';
import { openDb, type Db } from './db.ts';

export interface Tx {
  readonly db: Db;
  readonly revision: number;
  readonly now: string;
  event(action: string, resource: string, name: string, message: string): void;
  /** The node's agent must look again: its desired state changed at this revision. */
  touchNode(node: string | null): void;
}

export class Store {
  readonly db: Db;
  /** Emits `node:<name>` when a node's desired state changes and `logs:<vmId>` on console output. */
  readonly changes = new EventEmitter();

  constructor(
    file: string,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.db = openDb(file);
    this.changes.setMaxListeners(0);
  }

  revision(): number {
    return (this.db.prepare(`SELECT value FROM meta WHERE key = 'revision'`).get() as { value: number }).value;
  }

  now(): string {
    return this.clock().toISOString();
  }

  write<T>(actor: string, fn: (tx: Tx) => T): T {
    const touched = new Set<string>();
    const result = this.db.transaction(() => {
      const revision = this.revision() + 1;
      this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'revision'`).run(revision);
      const now = this.now();
      const insertEvent = this.db.prepare(`INSERT INTO events (at, actor, action, resource, name, message, revision) VALUES (?, ?, ?, ?, ?, ?, ?)`);
      const tx: Tx = {
        db: this.db,
        revision,
        now,
        event: (action, resource, name, message) => insertEvent.run(now, actor, action, resource, name, message, revision),
        touchNode: (node) => {
          if (node) touched.add(node);
        },
      };
      const out = fn(tx);
      const bump = this.db.prepare(`UPDATE nodes SET desired_rev = ? WHERE name = ?`);
      for (const n of touched) bump.run(revision, n);
      return out;
    })();
    for (const n of touched) this.changes.emit(`node:${n}`);
    return result;
  }

  close(): void {
    this.db.close();
  }
}
