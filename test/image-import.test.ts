// Images imported by URL (POST /v1/images/import) over real HTTP: the control plane downloads
// from a local HTTP server (127.0.0.1, allowed by the tests-only option), reports its progress,
// and makes the image ready; a wrong digest or an HTTP error ends it `failed` with no blob
// left; bad URLs are 400 at once; without the option, loopback and metadata hosts are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ButterError } from '../src/sdk/client.ts';
import { startTestCloud, until, type TestCloud } from './helpers.ts';

const DISK = Buffer.alloc(3 * 1024 * 1024, 7);
const SHA = createHash('sha256').update(DISK).digest('hex');

let cloud: TestCloud;
let strict: TestCloud;
let origin: Server;
let base: string;
/** Release for the slow path: it sends half, then waits for this. */
let release: () => void = () => {};

before(async () => {
  origin = createServer((req, res) => {
    const path = req.url!.split('?')[0];
    if (path === '/disk.raw') return res.writeHead(200, { 'content-length': DISK.length }).end(DISK);
    if (path === '/slow.raw') {
      res.writeHead(200, { 'content-length': DISK.length });
      res.write(DISK.subarray(0, DISK.length / 2));
      new Promise<void>((r) => (release = r)).then(() => res.end(DISK.subarray(DISK.length / 2)));
      return;
    }
    if (path === '/moved') return res.writeHead(302, { location: '/disk.raw' }).end();
    res.writeHead(404).end('no such file');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  cloud = await startTestCloud({ imageImports: { allowLocalHosts: true } });
  strict = await startTestCloud();
});
after(async () => {
  release();
  await cloud?.close();
  await strict?.close();
  origin?.closeAllConnections();
  await new Promise((r) => origin?.close(r));
});

const blobFiles = (c: TestCloud) => readdirSync(join(c.dir, 'blobs', 'sha256'));
const imported = (c: TestCloud, name: string) =>
  until(`image ${name} imported or failed`, async () => {
    const i = await c.admin.call('getImage', { params: { name } });
    return i.status === 'importing' ? undefined : i;
  }, 60_000);

async function refused(p: Promise<unknown>): Promise<ButterError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ButterError) return e;
    throw e;
  }
  assert.fail('not refused');
}

