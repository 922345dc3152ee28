// Panel sessions over real HTTP: sign in sets the cookie with its flags; the cookie
// authenticates; changing requests need the CSRF header; sign-out, token revocation and wrong
// or node tokens; the limit on failed sign-ins.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestCloud, type TestCloud } from './helpers.ts';

let cloud: TestCloud;

before(async () => {
  cloud = await startTestCloud();
});
after(async () => {
  await cloud?.close();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function req(method: string, path: string, opts: { cookie?: string; csrf?: string; body?: unknown; authorization?: string; url?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
  if (opts.authorization) headers.authorization = opts.authorization;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${opts.url ?? cloud.url}${path}`, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: r.headers };
}

/** Signs in with `token`: the cookie to send back (`butter_session=…`) and the answer. */
async function signIn(token: string, url?: string): Promise<{ cookie: string; csrf: string; answer: Answer }> {
  const answer = await req('POST', '/v1/sessions', { body: { token }, ...(url ? { url } : {}) });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  const set = answer.headers.get('set-cookie') ?? '';
  return { cookie: set.split(';')[0]!, csrf: answer.body.csrf as string, answer };
}

const errorCode = (a: Answer) => (a.body.error as { code: string } | undefined)?.code;

test('sign in answers role, csrf and end, and sets an HttpOnly, Secure, SameSite=Strict cookie for /', async () => {
  const { answer, cookie } = await signIn(cloud.cp.adminToken!);
  assert.equal(answer.body.role, 'admin');
  assert.match(answer.body.csrf as string, /^[A-Za-z0-9_-]{43}$/);
  const hours = (Date.parse(answer.body.expiresAt as string) - Date.now()) / 3600_000;
  assert.ok(hours > 11.9 && hours <= 12, `expires in ${hours} h`);
  const set = answer.headers.get('set-cookie')!;
  const [pair, ...attrs] = set.split(/;\s*/);
  assert.match(pair!, /^butter_session=[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(attrs.map((a) => a.toLowerCase()).sort(), ['httponly', 'path=/', 'samesite=strict', 'secure']);
  assert.ok(!set.includes(cloud.cp.adminToken!), 'the cookie is not the token');
  // The store keeps the cookie's hash, not the cookie.
  const rows = cloud.cp.services.store.db.prepare(`SELECT hash FROM sessions`).all() as { hash: string }[];
  assert.ok(rows.length > 0 && rows.every((r) => !cookie.includes(r.hash)));
});

test('the cookie authenticates GETs as its token; GET /v1/session tells role and csrf', async () => {
  const { cookie, csrf } = await signIn(cloud.cp.adminToken!);
  const vms = await req('GET', '/v1/vms', { cookie });
  assert.equal(vms.status, 200);
  const who = await req('GET', '/v1/whoami', { cookie });
  assert.equal(who.body.role, 'admin');
  const s = await req('GET', '/v1/session', { cookie });
  assert.equal(s.status, 200);
  const session = s.body.session as { csrf: string; role: string };
  assert.equal(session.csrf, csrf);
  assert.equal(session.role, 'admin');
  // No cookie, no header: 401 as before.
  assert.equal((await req('GET', '/v1/vms')).status, 401);
  // A bearer caller has no session to describe.
  assert.deepEqual(await req('GET', '/v1/session', { authorization: `Bearer ${cloud.cp.adminToken}` }).then((a) => [a.status, a.body]), [200, { session: null }]);
});

test('GET /v1/session without a live session answers 200 {session: null}, never 401 (the sign-in page loads without an error)', async () => {
  const none = await req('GET', '/v1/session');
  assert.deepEqual([none.status, none.body], [200, { session: null }], 'no cookie');
  const bogus = await req('GET', '/v1/session', { cookie: 'butter_session=not-a-session' });
  assert.deepEqual([bogus.status, bogus.body], [200, { session: null }], 'a cookie naming no session');
  const { cookie, csrf } = await signIn(cloud.cp.adminToken!);
  assert.equal((await req('DELETE', '/v1/session', { cookie, csrf })).status, 200);
  const ended = await req('GET', '/v1/session', { cookie });
  assert.deepEqual([ended.status, ended.body], [200, { session: null }], 'a signed-out session');
  // The session's other routes still refuse it.
  assert.equal((await req('GET', '/v1/vms', { cookie })).status, 401);
});

test("revoking a session's token ends its open event stream; reconnecting is 401", async () => {
  const { token, secret } = await cloud.admin.call('createToken', { body: { role: 'viewer' } });
  const { cookie } = await signIn(secret);
  const res = await fetch(`${cloud.url}/v1/events/stream`, { headers: { cookie } });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const readAll = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return 'ended';
      text += decoder.decode(value, { stream: true });
    }
  })();
  await cloud.admin.call('deleteToken', { params: { id: token.id } });
  // A later change: the stream (ended) must not carry it.
  await cloud.admin.call('createNetwork', { body: { name: 'after-revoke', cidr: '10.78.0.0/24' } });
  const outcome = await Promise.race([readAll, new Promise((r) => setTimeout(() => r('still open'), 5000))]);
  if (outcome !== 'ended') await reader.cancel();
  assert.equal(outcome, 'ended', 'the stream of a revoked session ends');
  assert.ok(!text.includes('after-revoke'), 'nothing after the revocation was sent');
  assert.equal((await fetch(`${cloud.url}/v1/events/stream`, { headers: { cookie } })).status, 401);
});

test('a changing request with the cookie needs x-csrf-token: without or wrong 403 csrf_failed, with it done', async () => {
  const { cookie, csrf } = await signIn(cloud.cp.adminToken!);
  const body = { name: 'sess-net', cidr: '10.77.0.0/24' };
  const none = await req('POST', '/v1/networks', { cookie, body });
  assert.equal(none.status, 403);
  assert.equal(errorCode(none), 'csrf_failed');
  const wrong = await req('POST', '/v1/networks', { cookie, body, csrf: csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A') });
  assert.equal(errorCode(wrong), 'csrf_failed');
  assert.equal((await req('GET', '/v1/networks/sess-net', { cookie })).status, 404, 'nothing was made');
  const ok = await req('POST', '/v1/networks', { cookie, body, csrf });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const events = await cloud.admin.call('listEvents', { query: { since: 0, limit: 1000 } });
  const made = events.items.find((e) => e.resource === 'network' && e.name === 'sess-net');
  assert.match(made!.actor, /^admin:/, 'the action is the token\'s');
});

test('an Authorization header wins over the cookie', async () => {
  const viewer = (await cloud.admin.call('createToken', { body: { role: 'viewer' } })).secret;
  const { cookie } = await signIn(viewer);
  const who = await req('GET', '/v1/whoami', { cookie, authorization: `Bearer ${cloud.cp.adminToken}` });
  assert.equal(who.body.role, 'admin');
  // And a bad header is not rescued by a good cookie.
  assert.equal((await req('GET', '/v1/whoami', { cookie, authorization: 'Bearer nonsense' })).status, 401);
});

test('a viewer session may not change anything, CSRF value or not', async () => {
  const viewer = (await cloud.admin.call('createToken', { body: { role: 'viewer' } })).secret;
  const { cookie, csrf, answer } = await signIn(viewer);
  assert.equal(answer.body.role, 'viewer');
  const r = await req('POST', '/v1/networks', { cookie, csrf, body: { name: 'viewer-net', cidr: '10.78.0.0/24' } });
  assert.equal(r.status, 403);
  assert.equal(errorCode(r), 'forbidden');
});

test('sign out ends the session on the server and clears the cookie', async () => {
  const { cookie, csrf } = await signIn(cloud.cp.adminToken!);
  const noCsrf = await req('DELETE', '/v1/session', { cookie });
  assert.equal(errorCode(noCsrf), 'csrf_failed');
  const out = await req('DELETE', '/v1/session', { cookie, csrf });
  assert.equal(out.status, 200);
  assert.match(out.headers.get('set-cookie') ?? '', /^butter_session=;.*Expires=Thu, 01 Jan 1970/);
  const again = await req('GET', '/v1/vms', { cookie });
  assert.equal(again.status, 401);
  assert.match(JSON.stringify(again.body), /session has ended/);
});

test('revoking the token ends its sessions', async () => {
  const { token, secret } = await cloud.admin.call('createToken', { body: { role: 'operator' } });
  const { cookie } = await signIn(secret);
  assert.equal((await req('GET', '/v1/vms', { cookie })).status, 200);
  await cloud.admin.call('deleteToken', { params: { id: token.id } });
  assert.equal((await req('GET', '/v1/vms', { cookie })).status, 401);
  assert.equal((cloud.cp.services.store.db.prepare(`SELECT COUNT(*) AS n FROM sessions WHERE token_id = ?`).get(token.id) as { n: number }).n, 0);
});

test('an expired session is refused and pruned', async () => {
  const { cookie } = await signIn(cloud.cp.adminToken!);
  const db = cloud.cp.services.store.db;
  db.prepare(`UPDATE sessions SET expires_at = ?`).run(new Date(Date.now() - 1000).toISOString());
  assert.equal((await req('GET', '/v1/vms', { cookie })).status, 401);
  assert.ok(cloud.cp.services.sessions.prune(new Date()) > 0);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM sessions`).get() as { n: number }).n, 0);
});

