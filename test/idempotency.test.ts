// Retried creates are safe (issue 12, item 8): `Idempotency-Key` on the create routes, over real
// HTTP against the real control plane; and the SDK's own retry after a reply lost on the way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Client } from '../src/sdk/client.ts';
import { fakeNode, rejects, reportMesh, startTestCloud, TEST_WG_KEYS, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let operator: string;
let other: string;
before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  await fakeNode(cloud, 'node-1', 64);
  operator = (await cloud.admin.call('createToken', { body: { role: 'operator' } })).secret;
  other = (await cloud.admin.call('createToken', { body: { role: 'operator' } })).secret;
});
after(async () => {
  await cloud?.close();
});

const db = () => cloud.cp.services.store.db;
const count = (sql: string, ...args: unknown[]) => (db().prepare(sql).get(...args) as { n: number }).n;

/** One raw POST, as any HTTP client would send it. */
async function post(path: string, body: unknown, headers: Record<string, string>, token = operator): Promise<{ status: number; replayed: string | null; json: Record<string, unknown> }> {
  const res = await fetch(cloud.url + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, replayed: res.headers.get('idempotent-replayed'), json: (await res.json()) as Record<string, unknown> };
}

test('a retried create with the same key gets the same VM (201, marked replayed), not a 409; one VM exists', async () => {
  const body = { name: 'web', image: 'img', memory: '128M' };
  const first = await post('/v1/vms', body, { 'idempotency-key': '"8e03978e-40d5-43e8-bc93-6894a57f9324"' });
  assert.equal(first.status, 201, JSON.stringify(first.json));
  assert.equal(first.replayed, null);
  const again = await post('/v1/vms', body, { 'idempotency-key': '"8e03978e-40d5-43e8-bc93-6894a57f9324"' });
  assert.equal(again.status, 201, JSON.stringify(again.json));
  assert.equal(again.replayed, 'true');
  assert.deepEqual(again.json, first.json);
  assert.equal(count(`SELECT COUNT(*) AS n FROM vms WHERE name = 'web'`), 1);
  // Without a key a retry is a new request, and the name is taken.
  assert.equal((await post('/v1/vms', body, {})).status, 409);
});

test('the same key with a different body is refused (422 naming the header); nothing is made', async () => {
  const first = await post('/v1/vms', { name: 'db', image: 'img', memory: '128M' }, { 'idempotency-key': 'k-db-1' });
  assert.equal(first.status, 201);
  const other = await post('/v1/vms', { name: 'db2', image: 'img', memory: '128M' }, { 'idempotency-key': 'k-db-1' });
  assert.equal(other.status, 422, JSON.stringify(other.json));
  assert.deepEqual((other.json.error as { field: string }).field, 'Idempotency-Key');
  assert.match((other.json.error as { message: string }).message, /Idempotency-Key/);
  assert.equal(count(`SELECT COUNT(*) AS n FROM vms WHERE name = 'db2'`), 0);
  // The same key on another create route is a different request too.
  assert.equal((await post('/v1/networks', { name: 'db' }, { 'idempotency-key': 'k-db-1' })).status, 422);
});

test("a key belongs to the caller's token: another token's same key and body is a new request", async () => {
  const body = { name: 'mine', image: 'img', memory: '128M' };
  assert.equal((await post('/v1/vms', body, { 'idempotency-key': 'shared-key' })).status, 201);
  const theirs = await post('/v1/vms', body, { 'idempotency-key': 'shared-key' }, other);
  assert.equal(theirs.status, 409, 'not a replay of the other token\'s answer');
  assert.equal(theirs.replayed, null);
});

test('a malformed key is refused (400 naming the header) before anything is made', async () => {
  for (const key of ['', 'x'.repeat(256), 'has space', '"unterminated']) {
    const r = await post('/v1/vms', { name: 'bad-key', image: 'img', memory: '128M' }, { 'idempotency-key': key });
    assert.equal(r.status, 400, `${JSON.stringify(key)}: ${JSON.stringify(r.json)}`);
    assert.equal((r.json.error as { field: string }).field, 'Idempotency-Key');
  }
  assert.equal(count(`SELECT COUNT(*) AS n FROM vms WHERE name = 'bad-key'`), 0);
});

test('concurrent creates with one key (one group commit) make one VM and all answer it', async () => {
  const body = { name: 'burst', image: 'img', memory: '128M' };
  const answers = await Promise.all(Array.from({ length: 6 }, () => post('/v1/vms', body, { 'idempotency-key': 'burst-1' })));
  assert.deepEqual(answers.map((a) => a.status), [201, 201, 201, 201, 201, 201], JSON.stringify(answers.map((a) => a.json)));
  assert.equal(new Set(answers.map((a) => a.json.id)).size, 1);
  assert.equal(answers.filter((a) => a.replayed === null).length, 1, 'one made it, the others replayed it');
  assert.equal(count(`SELECT COUNT(*) AS n FROM vms WHERE name = 'burst'`), 1);
  // The service's own group commit, two writes queued in one turn of the event loop.
  const once = (k: string) => ({ scope: 'test', key: k, route: 'createVm', fingerprint: 'f' });
  const req = { name: 'burst2', image: 'img', memory: '128M' };
  const both = await Promise.allSettled([cloud.cp.services.vms.createQueued('test', req, once('b2')), cloud.cp.services.vms.createQueued('test', req, once('b2'))]);
  assert.equal(both[0]!.status, 'fulfilled');
  assert.equal(both[1]!.status, 'rejected');
  assert.equal((both[1] as PromiseRejectedResult).reason.name, 'Replayed', String((both[1] as PromiseRejectedResult).reason));
  assert.equal(count(`SELECT COUNT(*) AS n FROM vms WHERE name = 'burst2'`), 1);
});

