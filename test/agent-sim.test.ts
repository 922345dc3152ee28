// Control plane + a real agent (simulated driver) + SDK, over real HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let agent: Agent;
let stateDir: string;

const vmState = (name: string, state: string) => async () => {
  const vm = await cloud.admin.call('getVm', { params: { name } }).catch(() => undefined);
  return vm?.state === state ? vm : undefined;
};

before(async () => {
  cloud = await startTestCloud();
  ({ agent, stateDir } = await simAgent(cloud, 'sim-1'));
  await agent.start();
  await uploadImage(cloud.admin, 'img');
});

after(async () => {
  await agent?.stop();
  await cloud?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test('the agent registers capacity and runs what the control plane asks', async () => {
  const node = await cloud.admin.call('getNode', { params: { name: 'sim-1' } });
  assert.equal(node.state, 'ready');
  assert.equal(node.driver, 'sim');
  assert.ok(node.capacity!.memoryBytes > 0);

  await cloud.admin.call('createVm', { body: { name: 'a', image: 'img', memory: '128M' } });
  await until('a running', vmState('a', 'running'));
  const logs = await until('console output', async () => {
    const l = await cloud.admin.call('vmLogs', { params: { name: 'a' } });
    return l.data ? l : undefined;
  });
  assert.match(logs.data, /sim/i);

  // Keystrokes reach the agent on its desired-state watch and come back through the log (the
  // simulated console echoes what is typed).
  await cloud.admin.call('vmConsoleInput', { params: { name: 'a' }, body: { base64: Buffer.from('echo typed-through-the-watch\n').toString('base64') } });
  await until('typed input echoed in the log', async () => ((await cloud.admin.call('vmLogs', { params: { name: 'a' } })).data.includes('typed-through-the-watch') ? true : undefined));

  await cloud.admin.call('stopVm', { params: { name: 'a' } });
  await until('a stopped', vmState('a', 'stopped'));
  await cloud.admin.call('resizeVm', { params: { name: 'a' }, body: { memory: '256M' } });
  const started = await cloud.admin.call('startVm', { params: { name: 'a' } });
  assert.equal(started.memoryBytes, 256 * 1024 ** 2);
  await until('a running again', vmState('a', 'running'));

  await cloud.admin.call('deleteVm', { params: { name: 'a' } });
  await until('a gone', async () => ((await cloud.admin.call('listVms', {})).items.length === 0 ? true : undefined));
  assert.deepEqual(await new SimDriver({ stateDir }).list(), []);
});
