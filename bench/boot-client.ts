/**
 * Figure (a), Butter side, the part that must run inside Butter's network namespace (the
 * API listens there): create one VM through the SDK, wait until it is `running` (the guest
 * fetched its metadata), then print the VM's audit events and client-side times as JSON.
 *
 *   BOOT_CLIENT_INPUT='{"url":...,"token":...,"vm":{...}}' ip netns exec NS node --import tsx bench/boot-client.ts
 *
 * The input comes in the environment, not argv, so the admin token shows in no process list.
 * A failure is one line on stderr and exit status 1.
 */
import { Client } from '../src/sdk/node-client.ts';
import { clientOptions } from './server-process.ts';
import type { Event } from '../src/api/schemas/event.ts';
import type { VmCreate } from '../src/api/schemas/vm.ts';

export interface BootClientInput {
  url: string;
  token: string;
  /** The control plane's CA (PEM) when it speaks HTTPS. */
  ca?: string;
  vm: VmCreate;
  timeoutMs: number;
  pollMs: number;
}

export interface BootClientOutput {
  id: string;
  /** Epoch ms just before the create request was sent, and when its answer arrived. */
  sentAt: number;
  ackAt: number;
  /** Epoch ms when polling first saw `running` (resolution: pollMs). */
  runningSeenAt: number;
  state: string;
  reason: string | null;
  events: Pick<Event, 'at' | 'action' | 'message'>[];
}

async function main(input: BootClientInput): Promise<BootClientOutput> {
  const c = new Client(clientOptions(input.url, input.token, input.ca));
  const sentAt = Date.now();
  const created = await c.call('createVm', { body: input.vm });
  const ackAt = Date.now();
  const deadline = sentAt + input.timeoutMs;
  let vm = created;
  while (vm.state !== 'running' && vm.state !== 'error' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, input.pollMs));
    vm = await c.call('getVm', { params: { name: input.vm.name } });
  }
  const runningSeenAt = Date.now();
  const events: BootClientOutput['events'] = [];
  for (let since = 0; ; ) {
    const page = await c.call('listEvents', { query: { since, limit: 1000 } });
    for (const e of page.items) if (e.resource === 'vm' && e.name === input.vm.name) events.push({ at: e.at, action: e.action, message: e.message });
    if (page.items.length < 1000) break;
    since = page.items[page.items.length - 1]!.id;
  }
  return { id: created.id, sentAt, ackAt, runningSeenAt, state: vm.state, reason: vm.reason, events };
}

try {
  const out = await main(JSON.parse(process.env.BOOT_CLIENT_INPUT ?? '') as BootClientInput);
  process.stdout.write(JSON.stringify(out) + '\n');
} catch (e) {
  const err = e as Error & { cause?: { message?: string } };
  process.stderr.write(`${err.message}${err.cause?.message ? `: ${err.cause.message}` : ''}\n`);
  process.exitCode = 1;
}
