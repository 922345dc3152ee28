// Every 5xx is a bug or the host's trouble (a full disk): it must never be silent. The answer
// carries a request id, and the same id is logged with the error's stack.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';

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
