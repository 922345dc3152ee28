/**
 * Where the panel's live events come from: the SDK's event stream (src/sdk/events.ts), from
 * the store revision at sign-in on. Pages load their data after that, so whatever changed in
 * between arrives as an event too (a refetch too many, never one too few).
 */
import type { Client } from '../../../src/sdk/client.ts';
import { EventVerbs } from '../../../src/sdk/events.ts';
import type { EventSource } from './events.ts';

export function eventSource(client: Client): EventSource {
  return async function* (signal) {
    const { revision } = await client.call('health', {});
    yield* new EventVerbs(client).stream({ since: revision, signal });
  };
}
