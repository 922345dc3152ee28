import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpGet, retry } from './testing.ts';

test('retry returns what the first attempt that does not throw returned', async () => {
  let n = 0;
  const v = await retry(
    () => {
      if (++n < 3) throw new Error(`not yet (${n})`);
      return n;
    },
    { deadlineMs: 60_000, intervalMs: 1 },
  );
  assert.equal(v, 3);
});

test('retry gives up past its deadline with the last failure, as cause too', async () => {
  let n = 0;
  const last = new Error('still refused');
  await assert.rejects(
    retry(
      () => {
        n++;
        throw last;
      },
      { deadlineMs: 30, intervalMs: 5 },
    ),
    (e: Error) => {
      assert.match(e.message, /^gave up after \d+ attempt\(s\) in 0 s: still refused$/);
      assert.equal(e.cause, last);
      return true;
    },
  );
  assert.ok(n >= 1);
});

test('httpGet answers any status with the body; a refused connection throws naming the URL', async () => {
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/missing' ? 404 : 200;
    res.end(`you asked for ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    assert.deepEqual(await httpGet(`http://127.0.0.1:${port}/page`), { status: 200, body: 'you asked for /page' });
    assert.deepEqual(await httpGet(`http://127.0.0.1:${port}/missing`), { status: 404, body: 'you asked for /missing' });
  } finally {
    await new Promise((r) => server.close(r));
  }
  await assert.rejects(httpGet(`http://127.0.0.1:${port}/`), new RegExp(`^Error: GET http://127\\.0\\.0\\.1:${port}/: connect ECONNREFUSED`));
});
