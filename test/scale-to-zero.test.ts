/**
 * Scale to zero (issue 16) through the real control plane and a real agent with the simulated
 * driver: `idleStop` in the API and the VM view, its refusals (naming `idleStop`, nothing
 * left behind), a VM suspended by its agent after its idle time (power stays `running`, reason
 * `idle for …`, event `idle-suspend`) and not resumed by the reconcile, traffic keeping it up,
 * a user's `vm resume` waking it, a user's `vm suspend` and `vm stop` taking over.
 * The taps' counters are the test's (AgentOptions.tapBytes): no real tap here.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Agent } from '../src/agent/agent.ts';
import type { NodeDesired } from '../src/api/schemas/desired.ts';
import { rejects, simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let agent: Agent;
let stateDir: string;
/** Bytes "on the taps" of each VM (by tap name): the test moves them to make traffic. */
const traffic = new Map<string, number>();
before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  ({ agent, stateDir } = await simAgent(cloud, 'n1', { tapBytes: async (taps) => taps.reduce((a, t) => a + (traffic.get(t) ?? 0), 0) }));
  await agent.start();
});
after(async () => {
  await agent?.stop();
  await cloud.close();
  rmSync(stateDir, { recursive: true, force: true });
});

const a = () => cloud.admin;
const get = (name: string) => a().call('getVm', { params: { name } });
const inState = (name: string, state: string, ms?: number) => until(`${name} ${state}`, async () => ((await get(name)).state === state ? true : undefined), ms);
const actions = async (name: string) => (await a().call('listEvents', { query: { resource: 'vm', name } })).items.map((e) => e.action);
const tapOf = (id: string) => `bt${id}`.slice(0, 15);

test('idleStop: bad durations are refused naming the field, and nothing is made', async () => {
  for (const bad of ['10', 'soon', '1.5m', '0s', '5d', '4s', ' 10m']) {
    await rejects(a().call('createVm', { body: { name: 'nope', image: 'img', idleStop: bad } }), 400, 'idleStop');
  }
  await rejects(a().call('createVm', { body: { name: 'nope', image: 'img', idleStop: 10 as never } }), 400, 'idleStop');
  await rejects(get('nope'), 404, 'name');
});

test('a VM with idleStop is suspended by its agent after that long without traffic, power still running, and held there', async () => {
  const plain = await a().call('createVm', { body: { name: 'plain', image: 'img' } });
  assert.equal(plain.idleStop, null);
  const vm = await a().call('createVm', { body: { name: 'sleepy', image: 'img', idleStop: '5s' } });
  assert.equal(vm.idleStop, '5s');
  await inState('sleepy', 'running');
  // Traffic keeps it up: its counters move for 8 s, longer than its idle time.
  const end = Date.now() + 8000;
  while (Date.now() < end) {
    traffic.set(tapOf(vm.id), (traffic.get(tapOf(vm.id)) ?? 0) + 100);
    assert.equal((await get('sleepy')).state, 'running', 'not suspended while its taps see traffic');
    await new Promise((r) => setTimeout(r, 250));
  }
  // Then quiet: suspended by the agent.
  await inState('sleepy', 'suspended', 20_000);
  const s = await get('sleepy');
  assert.equal(s.power, 'running', 'an idle suspend is not a user suspend');
  assert.equal(s.reason, 'idle for 5s');
  assert.ok((await actions('sleepy')).includes('idle-suspend'), (await actions('sleepy')).join(','));
  assert.equal((await get('plain')).state, 'running', 'a VM without idleStop is never suspended');
  // The reconcile does not resume it by itself (a desired change makes the agent reconcile now).
  await a().call('createVm', { body: { name: 'poke', image: 'img' } });
  await inState('poke', 'running');
  assert.equal((await get('sleepy')).state, 'suspended');
});

test("a user's vm resume wakes it (and it is watched again); vm suspend then takes over, vm stop discards", async () => {
  await a().call('resumeVm', { params: { name: 'sleepy' } });
  await inState('sleepy', 'running');
  assert.equal((await get('sleepy')).reason, null);
  // Watched again after its wake: idle once more, suspended once more.
  await inState('sleepy', 'suspended', 20_000);
  assert.equal((await get('sleepy')).reason, 'idle for 5s');
  assert.equal((await actions('sleepy')).filter((x) => x === 'idle-suspend').length, 2);

  // A user's suspend of it: power suspended, nothing wakes it but a resume.
  const u = await a().call('suspendVm', { params: { name: 'sleepy' }, body: {} });
  assert.equal(u.power, 'suspended');
  await until('reason cleared', async () => ((await get('sleepy')).reason === null ? true : undefined));
  assert.equal((await get('sleepy')).state, 'suspended');
  await a().call('resumeVm', { params: { name: 'sleepy' } });
  await inState('sleepy', 'running');
  await inState('sleepy', 'suspended', 20_000);
  await a().call('stopVm', { params: { name: 'sleepy' } });
  await inState('sleepy', 'stopped');
});

test('a service scaled to zero: its sleeping instance stays in its DNS answer and its published backends; service show says suspended', async () => {
  const blueprint = 'network: { subnetwork_max_instance_count: 8 }\ninstance: { memory: 256M, cpus: 1, public_ip: true, idle_stop: 5s }\nimage: { name: img }\ncount: 1\n';
  await a().call('createService', { body: { network: 'default', name: 'nap', blueprint, files: {}, vars: {} } });
  await a().call('createPath', { body: { from: '0.0.0.0/0', to: 'nap', ports: '80' } });
  const inst = await until('nap running', async () => {
    const s = await a().call('getService', { params: { name: 'nap' } });
    return s.instances[0]?.state === 'running' ? s.instances[0] : undefined;
  });
  const asleep = await until('nap asleep', async () => {
    const s = await a().call('getService', { params: { name: 'nap' } });
    return s.instances[0]?.state === 'suspended' ? s.instances[0] : undefined;
  }, 20_000);
  assert.equal(asleep.reason, 'idle for 5s');
  const desired = (await a().call('nodeDesired', { params: { name: 'n1' }, query: {} })) as NodeDesired;
  const dns = desired.networks.find((n) => n.name === 'default')!.services!.find((s) => s.name === 'nap')!;
  assert.deepEqual(dns.ips, [inst.ip], 'its DNS name still answers the sleeping instance: a connection wakes it');
  const pub = (desired.published ?? []).find((p) => p.service === 'nap');
  assert.deepEqual(pub?.backends.map((b) => b.ip), [inst.ip], 'its published port still leads to it');
  const graph = await a().call('getGraph', {});
  const node = graph.nodes.find((n) => n.id === 'service:nap')!;
  assert.deepEqual(node.instances, { running: 0, total: 1, suspended: 1 }, 'the graph: suspended, not down');
});
