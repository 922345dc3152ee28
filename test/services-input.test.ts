// Bad service input through the API: each a clear 4xx naming the field (and the blueprint's
// key path in the message), and nothing created: no service, no revision, no VM.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeNode, rejects, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  for (const [name, zone] of [['n1', 'east'], ['n2', 'west']] as const) {
    await fakeNode(cloud, name);
    await cloud.admin.call('updateNode', { params: { name }, body: { zone } });
  }
  await cloud.admin.call('createNetwork', { body: { name: 'tiny', cidr: '10.77.0.0/28' } });
});
after(() => cloud?.close());

const good = `
placement: { availability_zones: 2 }
instance: { memory: 256M, cpus: 1 }
image: { name: img }
initialization:
  - path: boot.sh
    vars: { Ips: { required: true } }
`;
const files = { 'boot.sh': '#!/bin/sh\n{% for ip in Ips %}echo {{ ip }}\n{% endfor %}' };
const vars = { Ips: ['10.0.0.1', '10.0.0.2'] };

function nothingMade(): void {
  const db = cloud.cp.services.store.db;
  for (const table of ['services', 'service_revisions', 'vms']) {
    assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n, 0, `no row in ${table}`);
  }
}

const create = (over: Record<string, unknown>) => cloud.admin.call('createService', { body: { network: 'default', name: 'web', blueprint: good, files, vars, file: 'web.yml', ...over } as never });

const cases: [string, Record<string, unknown>, number, string, RegExp][] = [
  ['malformed YAML', { blueprint: 'placement: { availability_zones: 2\nimage: [' }, 400, 'blueprint', /^web\.yml:\d+:\d+: /],
  ['an unknown key', { blueprint: good + 'colour: blue\n' }, 400, 'blueprint', /web\.yml:\d+:\d+: colour: /],
  ['a wrong type', { blueprint: good.replace('cpus: 1', 'cpus: many') }, 400, 'blueprint', /web\.yml:\d+:\d+: instance\.cpus: /],
  ['a bad size', { blueprint: good.replace('256M', 'lots') }, 400, 'blueprint', /instance\.memory: "lots" is not a size/],
  ['gpu: true', { blueprint: good.replace('cpus: 1', 'cpus: 1, gpu: true') }, 400, 'blueprint', /instance\.gpu: .*GPU passthrough/],
  ['a template missing from files', { files: {} }, 400, 'blueprint', /boot\.sh/],
  ['a missing required variable', { vars: {} }, 400, 'blueprint', /Ips/],
  ['an undefined variable used', { files: { 'boot.sh': 'echo {{ Nope }}' } }, 400, 'blueprint', /Nope/],
  ['more zones than exist', { blueprint: good.replace('availability_zones: 2', 'availability_zones: 3') }, 422, 'blueprint', /placement\.availability_zones: 3 zones wanted, 2 found \(east, west\)/],
  ['no room for the subnetwork', { network: 'tiny', blueprint: good + 'network: { subnetwork_max_instance_count: 64 }\n' }, 422, 'blueprint', /network\.subnetwork_max_instance_count: network tiny \(10\.77\.0\.0\/28\) has no free block of 64 addresses \(\/26\); the largest free block is 10\.77\.0\.4\/30 \(4 addresses\)/],
  ['an unknown image', { blueprint: good.replace('name: img', 'name: nothing') }, 404, 'blueprint', /image\.name: image nothing not found/],
  ['an image glob matching nothing', { blueprint: good.replace('name: img', "name: 'debian-*'") }, 404, 'blueprint', /image\.name: no image matches "debian-\*"/],
  ['an unknown network', { network: 'nowhere' }, 404, 'network', /network nowhere not found/],
  ['a name too long for its instances', { name: 'x'.repeat(59) }, 400, 'name', /at most 58 characters/],
  ['a count beyond the block', { count: 300 }, 400, 'count', /subnetwork_max_instance_count \(256\)/],
];