test('a refused create stores no key: the same key then works for a corrected request', async () => {
  const n0 = count(`SELECT COUNT(*) AS n FROM idempotency_keys`);
  const bad = await post('/v1/vms', { name: 'fixme', image: 'no-such-image' }, { 'idempotency-key': 'fix-1' });
  assert.equal(bad.status, 404);
  assert.equal(count(`SELECT COUNT(*) AS n FROM idempotency_keys`), n0);
  assert.equal((await post('/v1/vms', { name: 'fixme', image: 'img', memory: '128M' }, { 'idempotency-key': 'fix-1' })).status, 201);
});

test('keys expire after 24 h (then a retry is a new request) and are pruned', async () => {
  const body = { name: 'old', image: 'img', memory: '128M' };
  assert.equal((await post('/v1/vms', body, { 'idempotency-key': 'old-1' })).status, 201);
  // 25 hours pass (for this key).
  const past = new Date(Date.now() - 25 * 3600_000).toISOString();
  db().prepare(`UPDATE idempotency_keys SET created_at = ? WHERE key = 'old-1'`).run(past);
  const late = await post('/v1/vms', body, { 'idempotency-key': 'old-1' });
  assert.equal(late.status, 409, JSON.stringify(late.json));
  assert.equal(count(`SELECT COUNT(*) AS n FROM idempotency_keys WHERE key = 'old-1'`), 1);
  const fresh = count(`SELECT COUNT(*) AS n FROM idempotency_keys`) - 1;
  cloud.cp.services.idempotency.prune(new Date());
  assert.equal(count(`SELECT COUNT(*) AS n FROM idempotency_keys WHERE key = 'old-1'`), 0);
  assert.equal(count(`SELECT COUNT(*) AS n FROM idempotency_keys`), fresh, 'the fresh keys stay');
});

test('networks, images and VPN peers take a key too', async () => {
  const a = await post('/v1/networks', { name: 'lan', cidr: '10.31.0.0/24' }, { 'idempotency-key': 'net-1' });
  const b = await post('/v1/networks', { name: 'lan', cidr: '10.31.0.0/24' }, { 'idempotency-key': 'net-1' });
  assert.deepEqual([a.status, b.status, b.replayed], [201, 201, 'true']);
  assert.deepEqual(b.json, a.json);
  const sha = (await cloud.admin.call('getImage', { params: { name: 'img' } })).sha256;
  const i1 = await post('/v1/images', { name: 'img2', kind: 'disk', disk: sha }, { 'idempotency-key': 'img-1' });
  const i2 = await post('/v1/images', { name: 'img2', kind: 'disk', disk: sha }, { 'idempotency-key': 'img-1' });
  assert.deepEqual([i1.status, i2.status, i2.replayed], [201, 201, 'true']);
  const gw = await fakeNode(cloud, 'gw-1');
  await reportMesh(gw, 'gw-1', { publicKey: TEST_WG_KEYS[0], listenPort: 51820, endpoint: '192.0.2.5:51820' });
  const p1 = await post('/v1/networks/lan/peers', { name: 'laptop', publicKey: TEST_WG_KEYS[1] }, { 'idempotency-key': 'peer-1' });
  const p2 = await post('/v1/networks/lan/peers', { name: 'laptop', publicKey: TEST_WG_KEYS[1] }, { 'idempotency-key': 'peer-1' });
  assert.deepEqual([p1.status, p2.status, p2.replayed], [201, 201, 'true'], JSON.stringify(p2.json));
  assert.deepEqual(p2.json, p1.json);
});

test('the SDK sends a key and reuses it when it retries a create whose reply was lost', async () => {
  // A proxy that forwards the first create and then drops the connection instead of the reply.
  const seen: (string | undefined)[] = [];
  const proxy: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>;
      const creating = req.method === 'POST' && req.url === '/v1/vms';
      if (creating) seen.push(req.headers['idempotency-key'] as string | undefined);
      void fetch(cloud.url + req.url, { method: req.method!, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) }).then(async (up) => {
        const text = await up.text();
        if (creating && seen.length === 1) return req.socket.destroy(); // made, but the answer never arrives
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json', ...(up.headers.get('idempotent-replayed') ? { 'idempotent-replayed': up.headers.get('idempotent-replayed')! } : {}) }).end(text);
      });
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    const sdk = new Client({ url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, token: operator });
    const vm = await sdk.call('createVm', { body: { name: 'lossy', image: 'img', memory: '128M' } });
    assert.equal(seen.length, 2, 'the SDK retried once');
    assert.ok(seen[0] && seen[0] === seen[1], `the same key both times: ${JSON.stringify(seen)}`);
    const row = db().prepare(`SELECT id FROM vms WHERE name = 'lossy'`).all() as { id: string }[];
    assert.deepEqual(row.map((r) => r.id), [vm.id]);
    // A given key is sent as given; two calls without one get different keys.
    await sdk.call('createNetwork', { body: { name: 'n-a' }, idempotencyKey: 'mine-1' });
    await sdk.call('createNetwork', { body: { name: 'n-b' } });
    await sdk.call('createNetwork', { body: { name: 'n-c' } });
    assert.equal(count(`SELECT COUNT(*) AS n FROM idempotency_keys WHERE key = 'mine-1' AND route = 'createNetwork'`), 1);
    assert.equal(count(`SELECT COUNT(DISTINCT key) AS n FROM idempotency_keys WHERE route = 'createNetwork' AND key != 'mine-1' AND key != 'net-1'`), 2);
  } finally {
    proxy.close();
  }
  await rejects(new Client({ url: cloud.url, token: operator }).call('createVm', { body: { name: 'lossy', image: 'img' } }), 409, 'name');
});
