import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../api/schemas/event.ts';
import { formatSse } from '../core/sse.ts';
import { ButterError, type Client } from './client.ts';
import { EventVerbs, type LiveEvent } from './events.ts';

const ev = (id: number, revision: number): Event => ({ id, revision, at: '2026-01-01T00:00:00.000Z', actor: 'admin:x', action: 'create', resource: 'vm', name: `vm-${id}`, message: '' });
const msg = (e: Event, last: boolean) => formatSse({ event: 'audit', data: JSON.stringify(e), ...(last ? { id: String(e.revision) } : {}) });

/** A client whose stream answers are scripted: each connection yields its chunks, then ends (or fails). */
function scripted(answers: (string[] | Error)[]): { client: Client; asked: (string | undefined)[] } {
  const asked: (string | undefined)[] = [];
  const client = {
    open: async (_id: string, args: { headers?: Record<string, string> }) => {
      asked.push(args.headers?.['last-event-id']);
      const a = answers.shift() ?? new ButterError(503, 'unavailable', 'no more answers scripted');
      if (a instanceof Error) throw a;
      const enc = new TextEncoder();
      return new Response(new ReadableStream({ start: (c) => (a.forEach((chunk) => c.enqueue(enc.encode(chunk))), c.close()) }));
    },
  } as unknown as Client;
  return { client, asked };
}

async function take(it: AsyncIterable<LiveEvent>, n: number): Promise<LiveEvent[]> {
  const out: LiveEvent[] = [];
  for await (const x of it) if (out.push(x) >= n) break;
  return out;
}

test('a connection cut inside a revision resumes before it, and the events already yielded are not repeated', async () => {
  const { client, asked } = scripted([
    // revision 5 (one event), then revision 6 cut after its first of two events
    [msg(ev(1, 5), true), msg(ev(2, 6), false).slice(0, 10), msg(ev(2, 6), false).slice(10)],
    new TypeError('fetch failed'), // the control plane is restarting
    [msg(ev(2, 6), false), msg(ev(3, 6), true), 'id: 8\n\n'],
    [msg(ev(4, 9), true)],
  ]);
  const got = await take(new EventVerbs(client).stream({ since: 4, minDelayMs: 1, maxDelayMs: 2 }), 4);
  assert.deepEqual(got.map((e) => (e as Event).id), [1, 2, 3, 4]);
  assert.deepEqual(asked, ['4', '5', '5', '8'], 'Last-Event-ID: the since, then the last id seen (an id-only message counts)');
});

test('a connection cut after a message\'s id line but before its end resumes before that message', async () => {
  const last = msg(ev(3, 6), true);
  const { client, asked } = scripted([
    [msg(ev(1, 5), true), msg(ev(2, 6), false), last.slice(0, -1)], // the blank line never came
    [msg(ev(2, 6), false), last],
  ]);
  const got = await take(new EventVerbs(client).stream({ since: 4, minDelayMs: 1 }), 3);
  assert.deepEqual(got.map((e) => (e as Event).id), [1, 2, 3]);
  assert.deepEqual(asked, ['4', '5']);
});

test('a refusal (4xx) ends the stream with its error; no retry could change it', async () => {
  const { client, asked } = scripted([new ButterError(403, 'forbidden', 'a node token needs a viewer')]);
  await assert.rejects(take(new EventVerbs(client).stream(), 1), /needs a viewer/);
  assert.equal(asked.length, 1);
});

test('the backoff doubles up to its cap, and an abort ends the iteration', async () => {
  const waits: number[] = [];
  const { client } = scripted([new TypeError('refused'), new TypeError('refused'), new TypeError('refused'), new TypeError('refused'), new TypeError('refused')]);
  const ac = new AbortController();
  const it = new EventVerbs(client).stream({
    minDelayMs: 4,
    maxDelayMs: 16,
    signal: ac.signal,
    onReconnect: (_why, ms) => {
      waits.push(ms);
      if (waits.length === 5) ac.abort();
    },
  });
  assert.deepEqual(await take(it, 1), []);
  // Each wait is the step's delay less up to half of it at random: 4, 8, 16, 16, 16.
  [4, 8, 16, 16, 16].forEach((d, i) => assert.ok(waits[i]! <= d && waits[i]! >= d / 2, `wait ${i}: ${waits[i]} for ${d}`));
});
