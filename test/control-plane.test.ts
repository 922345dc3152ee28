import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Client } from '../src/sdk/client.ts';
import { fakeNode, rejects, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';
import { within } from './within.ts';
import { HEARTBEAT_TIMEOUT_MS } from '../src/server/nodes.ts';

let cloud: TestCloud;
before(async () => {
  cloud = await startTestCloud();
});
after(async () => {
  await cloud.close();
});

test('admin token is written 0600 and stored only hashed', () => {
  const file = join(cloud.dir, 'admin.token');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const token = readFileSync(file, 'utf8').trim();
  const rows = cloud.cp.services.store.db.prepare('SELECT hash FROM tokens').all() as { hash: string }[];
  assert.ok(rows.every((r) => !token.includes(r.hash)));
  const secret = token.slice('bt_'.length + 12 + 1); // the secret itself may contain '_'
  assert.ok(rows.some((r) => r.hash === createHash('sha256').update(secret).digest('hex')));
});

// Who may call each route, for every route and every kind of caller: test/access.test.ts.

test('a node token reaches only its own node endpoints', async () => {
  const a = await fakeNode(cloud, 'node-a');
  await fakeNode(cloud, 'node-b');
  await rejects(a.call('listVms', {}), 403);
  await rejects(a.call('createVm', { body: { name: 'x', image: 'y' } }), 403);
  await rejects(a.call('nodeDesired', { params: { name: 'node-b' } }), 403);
  const mine = await a.call('nodeDesired', { params: { name: 'node-a' } });
  assert.ok(!('unchanged' in mine));
  assert.deepEqual(mine.vms, []);
});

test('image upload verifies the digest and leaves nothing on a mismatch', async () => {
  const blobsDir = join(cloud.dir, 'blobs');
  const before = readdirSync(join(blobsDir, 'sha256')).length;
  await rejects(cloud.admin.uploadBlob(Readable.from([Buffer.from('hello')]), 'a'.repeat(64)), 400, 'sha256');
  assert.equal(readdirSync(join(blobsDir, 'sha256')).length, before);
  assert.deepEqual(readdirSync(join(blobsDir, 'tmp')), []);
  await uploadImage(cloud.admin, 'img');
  const img = await cloud.admin.call('getImage', { params: { name: 'img' } });
  assert.equal(img.format, 'raw');
  assert.equal(img.sha256, createHash('sha256').update('raw disk bytes'.repeat(100)).digest('hex'));
});

test('vm create: validation names the field, nothing half-made', async () => {
  const count = () => (cloud.cp.services.store.db.prepare('SELECT COUNT(*) AS n FROM vms').get() as { n: number }).n;
  const n0 = count();
  await rejects(cloud.admin.call('createVm', { body: { name: 'Bad_Name', image: 'img' } }), 400, 'name');
  await rejects(cloud.admin.call('createVm', { body: { name: 'ok', image: 'img', memory: '512' } }), 400, 'memory');
  await rejects(cloud.admin.call('createVm', { body: { name: 'ok', image: 'img', colour: 'red' } as never }), 400);
  await rejects(cloud.admin.call('createVm', { body: { name: 'ok', image: 'nope' } }), 404, 'image');
  await rejects(cloud.admin.call('createVm', { body: { name: 'ok', image: 'img', memory: '64G' } }), 422);
  await rejects(cloud.admin.call('createVm', { body: { name: 'ok', image: 'img', node: 'ghost' } }), 404, 'node');
  assert.equal(count(), n0);
});

test('vm create places, allocates an address, and shows in desired state; rm waits for the node', async () => {
  const vm = await cloud.admin.call('createVm', { body: { name: 'web', image: 'img', memory: '256M', userData: '#!/bin/sh\necho hi\n' } });
  assert.equal(vm.state, 'pending');
  assert.equal(vm.ip, '10.200.0.2');
  assert.match(vm.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
  await rejects(cloud.admin.call('createVm', { body: { name: 'web', image: 'img' } }), 409, 'name');
  await rejects(cloud.admin.call('deleteImage', { params: { name: 'img' } }), 409);
  const owner = vm.node!;
  const desired = await cloud.cp.services.nodes.desired(owner);
  assert.equal(desired.vms.find((v) => v.name === 'web')?.userData, '#!/bin/sh\necho hi\n');

  const resized = await cloud.admin.call('resizeVm', { params: { name: 'web' }, body: { cpus: 2 } });
  assert.deepEqual(resized.pending, { cpus: 2, memoryBytes: 256 * 1024 ** 2 });
  const started = await cloud.admin.call('restartVm', { params: { name: 'web' } });
  assert.equal(started.cpus, 2);
  assert.equal(started.pending, null);

  const deleting = await cloud.admin.call('deleteVm', { params: { name: 'web' } });
  assert.equal(deleting.state, 'deleting');
  cloud.cp.services.nodes.report(owner, { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] });
  await rejects(cloud.admin.call('getVm', { params: { name: 'web' } }), 404);
});

test('vm create --metadata-tokens: optional by default, required kept; shown on the VM and carried to its node; a bad value names the field', async () => {
  await rejects(cloud.admin.call('createVm', { body: { name: 'tok', image: 'img', metadataTokens: 'sometimes' } as never }), 400, 'metadataTokens');
  const plain = await cloud.admin.call('createVm', { body: { name: 'tok-opt', image: 'img', memory: '64M' } });
  assert.equal(plain.metadataTokens, 'optional');
  const strict = await cloud.admin.call('createVm', { body: { name: 'tok-req', image: 'img', memory: '64M', metadataTokens: 'required' } });
  assert.equal(strict.metadataTokens, 'required');
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'tok-req' } })).metadataTokens, 'required');
  for (const vm of [plain, strict]) {
    const desired = await cloud.cp.services.nodes.desired(vm.node!);
    assert.equal(desired.vms.find((v) => v.name === vm.name)?.metadataTokens, vm.metadataTokens);
  }
  for (const name of ['tok-opt', 'tok-req']) await cloud.admin.call('deleteVm', { params: { name } });
});

