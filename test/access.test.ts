// Who may call what: every route of the route table, called over real HTTP by every kind of
// caller, must answer as its declared access says (401 without a valid token, 403 for a role
// it does not admit, anything else when admitted), and the secret routes must declare what
// the issue decided, written out here so the route table cannot just agree with itself.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { routes, type Access, type Route } from '../src/api/routes.ts';
import { Client } from '../src/sdk/client.ts';
import { reportMesh, startTestCloud, type TestCloud } from './helpers.ts';

/**
 * The decided minimum role of the routes that reveal secrets (user-data, console output,
 * tokens, image bytes) or change infrastructure and identities. Changing one of these in
 * the route table must be a deliberate change here too.
 */
const DECIDED: Partial<Record<keyof typeof routes, Access>> = {
  getUserData: 'operator',
  setUserData: 'operator',
  vmLogs: 'operator',
  vmConsoleInput: 'operator',
  vmConsoleSocket: 'operator',
  getBlob: 'blob',
  uploadBlob: 'operator',
  createVm: 'operator',
  deleteVm: 'operator',
  startVm: 'operator',
  stopVm: 'operator',
  restartVm: 'operator',
  resizeVm: 'operator',
  createNetwork: 'operator',
  deleteNetwork: 'operator',
  joinNetwork: 'operator',
  revokeNetworkPeer: 'operator',
  createImage: 'operator',
  createImageFromVm: 'operator',
  // A node's bytes for its own export only (server/exports.ts refuses another node's export).
  nodeExportUpload: 'node',
  nodeExportFailed: 'node',
  deleteImage: 'operator',
  listTokens: 'admin',
  createToken: 'admin',
  deleteToken: 'admin',
  createNode: 'admin',
  updateNode: 'admin',
  deleteNode: 'admin',
  cordonNode: 'admin',
  uncordonNode: 'admin',
  drainNode: 'admin',
  evacuateNode: 'admin',
  createJoinToken: 'admin',
  listJoinTokens: 'admin',
  setGroup: 'admin',
  listEvents: 'viewer',
  // The audit log, live: what listEvents shows, no more.
  streamEvents: 'viewer',
  openapi: 'viewer',
  createService: 'operator',
  deleteService: 'operator',
  scaleService: 'operator',
  updateService: 'operator',
  rollbackService: 'operator',
  // A revision's variables are the templates' inputs, as secret as the user-data they render.
  listServiceRevisions: 'operator',
  // Paths are the workloads' firewall and publish services: who runs the services sets them.
  createPath: 'operator',
  deletePath: 'operator',
  removePathMatching: 'operator',
  // Prometheus' token reads the metrics and nothing else; no reader of the state reads them.
  metrics: 'metrics',
};

type Caller = 'anonymous' | 'invalid' | 'join' | 'viewer' | 'operator' | 'admin' | 'metrics' | 'own-node' | 'other-node';
const CALLERS: Caller[] = ['anonymous', 'invalid', 'join', 'viewer', 'operator', 'admin', 'metrics', 'own-node', 'other-node'];
const RANK: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };

/** What `caller` must get from a route with `access` (naming node-a where it names a node): 'ok' is neither 401 nor 403. */
function expected(access: Access, caller: Caller): 401 | 403 | 'ok' {
  if (access === 'public') return 'ok';
  if (access === 'join') return caller === 'join' ? 'ok' : 401;
  if (caller === 'anonymous' || caller === 'invalid' || caller === 'join') return 401;
  if (access === 'any') return 'ok';
  // A metrics token is outside the roles' order: /metrics only, which only it and admin read.
  if (access === 'metrics') return caller === 'admin' || caller === 'metrics' ? 'ok' : 403;
  if (caller === 'metrics') return 403;
  const isNode = caller === 'own-node' || caller === 'other-node';
  if (access === 'node') return caller === 'admin' || caller === 'own-node' ? 'ok' : 403;
  if (access === 'blob') return isNode || RANK[caller]! >= RANK.operator! ? 'ok' : 403;
  return !isNode && RANK[caller]! >= RANK[access]! ? 'ok' : 403;
}

let cloud: TestCloud;
const secrets: Partial<Record<Caller, string>> = {};
const setupErrors: string[] = [];
const USER_DATA_MARK = 'ud-secret-3f9a1c';
const CONSOLE_MARK = 'console-secret-77b2e0';
const IMAGE_MARK = 'baked-into-the-image-5d1e';
let vmId = '';
let imageSha = '';

