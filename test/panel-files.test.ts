// The web panel's files as the control plane serves them over real HTTP: index.html and hashed
// assets with their cache headers and the CSP; unknown non-API paths answer index.html while
// the API's unknown paths stay JSON 404s; without a build, a page saying to build it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';

const INDEX = '<!doctype html><title>panel-index-mark</title><script type="module" src="/assets/index-AbC123xy.js"></script>';
const SCRIPT = 'console.log("panel-script-mark")';

let dir: string;
let cp: ControlPlane;
let url: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-panel-'));
  mkdirSync(join(dir, 'panel/assets'), { recursive: true });
  writeFileSync(join(dir, 'panel/index.html'), INDEX);
  writeFileSync(join(dir, 'panel/assets/index-AbC123xy.js'), SCRIPT);
  writeFileSync(join(dir, 'secret.txt'), 'not-for-the-web');
  cp = createControlPlane({ dataDir: join(dir, 'data'), panelDir: join(dir, 'panel') });
  url = await cp.listen('127.0.0.1', 0);
});
after(async () => {
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

function assertPanelHeaders(h: Headers): void {
  const csp = h.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/, 'scripts only from the control plane: no inline, no eval, no remote');
  assert.match(csp, /connect-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /https?:|\*|unsafe-eval/, 'no remote origin anywhere');
  assert.equal(h.get('x-frame-options'), 'DENY');
  assert.equal(h.get('referrer-policy'), 'no-referrer');
}

test('/ answers index.html, never cached without revalidation, with the CSP and frame and referrer headers', async () => {
  const r = await fetch(`${url}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(await r.text(), INDEX);
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  assertPanelHeaders(r.headers);
});

test('hashed assets are immutable', async () => {
  const r = await fetch(`${url}/assets/index-AbC123xy.js`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), SCRIPT);
  assert.match(r.headers.get('content-type') ?? '', /javascript/);
  assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assertPanelHeaders(r.headers);
});

test('an unknown path outside the API answers index.html; the API keeps its JSON 404s and its tokens', async () => {
  const deep = await fetch(`${url}/vms/web?tab=console`);
  assert.equal(deep.status, 200);
  assert.equal(await deep.text(), INDEX);
  assertPanelHeaders(deep.headers);

  for (const path of ['/v1/nope', '/v1', '/healthz/x', '/readyz/x', '/metrics/x']) {
    const r = await fetch(`${url}${path}`);
    assert.equal(r.status, 404, path);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'not_found', path);
  }
  assert.equal((await fetch(`${url}/v1/vms`)).status, 401, 'the API still needs a token');
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const post = await fetch(`${url}/vms/web`, { method: 'POST' });
  assert.equal(post.status, 404, 'only GET and HEAD get the panel');
});

test('nothing outside the panel directory is served', async () => {
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/assets/..%2f..%2fsecret.txt']) {
    const body = await new Promise<string>((resolve, reject) => {
      const u = new URL(url);
      const rq = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${b}`));
      });
      rq.on('error', reject);
      rq.end();
    });
    assert.doesNotMatch(body, /not-for-the-web/, path);
  }
});

test('without a built panel, / says to run npm run build (not a 500)', async () => {
  const other = createControlPlane({ dataDir: join(dir, 'data2'), panelDir: join(dir, 'no-such-dir') });
  try {
    const u = await other.listen('127.0.0.1', 0);
    const r = await fetch(`${u}/`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /npm run build/);
    assertPanelHeaders(r.headers);
    assert.equal((await fetch(`${u}/v1/nope`)).status, 404);
  } finally {
    await other.close();
  }
});