for (const [what, over, status, field, message] of cases) {
  test(`refused, nothing made: ${what}`, async () => {
    await rejects(create(over), status, field, message);
    nothingMade();
  });
}

test('a name that clashes with a VM, an instance-like VM or a service is refused', async () => {
  await cloud.admin.call('createVm', { body: { name: 'web', image: 'img' } });
  await rejects(create({}), 409, 'name', /vm web exists/);
  await cloud.admin.call('deleteVm', { params: { name: 'web' } });
  await cloud.admin.call('nodeReport', { params: { name: 'n1' }, body: { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] } }).catch(() => undefined);
  await cloud.admin.call('createVm', { body: { name: 'db-3', image: 'img' } });
  await rejects(create({ name: 'db' }), 409, 'name', /vm db-3 exists/);
  const made = await create({ name: 'api' });
  assert.equal(made.instances.length, 2);
  await rejects(create({ name: 'api' }), 409, 'name', /service api already exists/);
  assert.equal((cloud.cp.services.store.db.prepare(`SELECT COUNT(*) AS n FROM services`).get() as { n: number }).n, 1);
});

test('--force places with fewer zones than asked and records a warning', async () => {
  const s = await create({ name: 'wide', blueprint: good.replace('availability_zones: 2', 'availability_zones: 3'), force: true });
  assert.equal(s.count, 3);
  assert.match(s.warnings.join('\n'), /placement\.availability_zones: 3 zones wanted, 2 found \(east, west\).*--force/);
  assert.equal(new Set(s.instances.map((i) => i.zone)).size, 2, 'spread over the zones there are');
});

test('plain VMs and the service blocks do not share addresses', async () => {
  const svc = await cloud.admin.call('getService', { params: { name: 'api' } });
  const vm = await cloud.admin.call('createVm', { body: { name: 'plain', image: 'img' } });
  const [base, p] = svc.block.split('/');
  const n = (s: string) => s.split('.').reduce((a, x) => a * 256 + Number(x), 0);
  const inBlock = n(vm.ip!) >= n(base!) && n(vm.ip!) < n(base!) + 2 ** (32 - Number(p));
  assert.ok(!inBlock, `${vm.ip} is outside ${svc.block}`);
});

test('an Idempotency-Key replays the first answer instead of a 409', async () => {
  const body = { network: 'default', name: 'once', blueprint: good, files, vars };
  const a = await cloud.admin.call('createService', { body, idempotencyKey: 'svc-key-1' });
  const b = await cloud.admin.call('createService', { body, idempotencyKey: 'svc-key-1' });
  assert.deepEqual(b, a);
  assert.equal((cloud.cp.services.store.db.prepare(`SELECT COUNT(*) AS n FROM services WHERE name = 'once'`).get() as { n: number }).n, 1);
});

test("the blueprint's disks: the first is the root disk, the rest each instance's data disks", async () => {
  const bp = good.replace('instance: { memory: 256M, cpus: 1 }', 'instance: { memory: 256M, cpus: 1, disks: [ { size: 4G }, { size: 1G, device_name: /dev/sdb } ] }');
  const s = await create({ name: 'disky', blueprint: bp, count: 1 });
  const vm = await cloud.admin.call('getVm', { params: { name: s.instances[0]!.name } });
  assert.equal(vm.diskBytes, 4 * 1024 ** 3);
  assert.deepEqual(vm.disks.map((d) => [d.sizeBytes, d.device]), [[1024 ** 3, 'vdb']]);
});

test('a network with a service cannot be deleted', async () => {
  await cloud.admin.call('createNetwork', { body: { name: 'roomy', cidr: '10.78.0.0/22' } });
  await create({ name: 'inroomy', network: 'roomy', count: 1 });
  await rejects(cloud.admin.call('deleteNetwork', { params: { name: 'roomy' } }), 409, 'name', /service inroomy/);
});