before(async () => {
  cloud = await startTestCloud();
  secrets.admin = cloud.cp.adminToken!;
  secrets.invalid = 'bt_000000000000_' + 'x'.repeat(32);
  for (const role of ['viewer', 'operator', 'metrics'] as const) {
    try {
      secrets[role] = (await cloud.admin.call('createToken', { body: { role: role as 'viewer' } })).secret;
    } catch (e) {
      setupErrors.push(`cannot issue a ${role} token: ${(e as Error).message}`);
    }
  }
  for (const [caller, name] of [['own-node', 'node-a'], ['other-node', 'node-b']] as const) {
    const { token } = await cloud.admin.call('createNode', { body: { name } });
    secrets[caller] = token;
    await reportMesh(new Client({ url: cloud.url, token }), name);
  }
  secrets.join = (await cloud.admin.call('createJoinToken', { body: {} })).token;

  // Secrets a viewer must never see: user-data, console output, image bytes.
  const blob = await cloud.admin.uploadBlob(Readable.from([Buffer.from(`${IMAGE_MARK}\n`.repeat(64))]));
  imageSha = blob.sha256;
  await cloud.admin.call('createImage', { body: { name: 'img', kind: 'disk', disk: blob.sha256 } });
  const vm = await cloud.admin.call('createVm', { body: { name: 'secretvm', image: 'img', memory: '256M', node: 'node-a', userData: `#cloud-config\npassword: ${USER_DATA_MARK}\n` } });
  vmId = vm.id;
  // A service whose variable is a secret: its rendered user-data and its revisions' variables are.
  await cloud.admin.call('createService', { body: { network: 'default', name: 'svc', blueprint: 'image: { name: img }\ninstance: { memory: 256M, cpus: 1 }\ninitialization: [ { path: a.sh, vars: { Secret: { required: true } } } ]\n', files: { 'a.sh': '#!/bin/sh\necho {{ Secret }}\n' }, vars: { Secret: USER_DATA_MARK } } });
  await new Client({ url: cloud.url, token: secrets['own-node']! }).call('nodeConsole', { params: { name: 'node-a', id: vmId }, body: { offset: 0, base64: Buffer.from(`login: root\nPassword: ${CONSOLE_MARK}\n`).toString('base64') } });
});
after(async () => {
  await cloud?.close();
});

type BodyKind = 'invalid-json' | 'wrong-shape';

/** One raw call of a route: dummy params (node-a where a node route names a node), a body that can never pass validation. */
async function call(route: Route, caller: Caller, body: BodyKind, method: string = route.method): Promise<number> {
  const params: Record<string, string> = { name: route.access === 'node' ? 'node-a' : 'ghost', id: 'abc123', sha256: 'a'.repeat(64), peer: 'ghost' };
  if (route.path.startsWith('/v1/tokens/')) params.id = '000000000000';
  const path = route.path.replace(/\{(\w+)\}/g, (_m, k: string) => params[k]!);
  const headers: Record<string, string> = {};
  const secret = secrets[caller];
  if (caller !== 'anonymous') headers.authorization = `Bearer ${secret}`;
  let payload: string | undefined;
  let query = '';
  if (route.rawBody) {
    // A digest that cannot match: an admitted upload is refused and leaves nothing.
    headers['content-type'] = 'application/octet-stream';
    payload = 'not the blob you are looking for';
    query = `?sha256=${'0'.repeat(64)}`;
  } else if (route.body) {
    headers['content-type'] = 'application/json';
    payload = body === 'invalid-json' ? '{"name": ' : JSON.stringify({ notAField: true });
  }
  const res = await fetch(`${cloud.url}${path}${query}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  // An event stream admitted never ends: its status is the answer.
  if (route.rawMediaType === 'text/event-stream' && res.ok) await res.body?.cancel();
  else await res.arrayBuffer();
  return res.status;
}

for (const body of ['invalid-json', 'wrong-shape'] as BodyKind[]) {
  test(`every route answers every caller as its access says, before reading a body (${body} bodies)`, async () => {
    const wrong: string[] = [...setupErrors];
    for (const [id, route] of Object.entries(routes) as [keyof typeof routes, Route][]) {
      // The decided access, where there is one: the route table does not get to grade itself.
      const access = DECIDED[id] ?? route.access;
      for (const caller of CALLERS) {
        if (secrets[caller] === undefined && caller !== 'anonymous') continue; // named in setupErrors
        const want = expected(access, caller);
        // Fastify answers HEAD for every GET route: it must be guarded the same.
        for (const method of route.method === 'GET' ? ['GET', 'HEAD'] : [route.method]) {
          const got = await call(route, caller, body, method);
          const ok = want === 'ok' ? got !== 401 && got !== 403 && got < 500 : got === want;
          if (!ok) wrong.push(`${caller} ${method} ${route.path} (${id}, ${access}): expected ${want}, got ${got}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });
}