test('an import answers 202 importing, shows its progress (bytes done / total) while it runs, then the image is ready with its digest', async () => {
  const res = await fetch(`${cloud.url}/v1/images/import`, { method: 'POST', headers: { authorization: `Bearer ${cloud.cp.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'slow', kind: 'disk', url: `${base}/slow.raw?sig=secret-signature`, sha256: SHA }) });
  assert.equal(res.status, 202);
  const first = (await res.json()) as { status: string; import: { url: string } };
  assert.equal(first.status, 'importing');
  assert.equal(first.import.url, `${base}/slow.raw`, 'the query (a signed URL\'s secret) is not shown');
  // Half sent, the origin waits: the image says so.
  const midway = await until('half of it downloaded', async () => {
    const i = await cloud.admin.call('getImage', { params: { name: 'slow' } });
    return i.import && i.import.bytesDone >= DISK.length / 2 ? i : undefined;
  }, 30_000);
  assert.equal(midway.status, 'importing');
  assert.equal(midway.import!.bytesTotal, DISK.length);
  assert.ok(midway.import!.bytesDone < DISK.length);
  // A VM cannot use it yet; a second import of the name is refused.
  const again = await refused(cloud.admin.call('importImage', { body: { name: 'slow', kind: 'disk', url: `${base}/disk.raw`, sha256: SHA } }));
  assert.equal(again.status, 409);
  release();
  const done = await imported(cloud, 'slow');
  assert.equal(done.status, 'ready');
  assert.equal(done.sha256, SHA);
  assert.equal(done.sizeBytes, DISK.length);
  assert.equal(done.format, 'raw');
  assert.equal(done.import, undefined);
  assert.ok(blobFiles(cloud).includes(SHA));
  // One event at the start, one at the end (none per chunk).
  const events = (await cloud.admin.call('listEvents', { query: { resource: 'image', name: 'slow', limit: 100 } })).items.filter((e) => e.action === 'import');
  assert.equal(events.length, 2, JSON.stringify(events));
  assert.ok(events.every((e) => !e.message.includes('secret-signature')));
});

test('a wrong digest ends the import failed, with the reason, and leaves no blob; deleting the failed image clears it', async () => {
  const wrong = 'ab'.repeat(32);
  const before = blobFiles(cloud);
  const start = await cloud.admin.call('importImage', { body: { name: 'wrongsum', kind: 'disk', url: `${base}/disk.raw`, sha256: wrong } });
  assert.equal(start.status, 'importing');
  const i = await imported(cloud, 'wrongsum');
  assert.equal(i.status, 'failed');
  assert.match(i.import!.error!, /sha256 mismatch/);
  assert.deepEqual(blobFiles(cloud), before, 'no blob kept');
  assert.deepEqual(readdirSync(join(cloud.dir, 'blobs', 'tmp')), [], 'no temp file kept');
  await cloud.admin.call('deleteImage', { params: { name: 'wrongsum' } });
  assert.equal((await refused(cloud.admin.call('getImage', { params: { name: 'wrongsum' } }))).status, 404);
});

test('an HTTP error or a redirect from the origin ends the import failed with the status', async () => {
  await cloud.admin.call('importImage', { body: { name: 'gone', kind: 'disk', url: `${base}/nothing.raw`, sha256: SHA } });
  assert.match((await imported(cloud, 'gone')).import!.error!, /answered 404/);
  await cloud.admin.call('importImage', { body: { name: 'moved', kind: 'disk', url: `${base}/moved`, sha256: SHA } });
  assert.match((await imported(cloud, 'moved')).import!.error!, /answered 302 \(a redirect/);
});

test('bad input is a 400 naming its field, at once: not http(s), not a URL, no digest; a taken name is 409', async () => {
  for (const [body, field] of [
    [{ name: 'x', kind: 'disk', url: 'file:///etc/shadow', sha256: SHA }, 'url'],
    [{ name: 'x', kind: 'disk', url: 'ftp://example.com/a.raw', sha256: SHA }, 'url'],
    [{ name: 'x', kind: 'disk', url: 'not a url', sha256: SHA }, 'url'],
    [{ name: 'x', kind: 'disk', url: `${base}/disk.raw` }, 'sha256'],
  ] as const) {
    const e = await refused(cloud.admin.call('importImage', { body: body as never }));
    assert.deepEqual([e.status, e.field], [400, field], JSON.stringify(body));
  }
  await cloud.admin.call('importImage', { body: { name: 'taken', kind: 'disk', url: `${base}/disk.raw`, sha256: SHA } });
  assert.equal((await imported(cloud, 'taken')).status, 'ready');
  assert.equal((await refused(cloud.admin.call('importImage', { body: { name: 'taken', kind: 'disk', url: `${base}/disk.raw`, sha256: SHA } }))).status, 409);
});

test('without the tests-only option, hosts resolving to loopback, link-local (metadata) or unspecified addresses are refused (400 url), nothing started', async () => {
  for (const url of [`${base}/disk.raw`, 'http://localhost:9/disk.raw', 'http://169.254.169.254/latest/meta-data/', 'http://[::1]:9/x', 'http://0.0.0.0:9/x', 'http://[::ffff:127.0.0.1]:9/x']) {
    const e = await refused(strict.admin.call('importImage', { body: { name: 'local', kind: 'disk', url, sha256: SHA } }));
    assert.deepEqual([e.status, e.field], [400, 'url'], url);
    assert.match(e.message, /does not import from there/);
  }
  assert.deepEqual((await strict.admin.call('listImages', {})).items.filter((i) => i.name === 'local'), []);
});
