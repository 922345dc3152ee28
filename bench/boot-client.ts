/**
 * Figure (a), Butter side, the part that must run inside Butter's network namespace (the
 * API listens there): create one VM through the SDK, wait until it is `running` (the guest
 * fetched its metadata), then print the VM's audit events and client-side times as JSON.
 *
 *   ip netns exec NS node --import tsx bench/boot-client.ts '{"url":...,"token":...,"vm":{...}}'
 */
import { Client } from '../src/sdk/client.ts';
import type { Event } from '../src/api/schemas/event.ts';
import type { VmCreate } from '../src/api/schemas/vm.ts';

export interface BootClientInput {
  url: string;
  token: string;
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

const input = JSON.parse(process.argv[2] ?? '') as BootClientInput;
const c = new Client({ url: input.url, token: input.token });
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
const out: BootClientOutput = { id: created.id, sentAt, ackAt, runningSeenAt, state: vm.state, reason: vm.reason, events };
process.stdout.write(JSON.stringify(out) + '\n');
