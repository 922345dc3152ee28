/**
 * The live audit events, one stream for the whole page: pages subscribe with a filter and get
 * each matching event; a `gap` (events pruned while we were away) goes to every subscriber so
 * it reloads its state in full.
 */
import { useContext, useEffect, useRef } from 'preact/hooks';
import type { Event } from '../../../src/api/schemas/event.ts';
import { PanelContext } from './context.ts';

export type AuditEvent = Event;
export interface EventFilter {
  resource?: string;
  name?: string;
}
/** What a subscriber gets: an event, or `{ gap: true }` when it must refetch everything. */
export type EventMessage = { event: AuditEvent } | { gap: true };
export type EventSource = (signal: AbortSignal) => AsyncIterable<AuditEvent | { gap: unknown }>;

type Listener = { filter: EventFilter; cb: (m: EventMessage) => void };

export class EventHub {
  private readonly listeners = new Set<Listener>();
  private abort: AbortController | undefined;

  /** Starts at once (at sign-in), before any page loads its data: see event-source.ts. */
  constructor(private readonly source: EventSource) {
    this.start();
  }

  subscribe(filter: EventFilter, cb: (m: EventMessage) => void): () => void {
    const l = { filter, cb };
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  /** Ends the stream (sign out). */
  close(): void {
    this.abort?.abort();
    this.abort = undefined;
  }

  private start(): void {
    if (this.abort) return;
    const abort = (this.abort = new AbortController());
    void (async () => {
      try {
        for await (const m of this.source(abort.signal)) {
          const msg: EventMessage = 'gap' in m ? { gap: true } : { event: m };
          for (const l of [...this.listeners]) if ('gap' in msg || matches(l.filter, msg.event)) l.cb(msg);
        }
      } catch (e) {
        if (!abort.signal.aborted) console.warn('event stream ended', e);
      }
    })();
  }
}

function matches(f: EventFilter, e: AuditEvent): boolean {
  return (f.resource === undefined || f.resource === e.resource) && (f.name === undefined || f.name === e.name);
}

/**
 * Calls `cb` for every live event matching `filter` while the component is mounted. `cb` may
 * change on every render (it is read through a ref); the subscription follows the filter.
 */
export function useEvents(filter: EventFilter, cb: (m: EventMessage) => void): void {
  const { events } = useContext(PanelContext);
  const ref = useRef(cb);
  ref.current = cb;
  useEffect(() => events.subscribe(filter, (m) => ref.current(m)), [events, filter.resource, filter.name]);
}