test('vm create --restart: on-failure by default; shown on the VM and carried to its node; a bad value names the field', async () => {
  await rejects(cloud.admin.call('createVm', { body: { name: 'rs', image: 'img', restart: 'sometimes' } as never }), 400, 'restart');
  assert.deepEqual((await cloud.admin.call('listVms', {})).items.filter((v) => v.name === 'rs'), [], 'nothing half-made');
  const plain = await cloud.admin.call('createVm', { body: { name: 'rs-default', image: 'img', memory: '64M' } });
  assert.equal(plain.restart, 'on-failure');
  const never = await cloud.admin.call('createVm', { body: { name: 'rs-never', image: 'img', memory: '64M', restart: 'never' } });
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'rs-never' } })).restart, 'never');
  for (const vm of [plain, never]) {
    const desired = await cloud.cp.services.nodes.desired(vm.node!);
    assert.equal(desired.vms.find((v) => v.name === vm.name)?.restart, vm.restart);
  }
  for (const name of ['rs-default', 'rs-never']) await cloud.admin.call('deleteVm', { params: { name } });
});

test('long-poll of desired state wakes on a change', async () => {
  const nodeClient = await fakeNode(cloud, 'node-c', 64);
  const first = await nodeClient.call('nodeDesired', { params: { name: 'node-c' } });
  // The longest watch (60 s), and a deadline at half of it: only a wake on the change answers in time.
  const waiting = nodeClient.call('nodeDesired', { params: { name: 'node-c' }, query: { since: first.revision, wait: 60 } });
  setTimeout(() => void cloud.admin.call('createVm', { body: { name: 'polled', image: 'img', node: 'node-c' } }), 200);
  const next = await within(waiting, 30_000, 'the watch did not wake on the change');
  assert.ok(next.revision > first.revision);
  assert.ok(!('unchanged' in next));
  assert.equal(next.vms[0]?.name, 'polled');
  // A watch that times out with nothing new says so in a few bytes.
  assert.deepEqual(await nodeClient.call('nodeDesired', { params: { name: 'node-c' }, query: { since: next.revision, wait: 1 } }), { revision: next.revision, unchanged: true });
});

test('every write is an audit event with a rising revision', async () => {
  const ev = await cloud.admin.call('listEvents', { query: { limit: 1000 } });
  assert.ok(ev.items.some((e) => e.action === 'create' && e.resource === 'vm' && e.name === 'web'));
  const revs = ev.items.map((e) => e.revision);
  assert.deepEqual([...revs].sort((a, b) => a - b), revs);
});

test('a viewer token reads but cannot write; revoked tokens stop working; the last admin stays', async () => {
  const { token, secret } = await cloud.admin.call('createToken', { body: { role: 'viewer', description: 'dashboard' } });
  assert.equal(token.role, 'viewer');
  const viewer = new Client({ url: cloud.url, token: secret });
  assert.ok(Array.isArray((await viewer.call('listVms', {})).items));
  const before = cloud.cp.services.store.revision();
  await rejects(viewer.call('createVm', { body: { name: 'nope', image: 'img' } }), 403);
  await rejects(viewer.call('createToken', { body: { role: 'admin' } }), 403);
  await rejects(viewer.call('getBlob', { params: { sha256: 'a'.repeat(64) } }), 403);
  assert.equal(cloud.cp.services.store.revision(), before, 'nothing changed');
  assert.ok(!(await cloud.admin.call('listTokens', {})).items.some((t) => JSON.stringify(t).includes(secret)));
  await cloud.admin.call('deleteToken', { params: { id: token.id } });
  await rejects(viewer.call('listVms', {}), 401);
  const admins = (await cloud.admin.call('listTokens', {})).items.filter((t) => t.role === 'admin');
  assert.equal(admins.length, 1);
  await rejects(cloud.admin.call('deleteToken', { params: { id: admins[0]!.id } }), 409, 'id');
  await rejects(cloud.admin.call('deleteToken', { params: { id: 'xyz' } }), 400, 'params.id');
});

test('a node is unreachable once silent for the heartbeat timeout, not before; its VMs turn unknown (no clock waits)', async () => {
  await fakeNode(cloud, 'node-quiet', 64);
  await cloud.admin.call('createVm', { body: { name: 'quiet-vm', image: 'img', node: 'node-quiet' } });
  const state = async () => (await cloud.admin.call('getNode', { params: { name: 'node-quiet' } })).state;
  // The sweep is handed the time: a second short of the timeout, then a second past it.
  cloud.cp.services.nodes.sweep(new Date(Date.now() + HEARTBEAT_TIMEOUT_MS - 1_000));
  assert.equal(await state(), 'ready');
  cloud.cp.services.nodes.sweep(new Date(Date.now() + HEARTBEAT_TIMEOUT_MS + 1_000));
  assert.equal(await state(), 'unreachable');
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'quiet-vm' } })).state, 'unknown');
  // The 1 s sweep (control-plane.ts) on top of this cutoff keeps the 15 s promise.
  assert.ok(HEARTBEAT_TIMEOUT_MS + 1_000 <= 15_000);
  await cloud.admin.call('deleteVm', { params: { name: 'quiet-vm' } });
});
