// A VM's console across a drain: two real agents (simulated driver) over real HTTP. The VM
// keeps its id on the new node, whose console log starts again at byte 0; the control plane
// must append it after what the old node sent, not take it for bytes it already has.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Agent } from '../src/agent/agent.ts';
import { simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
const agents: Agent[] = [];
const dirs: string[] = [];

async function startAgent(name: string): Promise<void> {
  const { agent, stateDir } = await simAgent(cloud, name, { consoleShipMs: 50 });
  dirs.push(stateDir);
  agents.push(agent);
  await agent.start();
}

before(async () => {
  cloud = await startTestCloud();
  await startAgent('n1');
  await uploadImage(cloud.admin, 'img');
});

after(async () => {
  for (const a of agents) await a.stop();
  await cloud?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const logs = async (offset = 0) => cloud.admin.call('vmLogs', { params: { name: 'mover' }, query: { offset } });

test('after a drain, the new node\'s console is appended to the old one\'s, offsets growing', async () => {
  await cloud.admin.call('createVm', { body: { name: 'mover', image: 'img', memory: '128M' } });
  await until('running on n1', async () => ((await cloud.admin.call('getVm', { params: { name: 'mover' } })).state === 'running' ? true : undefined));
  // Make the old node's log much longer than a fresh boot's line (the sim console echoes input).
  const long = 'x'.repeat(2000);
  await cloud.admin.call('vmConsoleInput', { params: { name: 'mover' }, body: { base64: Buffer.from(`old-node ${long}\n`).toString('base64') } });
  const before = await until('old output shipped', async () => {
    const l = await logs();
    return l.data.includes(long) ? l : undefined;
  });

  await startAgent('n2');
  await until('n2 ready', async () => ((await cloud.admin.call('getNode', { params: { name: 'n2' } })).state === 'ready' ? true : undefined));
  const drained = await cloud.admin.call('drainNode', { params: { name: 'n1' }, body: { confirm: true } });
  assert.deepEqual(drained.moved, [{ vm: 'mover', from: 'n1', to: 'n2' }]);
  await until('running on n2', async () => {
    const vm = await cloud.admin.call('getVm', { params: { name: 'mover' } });
    return vm.state === 'running' && vm.node === 'n2' ? true : undefined;
  });
  await cloud.admin.call('vmConsoleInput', { params: { name: 'mover' }, body: { base64: Buffer.from('typed-on-the-new-node\n').toString('base64') } });

  // A follower that had read everything before the drain gets the new node's output next.
  const next = await until('the new node\'s output after the old', async () => {
    const l = await logs(before.offset);
    return l.data.includes('typed-on-the-new-node') ? l : undefined;
  }, 5_000);
  assert.match(next.data, /booted/, 'the new boot line is there too');
  assert.ok(next.offset > before.offset);
  const all = await logs();
  assert.ok(all.data.startsWith(before.data), 'the old node\'s output is kept before it');
});
