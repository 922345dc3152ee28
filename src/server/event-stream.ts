/**
 * `GET /v1/events/stream`: the audit log as server-sent events. A stream first replays the
 * stored events after the client's revision, then follows the store's commits. One hub listens
 * to `store.changes` 'commit' and reads the new events once per commit for every stream.
 *
 * Why no event is lost or sent twice: better-sqlite3 is synchronous and a commit emits 'commit'
 * synchronously after its transaction, so the replay (one SELECT) and the hub's position
 * (`last`) can never straddle a commit. A message's `id:` is the store revision, set only on the
 * last message of that revision, so a client cut off in the middle of a revision resumes
 * (`Last-Event-ID`) before it and gets the whole revision again (the SDK skips the event ids it
 * already yielded).
 *
 * Bounded: each stream's unsent bytes are counted; a client that stops reading is dropped with
 * one log line once they pass `maxBufferedBytes`, so it cannot grow the server's memory.
 */
import { PassThrough } from 'node:stream';
import type { Event, EventGap } from '../api/schemas/event.ts';
import { formatSse } from '../core/sse.ts';
import { PRUNED_KEY } from './event-pruner.ts';
import type { Store } from './store/store.ts';

export interface EventStreamOptions {
  /** A comment line this often, so proxies and clients see the connection alive (15 s). */
  keepaliveMs?: number;
  /** Unsent bytes a stream may hold before its client counts as stalled and is dropped (1 MiB). */
  maxBufferedBytes?: number;
  /** Where a dropped stream is told of (the daemon's pino logger; stderr by default). */
  log?: { warn(obj: object, msg: string): void };
}

export interface StreamFilter {
  resource?: string | undefined;
  name?: string | undefined;
}

const KEEPALIVE_MS = 15_000;
const MAX_BUFFERED = 1024 * 1024;

