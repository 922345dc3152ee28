/**
 * A network lingers on a node after its last VM there went (server/network-linger.ts): the
 * node is still told it hosts the network (no VM on it) until the linger ends, then not, and
 * its watch wakes; a VM created meanwhile finds it in place; a network deleted meanwhile goes
 * from the node at once. Real control plane, a real agent on the simulated driver.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Agent } from '../src/agent/agent.ts';
import type { NodeDesired } from '../src/api/schemas/desired.ts';
import { simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

const LINGER_MS = 1500;
let cloud: TestCloud;
let agent: Agent;
let stateDir: string;

before(async () => {
  cloud = await startTestCloud({ networkLingerMs: LINGER_MS });
  await uploadImage(cloud.admin, 'img');
  const a = await simAgent(cloud, 'n1');
  agent = a.agent;
  stateDir = a.stateDir;
  await agent.start();
  await until('n1 ready', async () => ((await cloud.admin.call('getNode', { params: { name: 'n1' } })).state === 'ready' ? true : undefined));
});
after(async () => {
  await agent?.stop();
  await cloud?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

const desired = () => cloud.admin.call('nodeDesired', { params: { name: 'n1' }, query: {} }) as Promise<NodeDesired>;
const networksOf = async () => (await desired()).networks.map((n) => n.name).sort();
const running = (name: string) => until(`${name} running`, async () => ((await cloud.admin.call('getVm', { params: { name } })).state === 'running' ? true : undefined));
const gone = (name: string) => until(`${name} gone`, async () => ((await cloud.admin.call('listVms', {})).items.some((v) => v.name === name) ? undefined : true));

test('the last VM gone, its network stays on the node for the linger, then goes and the node is told', async () => {
  await cloud.admin.call('createVm', { body: { name: 'a', image: 'img', memory: '256M' } });
  await running('a');
  await cloud.admin.call('deleteVm', { params: { name: 'a' }, query: {} });
  await gone('a');
  const left = Date.now();
  const d = await desired();
  assert.deepEqual(d.vms, [], 'no VM on the node');
  assert.deepEqual(d.networks.map((n) => n.name), ['default'], 'but its network is still built there');
  // A VM created meanwhile finds it in place.
  await cloud.admin.call('createVm', { body: { name: 'b', image: 'img', memory: '256M' } });
  await running('b');
  await cloud.admin.call('deleteVm', { params: { name: 'b' }, query: {} });
  await gone('b');
  const still = await desired();
  assert.deepEqual(still.networks.map((n) => n.name), ['default'], 'the linger starts again from the last VM gone');
  // The linger ends: the node's desired state drops it, and a watch from before wakes for it.
  const since = still.revision;
  const woke = (await cloud.admin.call('nodeDesired', { params: { name: 'n1' }, query: { since, wait: 30 } })) as NodeDesired & { unchanged?: true };
  assert.ok(!woke.unchanged, 'the watch woke');
  assert.deepEqual(woke.networks, [], 'the network is off the node');
  assert.ok(Date.now() - left >= LINGER_MS, `not before the linger ended (${Date.now() - left} ms)`);
});

test('a network deleted while it lingers goes from the node at once', async () => {
  await cloud.admin.call('createNetwork', { body: { name: 'tmp', cidr: '10.77.0.0/24' } });
  await cloud.admin.call('createVm', { body: { name: 'c', image: 'img', memory: '256M', network: 'tmp' } });
  await running('c');
  await cloud.admin.call('deleteVm', { params: { name: 'c' }, query: {} });
  await gone('c');
  assert.deepEqual(await networksOf(), ['tmp'], 'tmp lingers');
  const before = cloud.cp.services.nodes.desiredRevision('n1');
  await cloud.admin.call('deleteNetwork', { params: { name: 'tmp' } });
  assert.ok(cloud.cp.services.nodes.desiredRevision('n1') > before, 'the node is told in the same write');
  assert.deepEqual(await networksOf(), [], 'and no longer hosts it');
});
