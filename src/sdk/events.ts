/**
 * Live events: `GET /v1/events/stream` as an async iterable, which reconnects by itself. No
 * Node import: it reads the answer's web stream with a TextDecoder, so the web panel uses it
 * as the CLI does.
 *
 * Resuming: every message with an `id:` (the store revision, set on the last message of each
 * revision) moves the resume point; a dropped connection, or a control plane that restarted,
 * is opened again with `Last-Event-ID`, and the server replays what came after from the audit
 * log. A connection cut in the middle of a revision resumes before it, so that revision comes
 * again: the events already yielded are skipped by their ids, which only grow.
 */
import type { Event, EventGap } from '../api/schemas/event.ts';
import type { Client } from './client.ts';
import { ButterError } from './client.ts';
import { SseParser } from '../core/sse.ts';

/** What a stream yields: an audit event, or word that events were pruned (reload the full state). */
export type LiveEvent = Event | { gap: EventGap };

export interface EventStreamOptions {
  /** A store revision: the stored events after it come first. Without it, only what happens from now on. */
  since?: number;
  /** Only events about this kind of thing (`vm`, `node`, `network`, …). */
  resource?: 'vm' | 'node' | 'network' | 'service' | 'path' | 'image' | 'token' | 'blob' | 'group' | 'join-token';
  /** Only events about the thing of this name. */
  name?: string;
  /** Ends the stream (the iteration returns). */
  signal?: AbortSignal;
  /** Told of each reconnect, with what ended the last connection. */
  onReconnect?: (why: unknown, delayMs: number) => void;
  /** The first wait before a reconnect (doubling after each failed attempt). */
  minDelayMs?: number;
  /** The longest wait between reconnects. */
  maxDelayMs?: number;
}

const MIN_DELAY_MS = 250;
const MAX_DELAY_MS = 10_000;

/** Answers that no retry can change: bad query, bad or too weak a token. */
const permanent = (e: unknown): boolean => e instanceof ButterError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429;

export class EventVerbs {
  constructor(private readonly client: Client) {}

  /** Every change, live, as it is committed; resumes by itself after a dropped connection. */
  stream(opts: EventStreamOptions = {}): AsyncIterable<LiveEvent> {
    return { [Symbol.asyncIterator]: () => follow(this.client, opts)[Symbol.asyncIterator]() };
  }
}

async function* follow(client: Client, opts: EventStreamOptions): AsyncGenerator<LiveEvent> {
  const min = opts.minDelayMs ?? MIN_DELAY_MS;
  const max = opts.maxDelayMs ?? MAX_DELAY_MS;
  let resume = opts.since === undefined ? undefined : String(opts.since);
  let lastEventId = -1;
  let delay = min;
  const query = { ...(opts.resource ? { resource: opts.resource } : {}), ...(opts.name ? { name: opts.name } : {}) };
  while (!opts.signal?.aborted) {
    // Our own abort, so an iteration ended early (break, return) lets go of the connection.
    const ac = new AbortController();
    const stop = () => ac.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', stop, { once: true });
    let why: unknown = new Error('the control plane ended the stream');
    try {
      const res = await client.open('streamEvents', { query, ...(resume !== undefined ? { headers: { 'last-event-id': resume } } : {}) }, ac.signal);
      delay = min; // connected: the next drop starts the backoff afresh
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const m of parser.push(decoder.decode(value, { stream: true }))) {
          if (m.event === 'audit') {
            const e = JSON.parse(m.data) as Event;
            if (e.id > lastEventId) {
              lastEventId = e.id;
              yield e;
            }
          } else if (m.event === 'gap') yield { gap: JSON.parse(m.data) as EventGap };
          if (m.id !== undefined) resume = m.id;
        }
        // An id-only message (no data, never dispatched) moves the resume point too.
        if (parser.lastEventId) resume = parser.lastEventId;
      }
    } catch (e) {
      if (opts.signal?.aborted) return;
      if (permanent(e)) throw e;
      why = e;
    } finally {
      opts.signal?.removeEventListener('abort', stop);
      ac.abort();
    }
    // Up to half the wait taken off at random: clients cut off together do not return together.
    const wait = delay - Math.random() * (delay / 2);
    opts.onReconnect?.(why, wait);
    delay = Math.min(max, delay * 2);
    if (!(await sleep(wait, opts.signal))) return;
  }
}

/** Whether the wait ran out (false: aborted). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
