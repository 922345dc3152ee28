// The SDK's service verbs (src/sdk/services.ts) against a real control plane with real agents
// on the simulated driver in two zones: a blueprint from a path (templates read relative to
// it) and as text, get/list/getInstances, scale, update, rollback, history, destroy, and waits
// that end in an error naming the failing instance.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { Butter } from '../src/sdk/connect.ts';
import { ButterError } from '../src/sdk/client.ts';
import { ServiceNotSettled } from '../src/sdk/services.ts';
import { simAgent, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let butter: Butter;
let dir: string;
const agents: Agent[] = [];
const stateDirs: string[] = [];

// A revision asking for 300M is a broken one: its instances fail to start.
const BROKEN_MIB = 300;
const blueprint = (memory = '256M') => `network: { subnetwork_max_instance_count: 16 }
placement: { availability_zones: 2 }
instance: { memory: ${memory}, cpus: 1 }
image: { name: img }
initialization:
  - path: scripts/hello.sh
    vars: { Greeting: { required: true } }
`;
const HELLO = '#!/bin/sh\necho "{{ Greeting }} from {{ service }} #{{ index }}"\n';

before(async () => {
  cloud = await startTestCloud();
  butter = new Butter({ url: cloud.url, token: cloud.cp.adminToken! });
  dir = mkdtempSync(join(tmpdir(), 'butter-sdk-svc-'));
  await uploadImage(cloud.admin, 'img');
  for (const [name, zone] of [
    ['e1', 'east'],
    ['w1', 'west'],
  ] as const) {
    const driverDir = join(dir, `driver-${name}`);
    mkdirSync(driverDir);
    const { agent, stateDir } = await simAgent(cloud, name, {
      driver: new SimDriver({ stateDir: driverDir, failStart: (spec) => (spec.memoryMiB === BROKEN_MIB ? 'simulated boot failure' : undefined) }),
      capacity: { cpus: 8, memoryBytes: 16 * 1024 ** 3, diskBytes: 200 * 1024 ** 3 },
    });
    await cloud.admin.call('updateNode', { params: { name }, body: { zone } });
    await agent.start();
    agents.push(agent);
    stateDirs.push(stateDir);
  }
  mkdirSync(join(dir, 'web', 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'web', 'blueprint.yml'), blueprint());
  writeFileSync(join(dir, 'web', 'scripts', 'hello.sh'), HELLO);
});

after(async () => {
  for (const a of agents) await a.stop();
  await cloud?.close();
  for (const d of [dir, ...stateDirs]) if (d) rmSync(d, { recursive: true, force: true });
});

const userData = async (vm: string) => (await butter.call('getUserData', { params: { name: vm } })).userData;

test('create from a blueprint path reads its templates relative to it; get, list and getInstances see it', async () => {
  const net = await butter.network.create('apps', { cidr: '10.60.0.0/16' });
  const s = await butter.service.create(net, 'web', { blueprint: join(dir, 'web', 'blueprint.yml'), vars: { Greeting: 'hello' }, wait: true });
  assert.equal(s.network, 'apps');
  assert.equal(s.count, 2);
  assert.deepEqual(s.instances.map((i) => i.state), ['running', 'running']);
  assert.deepEqual(s.instances.map((i) => i.zone).sort(), ['east', 'west']);
  for (const i of s.instances) assert.match(await userData(i.name), new RegExp(`hello from web #${i.index}`));

  assert.equal((await butter.service.get('web'))?.name, 'web');
  assert.equal((await butter.service.get(net, 'web'))?.name, 'web', 'the original takes the network first');
  assert.equal(await butter.service.get('default', 'web'), undefined, 'not in that network');
  assert.equal(await butter.service.get('no-such'), undefined);
  assert.deepEqual((await butter.service.list()).map((x) => x.name), ['web']);
  assert.deepEqual(await butter.service.list('default'), []);
  const instances = await butter.service.getInstances(s);
  assert.deepEqual(instances.map((i) => i.name), s.instances.map((i) => i.name));
  for (const i of instances) assert.ok(i.ip?.startsWith('10.60.'), `${i.ip} is in the network`);
});

test('scale, update (as text), a no-op update, rollback and history', async () => {
  let s = await butter.service.scale('web', 3, { wait: true });
  assert.equal(s.instances.length, 3);
  assert.ok(s.instances.every((i) => i.state === 'running'));

  s = await butter.service.update('web', { blueprint: { text: blueprint(), files: { 'scripts/hello.sh': HELLO }, file: 'web.yml' }, vars: { Greeting: 'bonjour' }, wait: true });
  assert.equal(s.revision, 2);
  assert.ok(s.instances.every((i) => i.revision === 2));
  for (const i of s.instances) assert.match(await userData(i.name), /bonjour from web/);
  const same = await butter.service.update('web', { blueprint: join(dir, 'web', 'blueprint.yml'), vars: { Greeting: 'bonjour' } });
  assert.equal(same.revision, 2, 'the same blueprint, variables and image: no new revision');
  assert.equal(same.targetRevision, 2);

  s = await butter.service.rollback('web', { wait: true });
  assert.equal(s.revision, 1);
  for (const i of s.instances) assert.match(await userData(i.name), /hello from web/);
  const history = await butter.service.history('web');
  assert.deepEqual(history.map((r) => [r.number, r.vars]), [
    [2, { Greeting: 'bonjour' }],
    [1, { Greeting: 'hello' }],
  ]);
  assert.equal(history.find((r) => r.current)?.number, 1);
});

test('a wait ends with ServiceNotSettled naming the instance when the rollout stops at it', async () => {
  await assert.rejects(
    butter.service.update('web', { blueprint: { text: blueprint(`${BROKEN_MIB}M`), files: { 'scripts/hello.sh': HELLO } }, vars: { Greeting: 'hello' }, wait: { timeoutMs: 60_000 } }),
    (e: unknown) => {
      assert.ok(e instanceof ServiceNotSettled, String(e));
      assert.match(e.message, /^service web: rollout to revision 3 failed at web-\d+: .*simulated boot failure/);
      assert.equal(e.service.rollout.state, 'failed');
      return true;
    },
  );
  // The others were left as they were, at revision 1.
  const s = (await butter.service.get('web'))!;
  assert.deepEqual(s.instances.map((i) => [i.revision, i.state]), s.instances.map(() => [1, 'running']));
});

test('bad input: a missing template file or variable, and nothing is made', async () => {
  mkdirSync(join(dir, 'bad'));
  writeFileSync(join(dir, 'bad', 'blueprint.yml'), blueprint());
  await assert.rejects(butter.service.create('apps', 'bad', { blueprint: join(dir, 'bad', 'blueprint.yml'), vars: { Greeting: 'x' } }), /^BlueprintError: blueprint\.yml:6:11: initialization\[0\]\.path: no such file/);
  await assert.rejects(butter.service.create('apps', 'bad', { blueprint: join(dir, 'nowhere.yml') }), /^Error: blueprint: cannot read .*nowhere\.yml: no such file/);
  await assert.rejects(butter.service.create('apps', 'bad', { blueprint: join(dir, 'web', 'blueprint.yml') }), (e: unknown) => {
    assert.ok(e instanceof ButterError, String(e));
    assert.equal(e.status, 400);
    assert.match(e.message, /Greeting/);
    return true;
  });
  assert.equal(await butter.service.get('bad'), undefined);
});

test('destroy with wait returns once the service and its instances are gone', async () => {
  const names = (await butter.service.getInstances('web')).map((i) => i.name);
  await butter.service.destroy('web', { wait: true });
  assert.equal(await butter.service.get('web'), undefined);
  const vms = (await butter.call('listVms', {})).items.map((v) => v.name);
  for (const n of names) assert.ok(!vms.includes(n), `${n} is gone`);
  await butter.network.destroy('apps');
});