const stderrLog = {
  warn: (obj: object, msg: string) => process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), msg, ...obj })}\n`),
};


interface Subscriber {
  filter: StreamFilter;
  out: PassThrough;
  who: string;
  /** Whether the caller's credential still holds (its session live, its token not revoked): asked at every commit and keepalive. */
  valid: () => boolean;
}

export class EventStreams {
  private readonly subs = new Set<Subscriber>();
  /** The newest revision whose events the hub has read (valid while anyone listens). */
  private last = 0;
  private readonly keepaliveMs: number;
  private readonly maxBuffered: number;
  private readonly log: { warn(obj: object, msg: string): void };
  private keepalive: NodeJS.Timeout | undefined;
  private readonly onCommit = () => this.fanOut();

  constructor(
    private readonly store: Store,
    opts: EventStreamOptions = {},
  ) {
    this.keepaliveMs = opts.keepaliveMs ?? KEEPALIVE_MS;
    this.maxBuffered = opts.maxBufferedBytes ?? MAX_BUFFERED;
    this.log = opts.log ?? stderrLog;
  }

  /** Streams open now. */
  get size(): number {
    return this.subs.size;
  }

  /**
   * A new stream from revision `from` (undefined: only what happens from now on). The caller
   * sends the returned stream as the response body; destroying it (the client went away) ends
   * the subscription.
   */
  open(from: number | undefined, filter: StreamFilter, who: string, valid: () => boolean = () => true): PassThrough {
    const out = new PassThrough();
    const sub: Subscriber = { filter, out, who, valid };
    const now = this.store.revision();
    // A first line at once: headers go out with the first byte, and the client knows it is in.
    out.write(': stream open\n\n');
    if (from !== undefined) {
      const gap = this.gap(from, now);
      if (gap) out.write(formatSse({ event: 'gap', data: JSON.stringify(gap) }));
    }
    if (from !== undefined && from < now) {
      const rows = this.store.db.prepare(`SELECT * FROM events WHERE revision > ? AND revision <= ? ORDER BY id`).all(from, now) as Event[];
      this.send(sub, rows);
    }
    // The client has all it asked for up to `now` (filtered out or not there): an id-only
    // message (dispatched to nobody, but remembered as the last event id, as EventSource does)
    // lets it resume from here, not from an older revision or, for a live-only stream, from nothing.
    if (from !== now) out.write(`id: ${now}\n\n`);
    if (this.subs.size === 0) {
      this.last = now;
      this.store.changes.on('commit', this.onCommit);
      this.keepalive = setInterval(() => this.ping(), this.keepaliveMs);
      this.keepalive.unref();
    }
    this.subs.add(sub);
    out.once('close', () => this.drop(sub));
    return out;
  }

  /**
   * A stream whose credential ended (signed out, expired, token revoked) is ended before it is
   * sent anything more: its client reconnects, gets the 401 and knows (the panel signs out).
   */
  private holds(sub: Subscriber): boolean {
    if (sub.valid()) return true;
    this.drop(sub);
    sub.out.end();
    return false;
  }

  /** Ends every stream (the control plane is closing): clients see a clean end and reconnect. */
  closeAll(): void {
    for (const sub of [...this.subs]) {
      this.drop(sub);
      sub.out.end();
    }
  }

  private drop(sub: Subscriber): void {
    if (!this.subs.delete(sub) || this.subs.size > 0) return;
    this.store.changes.off('commit', this.onCommit);
    clearInterval(this.keepalive);
  }

  /** Whether events after `from` were pruned (or `from` is not this store's): then the client must reload full state. */
  private gap(from: number, now: number): EventGap | undefined {
    const pruned = (this.store.db.prepare(`SELECT value FROM meta WHERE key = ?`).get(PRUNED_KEY) as { value: number } | undefined)?.value;
    const oldest = (this.store.db.prepare(`SELECT min(id) AS id, min(revision) AS revision FROM events`).get() as { id: number | null; revision: number | null });
    const oldestRev = oldest.revision ?? now;
    // A log pruned by a version that kept no mark: the first event (id 1) gone says something was.
    const prunedThrough = pruned ?? (oldest.id !== null && oldest.id > 1 ? oldestRev : 0);
    // A revision this store never reached: another (reinstalled) control plane's; start afresh.
    return from < prunedThrough || from > now ? { from, oldest: oldestRev } : undefined;
  }

  private fanOut(): void {
    if (!this.store.db.open) return;
    const rows = this.store.db.prepare(`SELECT * FROM events WHERE revision > ? ORDER BY id`).all(this.last) as Event[];
    if (rows.length === 0) return;
    this.last = rows[rows.length - 1]!.revision;
    for (const sub of [...this.subs]) if (this.holds(sub)) this.send(sub, rows);
  }

  /** The rows `sub` wants, each one message; `id:` on the last it gets of each revision. */
  private send(sub: Subscriber, rows: Event[]): void {
    const mine = rows.filter((e) => (sub.filter.resource === undefined || e.resource === sub.filter.resource) && (sub.filter.name === undefined || e.name === sub.filter.name));
    if (mine.length === 0) return;
    let text = '';
    mine.forEach((e, i) => {
      const lastOfRevision = i === mine.length - 1 || mine[i + 1]!.revision !== e.revision;
      text += formatSse({ event: 'audit', data: JSON.stringify(e), ...(lastOfRevision ? { id: String(e.revision) } : {}) });
    });
    this.write(sub, text);
  }

  private ping(): void {
    for (const sub of [...this.subs]) if (this.holds(sub)) this.write(sub, ': keepalive\n\n');
  }

  private write(sub: Subscriber, text: string): void {
    if (sub.out.destroyed) return;
    sub.out.write(text);
    // What the client has not taken yet: both halves of the pass-through (the response's own
    // buffer and the socket's are bounded by their high-water marks, since pipe() waits on them).
    const buffered = sub.out.writableLength + sub.out.readableLength;
    if (buffered > this.maxBuffered) {
      this.log.warn({ who: sub.who, bufferedBytes: buffered, maxBufferedBytes: this.maxBuffered }, 'event stream dropped: its client stopped reading (it may reconnect with Last-Event-ID)');
      this.drop(sub);
      sub.out.destroy();
    }
  }
}
