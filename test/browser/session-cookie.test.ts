// Does a real browser keep the `Secure` session cookie where the panel is used? Headless
// Chromium against the control plane over plain HTTP on 127.0.0.1 and on localhost (tests,
// `butter up` on one machine), and over HTTPS under Butter's own CA (the server's certificate
// accepted by its CA's key hash, as `--ca-hash` pins it). In each, the page signs in, the cookie
// is HttpOnly (the page cannot read it), later requests carry it, and the console WebSocket
// opens with it under the panel's CSP (connect-src 'self' must admit ws: and wss:). Under any
// other name over plain HTTP the browser drops it (a Secure cookie needs a secure origin).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { chromium, type Browser } from 'playwright-core';
import { createControlPlane, type ControlPlane } from '../../src/server/control-plane.ts';
import { ensureServerTls } from '../../src/server/tls.ts';
import { Client } from '../../src/sdk/node-client.ts';

const LAUNCH = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

let dir: string;
const planes: ControlPlane[] = [];
const browsers: Browser[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'butter-cookie-'));
  mkdirSync(join(dir, 'panel'));
  writeFileSync(join(dir, 'panel/index.html'), '<!doctype html><title>cookie test</title><p>panel</p>');
});
after(async () => {
  for (const b of browsers) await b.close();
  for (const cp of planes) await cp.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A control plane with a VM placed on a fake node (so its console socket can open), and the node's client. */
async function plane(name: string, https?: Awaited<ReturnType<typeof ensureServerTls>>): Promise<{ cp: ControlPlane; port: number; node: Client; vmId: string }> {
  const cp = createControlPlane({ dataDir: join(dir, name), panelDir: join(dir, 'panel'), ...(https ? { https } : {}) });
  planes.push(cp);
  await cp.listen('127.0.0.1', 0);
  const port = (cp.http.server.address() as { port: number }).port;
  const url = `${https ? 'https' : 'http'}://127.0.0.1:${port}`;
  const ca = https ? { ca: https.ca } : {};
  const admin = new Client({ url, token: cp.adminToken!, ...ca });
  const { token } = await admin.call('createNode', { body: { name: 'n1' } });
  const node = new Client({ url, token, ...ca });
  await node.call('nodeReport', { params: { name: 'n1' }, body: { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] } });
  const blob = await admin.uploadBlob(Readable.from([Buffer.from('disk'.repeat(100))]));
  await admin.call('createImage', { body: { name: 'img', kind: 'disk', disk: blob.sha256 } });
  const vm = await admin.call('createVm', { body: { name: 'web', image: 'img', memory: '128M' } });
  return { cp, port, node, vmId: vm.id };
}

async function launch(args: string[] = []): Promise<Browser> {
  const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...LAUNCH, ...args] });
  browsers.push(b);
  return b;
}

/**
 * In the page at `origin`: sign in, read document.cookie, call whoami with the cookie, open the
 * console socket and type into it. What the browser kept comes from its cookie jar.
 */
async function signInFromPage(browser: Browser, origin: string, p: Awaited<ReturnType<typeof plane>>): Promise<void> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (m) => m.type() === 'error' && violations.push(m.text()));
  const landing = await page.goto(`${origin}/`);
  assert.equal(landing?.status(), 200);
  const token = p.cp.adminToken!;
  const got = await page.evaluate(async (token: string) => {
    const signIn = await fetch('/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }), credentials: 'same-origin' });
    const session = (await signIn.json()) as { role: string; csrf: string };
    const who = await fetch('/v1/whoami', { credentials: 'same-origin' });
    const socket = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/v1/vms/web/console/ws`);
      ws.onopen = () => {
        ws.send('typed-in-the-browser');
        resolve('open');
      };
      ws.onerror = () => resolve('error');
    });
    return { signIn: signIn.status, role: session.role, readable: document.cookie, whoami: who.status, whoRole: ((await who.json()) as { role: string }).role, socket };
  }, token);
  assert.deepEqual(got, { signIn: 201, role: 'admin', readable: '', whoami: 200, whoRole: 'admin', socket: 'open' }, `console errors: ${violations.join('; ')}`);
  const jar = await context.cookies();
  const c = jar.find((x) => x.name === 'butter_session');
  assert.ok(c, `the browser kept the cookie: ${JSON.stringify(jar)}`);
  assert.equal(c.secure, true);
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Strict');
  assert.equal(c.path, '/');
  // The keystrokes reached the node's watch: the socket was the cookie's.
  const w = await p.node.call('nodeDesired', { params: { name: 'n1' }, query: { since: 1e9, wait: 5 } });
  assert.deepEqual(w.consoleInput, [{ id: p.vmId, base64: Buffer.from('typed-in-the-browser').toString('base64') }]);
  assert.deepEqual(violations, []);
  await context.close();
}

test('over plain HTTP on 127.0.0.1 and on localhost, Chromium keeps the Secure cookie and sends it', async () => {
  const p = await plane('plain');
  const browser = await launch();
  await signInFromPage(browser, `http://127.0.0.1:${p.port}`, p);
  await signInFromPage(browser, `http://localhost:${p.port}`, p);
});

test('over HTTPS under Butter\'s CA (accepted by its key hash), Chromium keeps the cookie and opens wss', async () => {
  const tls = await ensureServerTls(join(dir, 'tls'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  const p = await plane('tls', tls);
  // Chromium's flag takes base64 sha256 of a SubjectPublicKeyInfo in the chain: the CA's, as pinned.
  const spki = createHash('sha256').update(new X509Certificate(tls.ca).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  const browser = await launch([`--ignore-certificate-errors-spki-list=${spki}`]);
  await signInFromPage(browser, `https://127.0.0.1:${p.port}`, p);
});

test('over plain HTTP under any other name the browser drops the Secure cookie: the panel needs HTTPS there', async () => {
  const p = await plane('lan');
  // A name that is not loopback's (mapped to loopback, so no traffic leaves the machine).
  const browser = await launch(['--host-resolver-rules=MAP butter-lan.test 127.0.0.1']);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`http://butter-lan.test:${p.port}/`);
  const got = await page.evaluate(async (token: string) => {
    const signIn = await fetch('/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    return { signIn: signIn.status, whoami: (await fetch('/v1/whoami')).status };
  }, p.cp.adminToken!);
  assert.deepEqual(got, { signIn: 201, whoami: 401 });
  assert.equal((await context.cookies()).length, 0);
  await context.close();
});
