// Services over simulated nodes: real agents with the simulated driver, in two zones, over
// the real API. Spread, scale, rolling updates that succeed and one that fails, rollback,
// the no-op update, and `vm rm` of an instance refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { VmSpec } from '../src/core/vm-spec.ts';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { Client } from '../src/sdk/client.ts';
import { rejects, until as waitFor, uploadImage } from './helpers.ts';

let cp: ControlPlane;
let admin: Client;
let dir: string;
const agents: Agent[] = [];
/** Set: every VM whose id is not in it fails to start (a broken revision). */
let healthy: Set<string> | undefined;
const failStart = (spec: VmSpec) => (healthy && !healthy.has(spec.id) ? 'simulated boot failure' : undefined);

const NODES = [
  ['e1', 'east'],
  ['e2', 'east'],
  ['w1', 'west'],
  ['w2', 'west'],
] as const;

const blueprint = (zones = 2) => `
network: { subnetwork_max_instance_count: 16 }
placement: { availability_zones: ${zones} }
instance: { memory: 256M, cpus: 1 }
image: { name: img }
initialization:
  - path: hello.sh
    vars: { Greeting: { required: true } }
`;
const files = { 'hello.sh': '#!/bin/sh\necho "{{ Greeting }} from {{ service }} #{{ index }}"\n' };


/** Long waits: a rollout replaces instances one at a time. */
const until = <T>(what: string, fn: () => Promise<T | undefined>) => waitFor(what, fn, 60_000);

const show = (name: string) => admin.call('getService', { params: { name } });
/** The service with its rollout finished (done or failed) and every live instance running. */
const settled = (name: string, rollout: 'done' | 'failed' = 'done') =>
  until(`service ${name} ${rollout} with every instance running`, async () => {
    const s = await show(name);
    return s.rollout.state === rollout && s.instances.length === s.count && s.instances.every((i) => i.state === 'running') ? s : undefined;
  });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-services-'));
  cp = createControlPlane({ dataDir: join(dir, 'cp'), rolloutTimeoutMs: 60_000 });
  const url = await cp.listen('127.0.0.1', 0);
  admin = new Client({ url, token: cp.adminToken! });
  await uploadImage(admin, 'img');
  for (const [name, zone] of NODES) {
    const { token } = await admin.call('createNode', { body: { name } });
    await admin.call('updateNode', { params: { name }, body: { zone } });
    const stateDir = join(dir, name);
    const agent = new Agent({ client: new Client({ url, token }), node: name, stateDir, driver: new SimDriver({ stateDir, failStart }), accel: { accel: 'tcg', reason: 'simulated' }, heartbeatMs: 200, capacity: { cpus: 8, memoryBytes: 16 * 1024 ** 3, diskBytes: 200 * 1024 ** 3 } });
    await agent.start();
    agents.push(agent);
  }
});

