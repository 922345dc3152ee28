// Every 5xx is a bug or the host's trouble (a full disk): it must never be silent. The answer
// carries a request id, and the same id is logged with the error's stack.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { ButterError, Client } from '../src/sdk/client.ts';
import { until } from './helpers.ts';

let cp: ControlPlane;
let url: string;
let dir: string;
const logged: { err: unknown; requestId: string; method: string; url: string }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-5xx-'));
  cp = createControlPlane({ dataDir: dir, onServerError: (err, ctx) => logged.push({ err, ...ctx }) });
  url = await cp.listen('127.0.0.1', 0);
});
after(async () => {
  await cp.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a 500 carries a request id, in the body and a header, and the error is logged with its stack under that id', async () => {
  // The store failing under a handler, as a full disk would make it.
  cp.services.images.list = () => {
    throw new Error('SQLITE_FULL: database or disk is full');
  };
  const res = await fetch(`${url}/v1/images`, { headers: { authorization: `Bearer ${cp.adminToken}` } });
  assert.equal(res.status, 500);
  const body = (await res.json()) as { error: { code: string; message: string; requestId?: string } };
  assert.equal(body.error.code, 'internal');
  assert.match(body.error.requestId ?? '', /^[0-9a-f]{16}$/, JSON.stringify(body));
  assert.equal(res.headers.get('x-request-id'), body.error.requestId);
  assert.doesNotMatch(body.error.message, /SQLITE_FULL/, 'no internals in the answer');
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.requestId, body.error.requestId);
  assert.deepEqual([logged[0]!.method, logged[0]!.url], ['GET', '/v1/images']);
  assert.match(String((logged[0]!.err as Error).stack), /SQLITE_FULL[\s\S]*server-errors\.test\.ts/);
});

test('a 4xx is not logged as a server error and has no request id', async () => {
  logged.length = 0;
  const res = await fetch(`${url}/v1/images/nope`, { headers: { authorization: `Bearer ${cp.adminToken}` } });
  assert.equal(res.status, 404);
  assert.equal(((await res.json()) as { error: { requestId?: string } }).error.requestId, undefined);
  assert.equal(logged.length, 0);
});

test('requests under way when the control plane closes get a 503 or their connection cut, never a 500 ("database connection is not open") logged as a bug', async () => {
  // Long-polls are what is always under way (every agent has one): the close cuts their
  // connections, which wakes their handlers, and those then read a store that is closing.
  const d = mkdtempSync(join(tmpdir(), 'butter-5xx-close-'));
  const seen: unknown[] = [];
  try {
    const own = createControlPlane({ dataDir: d, onServerError: (err) => seen.push(err) });
    const base = await own.listen('127.0.0.1', 0);
    const admin = new Client({ url: base, token: own.adminToken! });
    const { token } = await admin.call('createNode', { body: { name: 'n1' } });
    const node = new Client({ url: base, token });
    const { revision } = await node.call('nodeDesired', { params: { name: 'n1' } });
    const polls = Array.from({ length: 5 }, () =>
      node.call('nodeDesired', { params: { name: 'n1' }, query: { since: revision, wait: 60 } }).then(
        () => 'answered',
        (e: unknown) => (e instanceof ButterError ? e.status : 'cut'),
      ),
    );
    await until('the polls wait on the server', async () => (own.services.store.changes.listenerCount('node:n1') === 5 ? true : undefined));
    await own.close();
    for (const r of await Promise.all(polls)) assert.ok(r === 'cut' || r === 503, `a poll ended with ${r}`);
    // The cut woke every handler (their waits let go); then each answers within a few turns of the event loop.
    await until('the polls let go on the server', async () => (own.services.store.changes.listenerCount('node:n1') === 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen.map((e) => String(e)), [], 'no server error logged');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