test('the routes that reveal secrets or manage identities and nodes declare the decided role', () => {
  const wrong = Object.entries(DECIDED)
    .filter(([id, access]) => routes[id as keyof typeof routes].access !== access)
    .map(([id, access]) => `${id}: declared ${routes[id as keyof typeof routes].access}, decided ${access}`);
  assert.deepEqual(wrong, []);
});

test('viewer routes only read', () => {
  const writes = Object.entries(routes as Record<string, Route>).filter(([, r]) => r.access === 'viewer' && r.method !== 'GET').map(([id]) => id);
  assert.deepEqual(writes, []);
});

test('nothing a viewer may read carries user-data, console output, image bytes or a token secret', async () => {
  const marks = [USER_DATA_MARK, CONSOLE_MARK, IMAGE_MARK, ...CALLERS.filter((c) => c !== 'invalid' && secrets[c]).map((c) => secrets[c]!.slice(16))];
  const realName = (path: string) => (path.startsWith('/v1/vms') ? 'secretvm' : path.startsWith('/v1/nodes') ? 'node-a' : path.startsWith('/v1/images') ? 'img' : path.startsWith('/v1/services') ? 'svc' : 'default');
  // The viewer does not see them; the operator does (so the marks are there to be found).
  for (const who of ['viewer', 'operator'] as const) {
    assert.ok(secrets[who], setupErrors.join('; '));
    const seen: string[] = [];
    let read = 0;
    for (const [id, route] of Object.entries(routes as Record<string, Route>)) {
      // A WebSocket is no read by GET (test/console-ws.test.ts: a viewer is refused its upgrade).
      if (route.method !== 'GET' || route.websocket) continue;
      const path = route.path.replace(/\{(\w+)\}/g, (_m, k: string) => (k === 'sha256' ? imageSha : realName(route.path)));
      // The one GET whose query is required: a question about the service.
      const query = id === 'checkPath' ? '?internet=1&to=svc&port=80' : '';
      const stream = route.rawMediaType === 'text/event-stream';
      const res: Response = await fetch(`${cloud.url}${path}${stream ? '?since=0' : query}`, { headers: { authorization: `Bearer ${secrets[who]}` } });
      const text = stream && res.ok ? await replayed(res) : await res.text();
      if (res.status === 403) continue;
      assert.equal(res.status, 200, `${who} ${id}: ${text}`);
      read++;
      for (const m of marks) if (text.includes(m)) seen.push(`${id} shows ${m}`);
    }
    if (who === 'viewer') assert.deepEqual(seen, [], 'a viewer reads no secret');
    else assert.deepEqual(seen.map((s) => s.split(' ')[0]).sort(), ['getBlob', 'getUserData', 'listServiceRevisions', 'vmLogs'], `the operator reads them: ${seen.join('; ')}`);
    assert.ok(read >= 10, `${who} read ${read} routes`);
  }
});

/** An event stream's replay of the whole audit log (it never ends: read until every stored event came). */
async function replayed(res: Response): Promise<string> {
  const want = (await cloud.admin.call('listEvents', { query: { limit: 1000 } })).items.length;
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while ((text.match(/^event: audit$/gm) ?? []).length < want) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

test('a forbidden caller gets 403 even with a body too large to read', async () => {
  const res = await fetch(`${cloud.url}/v1/vms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secrets.viewer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'big', image: 'img', userData: 'x'.repeat(3 * 1024 * 1024) }),
  });
  assert.equal(res.status, 403, await res.text());
});

test('the refusal says which role the route needs', async () => {
  const res = await fetch(`${cloud.url}/v1/vms/secretvm/user-data`, { headers: { authorization: `Bearer ${secrets.viewer}` } });
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, 403);
  assert.equal(body.error.code, 'forbidden');
  assert.match(body.error.message, /viewer token .* needs an operator or admin token/);
});
