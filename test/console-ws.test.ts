// The console WebSocket over real HTTP and HTTPS: a real agent (simulated driver, whose console
// echoes what is typed) behind it; who may open it (operators, bearer or cookie with our own
// Origin); the server closes it when the VM is deleted or the credential goes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../src/agent/agent.ts';
import { createControlPlane } from '../src/server/control-plane.ts';
import { ensureServerTls } from '../src/server/tls.ts';
import { Client } from '../src/sdk/node-client.ts';
import { heartbeat, simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';
import { openSocket, type OpenSocket } from './ws-client.ts';
import { within } from './within.ts';

let cloud: TestCloud;
let agent: Agent;
let stateDir: string;
let wsBase: string;
const sockets: OpenSocket[] = [];

before(async () => {
  cloud = await startTestCloud();
  const sim = await simAgent(cloud, 'n1', { consoleShipMs: 50 });
  agent = sim.agent;
  stateDir = sim.stateDir;
  await agent.start();
  await uploadImage(cloud.admin, 'img');
  wsBase = cloud.url.replace(/^http/, 'ws');
});
after(async () => {
  for (const s of sockets) s.ws.terminate();
  await agent?.stop();
  await cloud?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

async function runningVm(name: string): Promise<void> {
  await cloud.admin.call('createVm', { body: { name, image: 'img', memory: '128M' } });
  await until(`${name} running`, async () => ((await cloud.admin.call('getVm', { params: { name } })).state === 'running' ? true : undefined));
  // Its boot line is in the log (so "from the current end" has something to skip).
  await until(`${name}'s boot line shipped`, async () => ((await cloud.admin.call('vmLogs', { params: { name } })).data.includes('booted') ? true : undefined));
}

async function open(path: string, opts: Parameters<typeof openSocket>[1] = {}): Promise<OpenSocket> {
  const s = await openSocket(`${wsBase}${path}`, opts);
  sockets.push(s);
  return s;
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const refusal = async (p: Promise<unknown>): Promise<{ status: number; body: string }> => {
  try {
    await p;
  } catch (e) {
    const x = e as { status?: number; body?: string; message: string };
    assert.ok(x.status, x.message);
    return { status: x.status!, body: x.body ?? '' };
  }
  assert.fail('the socket opened');
};

async function signIn(token: string): Promise<{ cookie: string; csrf: string }> {
  const r = await fetch(`${cloud.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  assert.equal(r.status, 201);
  return { cookie: r.headers.get('set-cookie')!.split(';')[0]!, csrf: ((await r.json()) as { csrf: string }).csrf };
}

test('typed lines reach the VM and its output comes back as binary frames, from the current end', async () => {
  await runningVm('ws1');
  const s = await open('/v1/vms/ws1/console/ws', bearer(cloud.cp.adminToken!));
  s.ws.send('echo typed-over-the-socket\n');
  await until('the echo over the socket', async () => (s.output().includes('typed-over-the-socket') ? true : undefined));
  assert.doesNotMatch(s.output(), /booted/, 'what was there before it opened is not sent again');
  // Binary keystrokes too; and the same bytes are what `vm logs` returns.
  s.ws.send(Buffer.from('binary-keys\n'));
  await until('binary input echoed', async () => (s.output().includes('binary-keys') ? true : undefined));
  const logs = await cloud.admin.call('vmLogs', { params: { name: 'ws1' } });
  assert.ok(logs.data.endsWith(s.output()), 'the socket sent the log\'s bytes from where it opened');

  // From ?offset=0: the whole log, boot line first.
  const all = await open('/v1/vms/ws1/console/ws?offset=0', bearer(cloud.cp.adminToken!));
  await until('the whole log', async () => (all.output().includes('binary-keys') ? true : undefined));
  assert.match(all.output(), /^\[sim\].*booted/);
});

test('a viewer is refused before the upgrade; an operator may; bad names and queries are HTTP errors', async () => {
  await runningVm('ws2');
  const viewer = (await cloud.admin.call('createToken', { body: { role: 'viewer' } })).secret;
  const operator = (await cloud.admin.call('createToken', { body: { role: 'operator' } })).secret;
  const v = await refusal(open('/v1/vms/ws2/console/ws', bearer(viewer)));
  assert.equal(v.status, 403);
  assert.match(v.body, /forbidden/);
  assert.equal((await refusal(open('/v1/vms/ws2/console/ws'))).status, 401);
  assert.equal((await refusal(open('/v1/vms/nope/console/ws', bearer(operator)))).status, 404);
  assert.equal((await refusal(open('/v1/vms/ws2/console/ws?offset=-1', bearer(operator)))).status, 400);
  const s = await open('/v1/vms/ws2/console/ws', bearer(operator));
  s.ws.send('echo by-the-operator\n');
  await until('the operator\'s echo', async () => (s.output().includes('by-the-operator') ? true : undefined));
  // A plain GET of the route is no upgrade.
  const plain = await fetch(`${cloud.url}/v1/vms/ws2/console/ws`, { headers: { authorization: `Bearer ${operator}` } });
  assert.equal(plain.status, 400);
});

test('with the session cookie the Origin must be our own: a foreign or missing one is refused', async () => {
  await runningVm('ws3');
  const { cookie, csrf } = await signIn(cloud.cp.adminToken!);
  const own = new URL(cloud.url).origin;
  const foreign = await refusal(open('/v1/vms/ws3/console/ws', { headers: { cookie }, origin: 'http://evil.example' }));
  assert.equal(foreign.status, 403);
  assert.match(foreign.body, /csrf_failed/);
  assert.equal((await refusal(open('/v1/vms/ws3/console/ws', { headers: { cookie }, origin: 'http://127.0.0.1:1' }))).status, 403, 'another port is another origin');
  assert.equal((await refusal(open('/v1/vms/ws3/console/ws', { headers: { cookie } }))).status, 403, 'no Origin with a cookie');
  const s = await open('/v1/vms/ws3/console/ws', { headers: { cookie }, origin: own });
  s.ws.send('echo by-the-panel\n');
  await until('the panel\'s echo', async () => (s.output().includes('by-the-panel') ? true : undefined));
  // Signing out ends the session's socket too.
  assert.equal((await fetch(`${cloud.url}/v1/session`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf } })).status, 200);
  const end = await within(s.closed, 10_000, 'the socket closed after the sign-out');
  assert.equal(end.code, 1008);
  assert.match(end.reason, /session ended/);
});

test('input the VM cannot take is answered with an error frame; the socket stays open', async () => {
  await runningVm('ws4');
  const s = await open('/v1/vms/ws4/console/ws', bearer(cloud.cp.adminToken!));
  await cloud.admin.call('stopVm', { params: { name: 'ws4' } });
  s.ws.send('into-a-stopped-vm\n');
  await until('an error frame', async () => (s.texts.length > 0 ? true : undefined));
  assert.equal((JSON.parse(s.texts[0]!) as { error: { code: string } }).error.code, 'conflict');
  await cloud.admin.call('startVm', { params: { name: 'ws4' } });
  await until('ws4 running again', async () => ((await cloud.admin.call('getVm', { params: { name: 'ws4' } })).state === 'running' ? true : undefined));
  s.ws.send('echo after-the-restart\n');
  await until('the echo after the restart', async () => (s.output().includes('after-the-restart') ? true : undefined));
});

test('the server closes the socket with a reason when the VM is deleted, and when the token is revoked', async () => {
  await runningVm('ws5');
  const s = await open('/v1/vms/ws5/console/ws', bearer(cloud.cp.adminToken!));
  await cloud.admin.call('deleteVm', { params: { name: 'ws5' } });
  const end = await within(s.closed, 10_000, 'the socket closed after the delete');
  assert.equal(end.code, 1000);
  assert.match(end.reason, /vm ws5 was deleted/);

  await runningVm('ws6');
  const { token, secret } = await cloud.admin.call('createToken', { body: { role: 'operator' } });
  const t = await open('/v1/vms/ws6/console/ws', bearer(secret));
  const { cookie } = await signIn(secret);
  const c = await open('/v1/vms/ws6/console/ws', { headers: { cookie }, origin: new URL(cloud.url).origin });
  await cloud.admin.call('deleteToken', { params: { id: token.id } });
  for (const sock of [t, c]) {
    const e = await within(sock.closed, 10_000, 'the socket closed after the revocation');
    assert.equal(e.code, 1008);
  }
  assert.equal(cloud.cp.services.store.changes.listenerCount('logs:' + (await cloud.admin.call('getVm', { params: { name: 'ws6' } })).id), 0, 'closed sockets leave no listener');
});

test('over TLS (HTTP/2 with HTTP/1.1 allowed) the WebSocket works the same', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-wss-'));
  const tls = await ensureServerTls(join(dir, 'cp'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  const cp = createControlPlane({ dataDir: join(dir, 'cp'), https: tls });
  try {
    await cp.listen('127.0.0.1', 0);
    const url = `https://127.0.0.1:${(cp.http.server.address() as { port: number }).port}`;
    const admin = new Client({ url, token: cp.adminToken!, ca: tls.ca });
    const { token } = await admin.call('createNode', { body: { name: 'tn1' } });
    const node = new Client({ url, token, ca: tls.ca });
    await heartbeat(node, 'tn1');
    await uploadImage(admin, 'img');
    const vm = await admin.call('createVm', { body: { name: 'tvm', image: 'img', memory: '128M' } });
    const s = await openSocket(`${url.replace(/^https/, 'wss')}/v1/vms/tvm/console/ws`, { ...bearer(cp.adminToken!), ca: tls.ca });
    sockets.push(s);
    // Output the node ships arrives on the socket; what is typed reaches the node's watch.
    await node.call('nodeConsole', { params: { name: 'tn1', id: vm.id }, body: { offset: 0, base64: Buffer.from('tls-output\n').toString('base64') } });
    await until('output over wss', async () => (s.output() === 'tls-output\n' ? true : undefined));
    s.ws.send('typed-over-wss');
    const typed = await until('input at the node', async () => {
      const w = await node.call('nodeDesired', { params: { name: 'tn1' }, query: { since: 1e9, wait: 1 } });
      return w.consoleInput?.length ? w.consoleInput : undefined;
    });
    assert.deepEqual(typed, [{ id: vm.id, base64: Buffer.from('typed-over-wss').toString('base64') }]);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
