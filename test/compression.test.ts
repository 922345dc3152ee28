// Compression over real HTTP (@fastify/compress): the panel's files and JSON answers over 1 KiB
// are compressed as the client asks (br, gzip); small answers are not; the event stream, blob
// downloads and WebSocket upgrades never are (an SSE stream through a compressor would wait for
// a full block before its client saw any event; a blob is a disk, already compact or not worth
// the CPU, and its Content-Length is what agents check).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';

const SCRIPT = `console.log(${JSON.stringify('panel-script '.repeat(400))})`;

let dir: string;
let cp: ControlPlane;
let url: string;
let auth: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-compress-'));
  mkdirSync(join(dir, 'panel/assets'), { recursive: true });
  writeFileSync(join(dir, 'panel/index.html'), '<!doctype html><title>p</title><script type="module" src="/assets/index-AbC123xy.js"></script>');
  writeFileSync(join(dir, 'panel/assets/index-AbC123xy.js'), SCRIPT);
  cp = createControlPlane({ dataDir: join(dir, 'data'), panelDir: join(dir, 'panel') });
  url = await cp.listen('127.0.0.1', 0);
  auth = `Bearer ${cp.adminToken}`;
});
after(async () => {
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A GET with its raw body (node:http does not decompress, unlike fetch). */
function get(path: string, headers: Record<string, string>, opts: { firstChunk?: boolean } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        // A stream that never ends: its first bytes are enough, and must come uncompressed.
        if (opts.firstChunk) {
          res.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test("the panel's files are compressed as the client asks: br or gzip, and plain without Accept-Encoding", async () => {
  const br = await get('/assets/index-AbC123xy.js', { 'accept-encoding': 'br' });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(brotliDecompressSync(br.body).toString(), SCRIPT);
  assert.ok(br.body.length < SCRIPT.length / 4, `${br.body.length} bytes for ${SCRIPT.length}`);
  const gz = await get('/assets/index-AbC123xy.js', { 'accept-encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(gz.body).toString(), SCRIPT);
  assert.match(String(gz.headers.vary), /accept-encoding/i);
  // The panel's headers survive compression.
  assert.match(String(gz.headers['content-security-policy']), /script-src 'self'/);
  const plain = await get('/assets/index-AbC123xy.js', {});
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.toString(), SCRIPT);
});

test('JSON answers over 1 KiB are compressed, small ones are not', async () => {
  const big = await get('/v1/openapi.json', { authorization: auth, 'accept-encoding': 'gzip, br' });
  assert.equal(big.status, 200);
  assert.equal(big.headers['content-encoding'], 'br', 'br preferred when both are offered');
  assert.ok(JSON.parse(brotliDecompressSync(big.body).toString()).openapi);
  const small = await get('/healthz', { 'accept-encoding': 'gzip, br' });
  assert.equal(small.headers['content-encoding'], undefined);
  assert.ok(JSON.parse(small.body.toString()).revision >= 0);
});

test('the event stream is never compressed: its first message arrives as text at once', async () => {
  const r = await get('/v1/events/stream?since=0', { authorization: auth, 'accept-encoding': 'gzip, br' }, { firstChunk: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], undefined);
  assert.match(r.body.toString(), /^: stream open/);
});

test('blob downloads are never compressed and keep their Content-Length', async () => {
  const bytes = Buffer.from('a compressible disk '.repeat(1000));
  const sha = createHash('sha256').update(bytes).digest('hex');
  const up = await fetch(`${url}/v1/blobs?sha256=${sha}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/octet-stream' }, body: bytes });
  assert.equal(up.status, 201, await up.text());
  const r = await get(`/v1/blobs/${sha}`, { authorization: auth, 'accept-encoding': 'gzip, br' });
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.headers['content-length'], String(bytes.length));
  assert.ok(r.body.equals(bytes));
});

test('/metrics is compressed only when the scraper asks (Prometheus sends Accept-Encoding: gzip), and stays its text format', async () => {
  const r = await get('/metrics', { authorization: auth, 'accept-encoding': 'gzip' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'gzip');
  const text = gunzipSync(r.body).toString();
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.match(text, /^# HELP /m);
  const plain = await get('/metrics', { authorization: auth });
  assert.equal(plain.headers['content-encoding'], undefined);
});
