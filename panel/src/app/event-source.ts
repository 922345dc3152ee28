/** Where the panel's live events come from: the SDK's event stream (src/sdk/events.ts). */
import type { Client } from '../../../src/sdk/client.ts';
import type { AuditEvent, EventSource } from './events.ts';

// Until the i15-events branch (client.events.stream) is merged, no events arrive.
export function eventSource(_client: Client): EventSource {
  return (signal) => ({
    [Symbol.asyncIterator]: () => ({
      next: () => new Promise<IteratorResult<AuditEvent>>((r) => signal.addEventListener('abort', () => r({ done: true, value: undefined }))),
    }),
  });
}
