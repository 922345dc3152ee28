// The agents' routes (`node` access: desired state, report, console, probe results) over real
// HTTP run without the panel's hooks: no compression (a node's desired state crosses the
// cluster's own network, where compressing each answer costs the control plane more than the
// bytes it saves, 1,000 agents' heartbeats every 5 s) and no session cookie (agents carry
// their node token; a browser's panel session has no business on a node's routes).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let nodeToken: string;

before(async () => {
  cloud = await startTestCloud();
  const { token } = await cloud.admin.call('createNode', { body: { name: 'n1' } });
  nodeToken = token;
  await fetch(`${cloud.url}/v1/nodes/n1/report`, { method: 'POST', headers: { authorization: `Bearer ${nodeToken}`, 'content-type': 'application/json' }, body: JSON.stringify(REPORT) });
  await uploadImage(cloud.admin, 'img');
  // Enough VMs that the node's desired state is well over the 1 KiB compression threshold.
  for (let i = 0; i < 8; i++) await cloud.admin.call('createVm', { body: { name: `vm-${i}`, image: 'img', memory: '256M', node: 'n1' } });
});
after(async () => {
  await cloud?.close();
});

const REPORT = { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] };

test("a node's desired state is not compressed, even when its agent offers gzip and br", async () => {
  const r = await fetch(`${cloud.url}/v1/nodes/n1/desired`, { headers: { authorization: `Bearer ${nodeToken}`, 'accept-encoding': 'gzip, br' } });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  assert.ok(text.length > 4096, `desired state of ${text.length} bytes`);
  assert.equal(JSON.parse(text).vms.length, 8);
  assert.equal(r.headers.get('content-encoding'), null);
  assert.equal(r.headers.get('vary'), null, 'no Vary: Accept-Encoding on an answer that is never compressed');
  // The same size of answer on a user's route is compressed (test/compression.test.ts has the rest).
  const list = await fetch(`${cloud.url}/v1/vms`, { headers: { authorization: `Bearer ${cloud.cp.adminToken}`, 'accept-encoding': 'gzip' } });
  assert.equal(list.status, 200);
  assert.equal(list.headers.get('content-encoding'), 'gzip');
});

test("an admin's panel session does not open a node's routes; its token does, and the session opens the user routes", async () => {
  const signIn = await fetch(`${cloud.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: cloud.cp.adminToken }) });
  assert.equal(signIn.status, 201);
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  const viaCookie = await fetch(`${cloud.url}/v1/nodes/n1/desired`, { headers: { cookie } });
  assert.equal(viaCookie.status, 401, await viaCookie.text());
  const viaToken = await fetch(`${cloud.url}/v1/nodes/n1/desired`, { headers: { authorization: `Bearer ${cloud.cp.adminToken}` } });
  assert.equal(viaToken.status, 200);
  const user = await fetch(`${cloud.url}/v1/nodes`, { headers: { cookie } });
  assert.equal(user.status, 200);
});