test('a node token may not open a session (403)', async () => {
  const { token } = await cloud.admin.call('createNode', { body: { name: 'sess-node' } });
  const r = await req('POST', '/v1/sessions', { body: { token } });
  assert.equal(r.status, 403);
  assert.equal(errorCode(r), 'forbidden');
  assert.equal(r.headers.get('set-cookie'), null);
});

test('a wrong token is 401 and sets no cookie; after 10 failures a minute the address gets 429, even with a good token', async () => {
  // Its own control plane: the limit is per address, and every test here comes from 127.0.0.1.
  const other = await startTestCloud();
  try {
    const bad = `bt_${'0'.repeat(12)}_${'x'.repeat(32)}`;
    for (let i = 0; i < 10; i++) {
      const r = await req('POST', '/v1/sessions', { body: { token: i % 2 ? bad : 'not a token' }, url: other.url });
      assert.equal(r.status, 401, `attempt ${i + 1}`);
      assert.equal(r.headers.get('set-cookie'), null);
      assert.equal((r.body.error as { field?: string }).field, 'token');
    }
    const limited = await req('POST', '/v1/sessions', { body: { token: other.cp.adminToken }, url: other.url });
    assert.equal(limited.status, 429);
    assert.equal(errorCode(limited), 'too_many_requests');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    // Bearer calls are not sign-ins: they go on.
    assert.equal((await req('GET', '/v1/vms', { authorization: `Bearer ${other.cp.adminToken}`, url: other.url })).status, 200);
  } finally {
    await other.close();
  }
});
