/**
 * Runs the audit log's retention (core/event-retention.ts) against the store: at start, then
 * hourly. Deletes in batches, yielding between them, so a first prune of a big old log never
 * holds the write lock for long. Housekeeping, not a change of the cloud: no revision, no
 * event. A reader following `GET /v1/events?since=` past pruned ids simply gets the oldest kept;
 * the event stream sends a client that resumes from before the last pruned revision a `gap`.
 */
import { eventPrunePlan, type EventRetention } from '../core/event-retention.ts';
import type { Store } from './store/store.ts';

const BATCH = 5_000;

/** The meta row holding the highest revision of a pruned event (absent: nothing pruned since it was kept). */
export const PRUNED_KEY = 'events_pruned_rev';

/** What the pruner logs to: the daemon's pino logger (daemon/logger.ts) satisfies it. */
export interface PrunerLog {
  error(obj: object, msg: string): void;
}

/** Without a daemon's logger (tests, embedders): one JSON line on stderr, as pino would write it. */
export const stderrPrunerLog: PrunerLog = {
  error: (obj, msg) => {
    const errors = (_k: string, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v);
    process.stderr.write(`${JSON.stringify({ level: 50, time: Date.now(), msg, ...obj }, errors)}\n`);
  },
};

/**
 * Prunes now and then every `everyMs`; returns the stop. A failure is only a delay (retried at
 * the next tick), logged as an error; one after the store closed (a prune yielding across
 * `close`) is not a failure.
 */
export function startEventPruner(store: Store, retention: EventRetention, log: PrunerLog, everyMs: number): () => void {
  const prune = () =>
    void pruneEvents(store, retention, new Date()).catch((err: unknown) => {
      if (store.db.open) log.error({ err }, 'pruning the audit log failed (retried at the next prune)');
    });
  prune();
  const timer = setInterval(prune, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Deletes what `retention` no longer keeps; returns how many went. */
export async function pruneEvents(store: Store, retention: EventRetention, now: Date): Promise<number> {
  const newest = (store.db.prepare(`SELECT max(id) AS id FROM events`).get() as { id: number | null }).id ?? 0;
  const plan = eventPrunePlan(retention, now, newest);
  const del = store.db.prepare(`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ? OR at < ? ORDER BY id LIMIT ${BATCH}) RETURNING revision`);
  // The event stream tells a client resuming from before this mark that it missed events (event-stream.ts).
  const mark = store.db.prepare(`INSERT INTO meta (key, value) VALUES ('${PRUNED_KEY}', ?) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`);
  const batch = store.db.transaction(() => {
    const gone = del.all(plan.upToId, plan.before) as { revision: number }[];
    if (gone.length) mark.run(Math.max(...gone.map((g) => g.revision)));
    return gone.length;
  });
  let total = 0;
  for (;;) {
    if (!store.db.open) return total; // closed while yielding
    const n = batch();
    total += n;
    if (n < BATCH) return total;
    await new Promise((r) => setImmediate(r));
  }
}
