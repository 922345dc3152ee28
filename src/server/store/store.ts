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
  /**
   * This write changes nothing the scheduler's cached view depends on (or patches that view
   * itself). Writes that do not say so invalidate the view: the safe default.
   */
  preserveSchedule(): void;
}

export class Store {
  readonly db: Db;
  /** Emits `node:<name>` when a node's desired state changes and `logs:<vmId>` on console output. */
  readonly changes = new EventEmitter();
  /** Bumped by every committed write that may change placement; see `Tx.preserveSchedule`. */
  scheduleGen = 0;

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
    let preserves = false;
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
        preserveSchedule: () => {
          preserves = true;
        },
      };
      const out = fn(tx);
      const bump = this.db.prepare(`UPDATE nodes SET desired_rev = ? WHERE name = ?`);
      for (const n of touched) bump.run(revision, n);
      return out;
    })();
    if (!preserves) this.scheduleGen++;
    for (const n of touched) this.changes.emit(`node:${n}`);
    return result;
  }

  close(): void {
    this.db.close();
  }
}
