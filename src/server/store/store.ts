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

/** Writes per group commit: enough to amortise the fsync, few enough to keep latency flat. */
const MAX_BATCH = 256;

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

class NothingWritten extends Error {
  constructor(readonly outcomes: Outcome[]) {
    super('nothing written');
  }
}

export class Store {
  readonly db: Db;
  /**
   * Emits `node:<name>` when a node's desired state changes, `logs:<vmId>` on console output,
   * and `commit` after every committed write (the rollout controller's wake-up).
   */
  readonly changes = new EventEmitter();
  /** Bumped by every committed write that may change placement; see `Tx.preserveSchedule`. */
  scheduleGen = 0;
  /**
   * Bumped by every committed write, in memory (the revision is a row): what was read from the
   * store at one value holds while it stays the same. The writes outside `write()` (the
   * liveness flush, the pruners) touch only report times, audit events and expired keys.
   */
  commits = 0;

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
    const [r] = this.commit([{ actor, fn }], false);
    if (!r!.ok) throw r!.error;
    return r!.value as T;
  }

  /**
   * Group commit: writes queued in the same turn of the event loop share one transaction and
   * one fsync, each in its own savepoint so one failing write does not undo the others. Each
   * promise settles only after the commit: acknowledged still means durable.
   */
  writeQueued<T>(actor: string, fn: (tx: Tx) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ actor, fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private queue: { actor: string; fn: (tx: Tx) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];

  private flush(): void {
    const items = this.queue.splice(0, MAX_BATCH);
    if (this.queue.length) setImmediate(() => this.flush());
    let results: Outcome[];
    try {
      results = this.commit(items, true);
    } catch (e) {
      results = items.map(() => ({ ok: false, error: e }));
    }
    items.forEach((item, i) => {
      const r = results[i]!;
      if (r.ok) item.resolve(r.value);
      else item.reject(r.error);
    });
  }

  /** One transaction for `items`; with `isolate`, each runs in a savepoint of its own. */
  private commit(items: { actor: string; fn: (tx: Tx) => unknown }[], isolate: boolean): Outcome[] {
    const touched = new Set<string>();
    let preserves = true;
    let outcomes: Outcome[] = [];
    try {
      outcomes = this.db.transaction(() => {
        const revision = this.revision() + 1;
        this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'revision'`).run(revision);
        const now = this.now();
        const insertEvent = this.db.prepare(`INSERT INTO events (at, actor, action, resource, name, message, revision) VALUES (?, ?, ?, ?, ?, ?, ?)`);
        const out = items.map(({ actor, fn }): Outcome => {
          let preserved = false;
          const mine = new Set<string>();
          const tx: Tx = {
            db: this.db,
            revision,
            now,
            event: (action, resource, name, message) => insertEvent.run(now, actor, action, resource, name, message, revision),
            touchNode: (node) => {
              if (node) mine.add(node);
            },
            preserveSchedule: () => {
              preserved = true;
            },
          };
          if (!isolate) {
            const value = fn(tx); // a throw aborts the whole (single) transaction
            return keep(value);
          }
          try {
            return keep(this.db.transaction(() => fn(tx))());
          } catch (error) {
            return { ok: false, error };
          }
          function keep(value: unknown): Outcome {
            for (const n of mine) touched.add(n);
            if (!preserved) preserves = false;
            return { ok: true, value };
          }
        });
        // Nothing succeeded: roll back, so a refused write leaves not even a revision behind.
        if (out.every((o) => !o.ok)) throw new NothingWritten(out);
        const bump = this.db.prepare(`UPDATE nodes SET desired_rev = ? WHERE name = ?`);
        for (const n of touched) bump.run(revision, n);
        return out;
      })();
    } catch (e) {
      if (e instanceof NothingWritten) return e.outcomes;
      // Rolled back: whatever a writer patched in memory for it is suspect.
      this.scheduleGen++;
      throw e;
    }
    if (!preserves) this.scheduleGen++;
    this.commits++;
    for (const n of touched) this.changes.emit(`node:${n}`);
    this.changes.emit('commit');
    return outcomes;
  }

  close(): void {
    this.db.close();
  }
}
