// The browser-safe Client: its transport is injected, it sends the credentials mode it was
// given, the CSRF header on changes only (asked anew per request), and refuses a CA it
// could not use (node-client.ts's Client takes that).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from './client.ts';
import { Client as NodeClient } from './node-client.ts';

function recorder() {
  const seen: { url: string; init: RequestInit }[] = [];
  const fetch = async (url: string, init: RequestInit = {}) => {
    seen.push({ url, init });
    return new Response(JSON.stringify({ items: [], revision: 1, role: 'admin', node: null, tls: null }), { status: url.endsWith('/v1/vms') && init.method === 'POST' ? 201 : 200 });
  };
  return { seen, fetch };
}

test('an injected fetch carries every call, with the credentials mode and, on changes only, the current CSRF value', async () => {
  const r = recorder();
  const session: { csrf?: string } = {};
  const c = new Client({ url: 'http://127.0.0.1:9/', credentials: 'same-origin', csrf: () => session.csrf, fetch: r.fetch });
  await c.call('whoami', {});
  session.csrf = 'c1';
  await c.call('listVms', {});
  await c.call('createVm', { body: { name: 'web', image: 'tiny' } });
  await c.call('deleteSession', {});
  const h = (i: number) => (r.seen[i]!.init.headers ?? {}) as Record<string, string>;
  assert.deepEqual(r.seen.map((s) => `${s.init.method} ${s.url}`), ['GET http://127.0.0.1:9/v1/whoami', 'GET http://127.0.0.1:9/v1/vms', 'POST http://127.0.0.1:9/v1/vms', 'DELETE http://127.0.0.1:9/v1/session']);
  assert.ok(r.seen.every((s) => s.init.credentials === 'same-origin'));
  assert.equal(h(0)['x-csrf-token'], undefined);
  assert.equal(h(1)['x-csrf-token'], undefined, 'a GET carries no CSRF value');
  assert.equal(h(2)['x-csrf-token'], 'c1');
  assert.match(h(2)['idempotency-key']!, /^"[0-9a-f-]{36}"$/, 'a key made with the web crypto API');
  assert.equal(h(3)['x-csrf-token'], 'c1');
  assert.equal(h(2).authorization, undefined, 'no token: the cookie authenticates');
});

test('a CA given to the browser-safe client is refused, not silently ignored; the Node client takes it', () => {
  const opts = { url: 'https://127.0.0.1:7700', ca: '-----BEGIN CERTIFICATE-----' };
  assert.throws(() => new Client(opts), /needs the Node client/);
  assert.ok(new NodeClient(opts) instanceof Client);
});
