// The SDK's HTTPS transport: every request of a client — long-polls included — is a stream of
// one HTTP/2 connection; an abort cancels only its stream; HTTP/1.1 clients are still served;
// the control plane's close cuts the clients' sessions instead of waiting for them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { ensureServerTls } from '../src/server/tls.ts';
import { Client } from '../src/sdk/node-client.ts';
import { within } from './within.ts';

let dir: string;
let cp: ControlPlane;
let url: string;
let ca: string;
let sessions = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-h2-'));
  const tls = await ensureServerTls(join(dir, 'cp'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  ca = tls.ca;
  cp = createControlPlane({ dataDir: join(dir, 'cp'), https: tls });
  await cp.listen('127.0.0.1', 0);
  cp.http.server.on('secureConnection', () => sessions++);
  url = `https://127.0.0.1:${(cp.http.server.address() as { port: number }).port}`;
});
after(async () => {
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a client holds one connection for its long-polls and requests; an abort cancels one stream', async () => {
  const admin = new Client({ url, token: cp.adminToken!, ca });
  const { token } = await admin.call('createNode', { body: { name: 'n1' } });
  const node = new Client({ url, token, ca });
  const opened = sessions; // (the admin client has its own)
  const first = await node.call('nodeDesired', { params: { name: 'n1' } });
  const stop = new AbortController();
  const watching = node.call('nodeDesired', { params: { name: 'n1' }, query: { since: first.revision, wait: 60 } }, stop.signal);
  const uploads = node.call('nodeReport', { params: { name: 'n1' }, body: { capacity: { cpus: 2, memoryBytes: 2 ** 31, diskBytes: 2 ** 34 }, accel: 'tcg', driver: 'sim', vms: [] } });
  for (let i = 0; i < 5; i++) await node.call('nodeReport', { params: { name: 'n1' }, body: { capacity: { cpus: 2, memoryBytes: 2 ** 31, diskBytes: 2 ** 34 }, accel: 'tcg', driver: 'sim', vms: [] } });
  assert.deepEqual(await uploads, {});
  stop.abort();
  await assert.rejects(watching, (e: Error) => e.name === 'AbortError');
  // The server lets the cancelled long-poll go when its stream closes, not when its 60 s run
  // out: else every cancelled poll leaves a waiter and a timer behind (which also kept this
  // file's process alive after its tests).
  const waiters = () => cp.services.store.changes.listenerCount('node:n1');
  await within((async () => {
    while (waiters() > 0) await new Promise((r) => setTimeout(r, 20));
  })(), 20_000, 'the cancelled long-poll let go on the server');
  // The connection outlives the cancelled stream.
  assert.deepEqual(await node.call('nodeDesired', { params: { name: 'n1' }, query: { since: first.revision, wait: 0 } }), { revision: first.revision, unchanged: true });
  assert.equal((await admin.call('getNode', { params: { name: 'n1' } })).state, 'ready');
  assert.equal(sessions - opened, 1, 'one TLS connection for all of the node client');
});

test('sessions keep no HPACK dynamic tables on the control plane (memory per agent)', async () => {
  const session = http2.connect(url, { ca });
  try {
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    assert.equal(settings.headerTableSize, 0, 'the server asks clients to index nothing');
    // Requests with headers an encoder would index (the same custom header twice), answered
    // with headers the server's encoder would index: neither side's table holds any.
    for (let i = 0; i < 2; i++) {
      const req = session.request({ ':path': '/v1/nodes', authorization: `Bearer ${cp.adminToken!}`, 'x-butter-test': 'x'.repeat(200) });
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => req.once('response', resolve).once('error', reject));
      assert.equal(headers[':status'], 200);
      req.resume();
      await new Promise((resolve) => req.once('end', resolve));
    }
    assert.equal(session.state.deflateDynamicTableSize, 0, "the client's encoder indexed nothing");
    assert.equal(session.state.inflateDynamicTableSize, 0, "the server's encoder indexed nothing");
  } finally {
    session.close();
  }
});

test('HTTP/1.1 clients (curl) are still served', async () => {
  writeFileSync(join(dir, 'ca.pem'), ca);
  // Not execFileSync: the control plane runs in this process and must answer meanwhile.
  const { stdout } = await promisify(execFile)('curl', ['-sS', '--http1.1', '-w', ' %{http_version}', '--cacert', join(dir, 'ca.pem'), `${url}/healthz`]);
  assert.match(stdout, /"revision".* 1\.1$/);
});

test('the control plane closes with a client still connected', async () => {
  // Every agent keeps its connection open (butter up's own, in the same process, too), and a
  // server's close waits for its connections: without fastify's forceCloseConnections
  // (server/http.ts), which cuts every session at once, this close would wait out the 72 s
  // HTTP/2 idle timeout of the client below, and SIGTERM would keep butter up running as long.
  const d = mkdtempSync(join(tmpdir(), 'butter-h2-close-'));
  try {
    const tls = await ensureServerTls(d, { hostnames: ['localhost'], ips: ['127.0.0.1'] });
    const own = createControlPlane({ dataDir: d, https: tls });
    await own.listen('127.0.0.1', 0);
    const client = new Client({ url: `https://127.0.0.1:${(own.http.server.address() as { port: number }).port}`, token: own.adminToken!, ca: tls.ca });
    await client.call('listNodes', {});
    await within(own.close(), 20_000, 'closing the control plane with an idle HTTP/2 client');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a plain-HTTP control plane closes at once too, with a long-poll under way', async () => {
  // `butter server` without TLS, as tests and benchmarks run it: close() must not wait for the
  // long-poll (up to 60 s) nor for the connection's keep-alive (72 s) after it.
  const d = mkdtempSync(join(tmpdir(), 'butter-http-close-'));
  try {
    const own = createControlPlane({ dataDir: d });
    const url = await own.listen('127.0.0.1', 0);
    const admin = new Client({ url, token: own.adminToken! });
    const { token } = await admin.call('createNode', { body: { name: 'n1' } });
    const node = new Client({ url, token });
    const first = await node.call('nodeDesired', { params: { name: 'n1' } });
    const polling = node.call('nodeDesired', { params: { name: 'n1' }, query: { since: first.revision, wait: 60 } }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200)); // the poll has reached the server
    await within(own.close(), 20_000, 'closing the plain-HTTP control plane with a long-poll under way');
    await polling;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
