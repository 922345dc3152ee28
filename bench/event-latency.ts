/**
 * Live events (issue 15): a change committed → its SSE message received by a Node SDK client
 * (`client.events.stream`, HTTP/2 over TLS on loopback) of a separate `butter server` process.
 * Each round creates a token (one audit event, one revision) and waits for its message before
 * the next, so no message waits behind another. Two clocks, both of this machine: from the
 * event's own `at` (taken in the committing transaction) and from sending the API call.
 */
import type { Event } from '../src/api/schemas/event.ts';
import { EventVerbs } from '../src/sdk/events.ts';
import { startServerProcess } from './server-process.ts';
import { percentile, round } from './stats.ts';

export interface EventLatencyResult {
  changes: number;
  transport: 'https' | 'http';
  /** From the event's commit (`Event.at`, millisecond resolution) to the SDK yielding it. */
  commit: { p50Ms: number; p99Ms: number; maxMs: number };
  /** From sending the API call that made the change to the SDK yielding its event. */
  call: { p50Ms: number; p99Ms: number; maxMs: number };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50Ms: round(percentile(s, 50), 1), p99Ms: round(percentile(s, 99), 1), maxMs: round(s.at(-1) ?? NaN, 1) };
};

export async function benchEventLatency(changes = 500, log: (m: string) => void = () => {}): Promise<EventLatencyResult> {
  const server = await startServerProcess();
  const ac = new AbortController();
  try {
    const it = new EventVerbs(server.admin).stream({ resource: 'token', signal: ac.signal })[Symbol.asyncIterator]();
    // The stream is open once a first change comes through it.
    const warm = server.admin.call('createToken', { body: { role: 'viewer', description: 'warm-up' } });
    for (;;) {
      const r = await it.next();
      if (r.done) throw new Error('the event stream ended');
      if ((r.value as Event).message.includes('warm-up')) break;
    }
    await warm;
    const fromCommit: number[] = [];
    const fromCall: number[] = [];
    for (let i = 0; i < changes; i++) {
      const description = `bench-${i}`;
      const sent = performance.now();
      const call = server.admin.call('createToken', { body: { role: 'viewer', description } });
      for (;;) {
        const r = await it.next();
        if (r.done) throw new Error('the event stream ended');
        const e = r.value as Event;
        if (!e.message.includes(`(${description})`)) continue;
        const now = performance.now();
        fromCommit.push(Date.now() - Date.parse(e.at));
        fromCall.push(now - sent);
        break;
      }
      await call;
      if ((i + 1) % 100 === 0) log(`${i + 1}/${changes} changes`);
    }
    await it.return?.();
    return { changes, transport: server.transport, commit: stats(fromCommit), call: stats(fromCall) };
  } finally {
    ac.abort();
    await server.stop();
  }
}