after(async () => {
  for (const a of agents) await a.stop();
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('instances spread over the zones, show in vm list, and are refused to vm rm', async () => {
  const created = await admin.call('createService', { body: { network: 'default', name: 'web', blueprint: blueprint(), files, vars: { Greeting: 'hello' } } });
  assert.equal(created.count, 2, 'count defaults to availability_zones');
  assert.deepEqual(created.warnings, []);
  const s = await settled('web');
  assert.deepEqual(s.instances.map((i) => i.zone).sort(), ['east', 'west']);
  for (const i of s.instances) assert.ok(i.ip && ipIn(i.ip, s.block), `${i.ip} in ${s.block}`);
  const vm = await admin.call('getVm', { params: { name: s.instances[0]!.name } });
  assert.equal(vm.service, 'web');
  assert.equal(vm.spreadKey, 'web');
  const ud = await admin.call('getUserData', { params: { name: s.instances[0]!.name } });
  assert.match(ud.userData, new RegExp(`hello from web #${s.instances[0]!.index}`));
  // Each instance's going running changed the service's DNS records: every node hosting the
  // network (mesh or not) was told, at that revision or later.
  const events = (await admin.call('listEvents', { query: { limit: 1000 } })).items;
  const ran = Math.max(...events.filter((e) => e.resource === 'vm' && e.name.startsWith('web-') && / → running/.test(e.message)).map((e) => e.revision));
  for (const node of new Set(s.instances.map((i) => i.node!))) {
    const d = await admin.call('nodeDesired', { params: { name: node }, query: {} });
    assert.ok(d.revision >= ran, `node ${node}'s desired revision ${d.revision} is at least ${ran}, when the last instance went running`);
    assert.ok('networks' in d);
    assert.deepEqual(d.networks.find((n) => n.name === 'default')!.services, [{ name: 'web', ips: s.instances.map((i) => i.ip!), block: s.block }]);
  }
  // An instance stopped leaves the records at once, on every host of the network.
  const [first, second] = s.instances;
  const stopped = await admin.call('stopVm', { params: { name: first!.name } });
  const at = (await admin.call('listEvents', { query: { limit: 1000 } })).items.filter((e) => e.action === 'stop' && e.name === first!.name).at(-1)!.revision;
  const other = await admin.call('nodeDesired', { params: { name: second!.node! }, query: {} });
  assert.ok('networks' in other);
  assert.ok(other.revision >= at, `node ${second!.node} was told when ${stopped.name} stopped (${other.revision} >= ${at})`);
  assert.deepEqual(other.networks.find((n) => n.name === 'default')!.services, [{ name: 'web', ips: [second!.ip!], block: s.block }]);
  await admin.call('startVm', { params: { name: first!.name } });
  await settled('web');
  await rejects(admin.call('deleteVm', { params: { name: vm.name } }), 409, 'name', /service scale web/);
  // A plain VM may not take the service's name (one DNS namespace).
  await rejects(admin.call('createVm', { body: { name: 'web', image: 'img' } }), 409, 'name');
});

test('scale up and down keeps the spread; the newest go first', async () => {
  const before = await show('web');
  await admin.call('scaleService', { params: { name: 'web' }, body: { count: 4 } });
  const up = await settled('web');
  const zones = up.instances.map((i) => i.zone);
  assert.equal(zones.filter((z) => z === 'east').length, 2);
  assert.equal(new Set(up.instances.map((i) => i.node)).size, 4, 'one per node within each zone');
  await admin.call('scaleService', { params: { name: 'web' }, body: { count: 2 } });
  const down = await until('two instances left', async () => {
    const s = await show('web');
    return s.instances.length === 2 ? s : undefined;
  });
  assert.deepEqual(down.instances.map((i) => i.name).sort(), before.instances.map((i) => i.name).sort(), 'the two oldest stay');
  assert.deepEqual(down.instances.map((i) => i.zone).sort(), ['east', 'west']);
});

test('a rolling update replaces every instance; the same update again changes nothing', async () => {
  const old = await show('web');
  const rolling = await admin.call('updateService', { params: { name: 'web' }, body: { blueprint: blueprint(), files, vars: { Greeting: 'hi' } } });
  assert.equal(rolling.targetRevision, 2);
  assert.equal(rolling.rollout.state, 'rolling');
  const s = await settled('web');
  assert.equal(s.revision, 2);
  assert.ok(s.instances.every((i) => i.revision === 2));
  assert.ok(s.instances.every((i) => !old.instances.some((o) => o.name === i.name && o.revision === 2)));
  assert.deepEqual(s.instances.map((i) => i.zone).sort(), ['east', 'west'], 'replacements keep the spread');
  for (const i of s.instances) assert.match((await admin.call('getUserData', { params: { name: i.name } })).userData, /hi from web/);

  const again = await admin.call('updateService', { params: { name: 'web' }, body: { blueprint: blueprint(), files, vars: { Greeting: 'hi' } } });
  assert.equal(again.rollout.state, 'done');
  assert.equal(again.targetRevision, 2);
  assert.deepEqual(again.instances.map((i) => i.name), s.instances.map((i) => i.name));
  assert.equal((await admin.call('listServiceRevisions', { params: { name: 'web' } })).items.length, 2, 'no new revision');
});

test('an update whose first replacement fails stops there and leaves the rest; rollback rolls back', async () => {
  const before = await show('web');
  healthy = new Set((await admin.call('listVms', {})).items.map((v) => v.id));
  await admin.call('updateService', { params: { name: 'web' }, body: { blueprint: blueprint(), files, vars: { Greeting: 'broken' } } });
  const failed = await settled('web', 'failed');
  assert.match(failed.rollout.message!, /^failed at web-\d+: simulated boot failure$/);
  assert.deepEqual(failed.instances.map((i) => [i.name, i.revision]), before.instances.map((i) => [i.name, i.revision]), 'the old instances are untouched');
  assert.equal(failed.revision, 2);
  assert.equal(failed.targetRevision, 3);
  healthy = undefined;

  const back = await admin.call('rollbackService', { params: { name: 'web' }, body: { to: 1 } });
  assert.equal(back.targetRevision, 1);
  const s = await settled('web');
  assert.equal(s.revision, 1);
  for (const i of s.instances) assert.match((await admin.call('getUserData', { params: { name: i.name } })).userData, /hello from web/);
  const history = (await admin.call('listServiceRevisions', { params: { name: 'web' } })).items;
  assert.deepEqual(history.map((r) => [r.number, r.current]), [[3, false], [2, false], [1, true]]);
  assert.deepEqual(history[0]!.vars, { Greeting: 'broken' });
});

test('deleting a service deletes its instances, then itself', async () => {
  const gone = await admin.call('deleteService', { params: { name: 'web' } });
  assert.equal(gone.state, 'deleting');
  await until('service gone', async () => ((await admin.call('listServices', {})).items.length === 0 ? true : undefined));
  assert.deepEqual((await admin.call('listVms', {})).items, []);
  await rejects(show('web'), 404, 'name');
});

function ipIn(ip: string, cidr: string): boolean {
  const n = (s: string) => s.split('.').reduce((a, p) => a * 256 + Number(p), 0);
  const [base, p] = cidr.split('/');
  const size = 2 ** (32 - Number(p));
  return n(ip) >= n(base!) && n(ip) < n(base!) + size;
}
