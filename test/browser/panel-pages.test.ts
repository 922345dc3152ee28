// The panel's services, networks, images, tokens and audit pages in headless Chromium against
// a control plane with simulated nodes: a path added in the graph page and `check` answering
// allowed, a service scaled, a VPN peer joined with a key made in the browser (QR shown, the
// private key never sent), an image uploaded with progress, a token created and revoked, the
// audit log updating live, and the event stream catching up after the control plane restarts
// (on the same data dir and port). No console errors, no serious axe finding, screenshots.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { publicKeyOf } from '../../src/core/wireguard-keys.ts';
import { createControlPlane } from '../../src/server/control-plane.ts';
import { ButterError, Client } from '../../src/sdk/client.ts';
import { fakeNode, reportMesh, TEST_WG_KEYS, until } from '../helpers.ts';
import { buildPanel, CHROMIUM, loaded, needsChromium, noConsoleErrors, screenshot, seriousA11y, signIn, startPanelCloud, type PanelCloud } from './harness.ts';

const skip = needsChromium();
let cloud: PanelCloud;

const blueprint = (publicIp = false) => `network: { subnetwork_max_instance_count: 8 }\ninstance: { memory: 256M, cpus: 1${publicIp ? ', public_ip: true' : ''} }\nimage: { name: img }\ncount: 1\n`;
/** front's: a template with a variable, which an update must give again. */
const withTemplate = `${blueprint(true)}initialization:\n  - path: hello.sh\n    vars: { Greeting: { required: true } }\n`;
const HELLO = '#!/bin/sh\necho "{{ Greeting }} from {{ service }}"\n';

before(async () => {
  if (skip) return;
  cloud = await startPanelCloud({ nodes: 2, image: 'img', localImports: true });
  await cloud.admin.call('createService', { body: { network: 'default', name: 'front', blueprint: withTemplate, files: { 'hello.sh': HELLO }, vars: { Greeting: 'hello' } } });
  await cloud.admin.call('createService', { body: { network: 'default', name: 'back', blueprint: blueprint() } });
  await cloud.admin.call('createPath', { body: { from: '0.0.0.0/0', to: 'front', ports: '80' } });
});
after(async () => {
  await cloud?.close();
});

async function admin(path: string) {
  const o = await cloud.open(path);
  await signIn(o.page, cloud.cp.adminToken!);
  await loaded(o.page);
  return o;
}

/** A mark in the page's window: still there later means the page was never reloaded. */
const mark = (page: Page) => page.evaluate(() => ((window as unknown as { mark: number }).mark = 7));
const marked = (page: Page) => page.evaluate(() => (window as unknown as { mark?: number }).mark === 7);

test('services: a path added in the graph page, then A→B checked: allowed by that path; a bad port is named next to its field', { skip }, async () => {
  const o = await admin('/#/services');
  const { page } = o;
  await page.locator('[data-node="service:front"]').waitFor();

  // Bad input first: the API's error appears under the field it names.
  await page.getByLabel('From (service or CIDR)').fill('front');
  await page.getByLabel('To (service)').selectOption('back');
  await page.getByLabel('Ports', { exact: true }).fill('http');
  await page.getByRole('button', { name: 'Add path' }).click();
  const portsField = page.locator('[data-field="ports"]');
  await portsField.locator('.field-error').waitFor();
  assert.match(await portsField.locator('.field-error').innerText(), /port/i);
  assert.equal(await portsField.locator('input').getAttribute('aria-invalid'), 'true');

  await page.getByLabel('Ports', { exact: true }).fill('8080');
  assert.equal(await page.locator('form[aria-label="Add a path"] [data-testid=cli]').innerText(), 'butter path add front back 8080');
  await page.getByRole('button', { name: 'Add path' }).click();
  const edge = page.locator('[data-edge="service:front>service:back"]');
  await edge.waitFor();
  const made = (await cloud.admin.call('listPaths', { query: { service: 'back' } })).items;
  assert.equal(made.length, 1, 'the form made one path');

  // Clicking the edge shows its path.
  await edge.click();
  const detail = page.locator('section.edge-detail');
  assert.match(await detail.innerText(), new RegExp(`${made[0]!.id}[\\s\\S]*front -> back:8080/tcp`));

  // A, then B: may front reach back on 8080? The answer names the path that allows it.
  await page.locator('[data-node="service:front"]').click();
  await page.locator('[data-node="service:back"]').click();
  await page.getByLabel('Port', { exact: true }).fill('8080');
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  const answer = page.getByTestId('check-answer');
  await answer.waitFor();
  const text = await answer.innerText();
  assert.match(text, /^allowed/);
  assert.match(text, new RegExp(`by path ${made[0]!.id}`));
  assert.equal(await page.locator('form.check-form [data-testid=cli]').innerText(), 'butter path check front back 8080');
  // And one no path allows: denied, with the reason.
  await page.getByLabel('Port', { exact: true }).fill('9');
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  await until('the denied answer', async () => ((await answer.innerText()).startsWith('denied') ? true : undefined));

  await screenshot(page, 'services-graph-check');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the services page');

  // Removing it from the edge's detail (still open, with confirmation) removes it from the API.
  await detail.getByRole('button', { name: /remove path front -> back/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove path' }).click();
  await edge.waitFor({ state: 'detached' });
  assert.equal((await cloud.admin.call('listPaths', { query: { service: 'back' } })).items.length, 0);
  noConsoleErrors(o, 'services', [400, 401]);
});

test('services: scaling from the page; the instances appear live (no reload) as the agents run them', { skip }, async () => {
  const o = await admin('/#/services/back');
  const { page } = o;
  await mark(page);
  const running = page.getByTestId('service-running');
  await until('back 1/1 running', async () => ((await running.innerText()) === '1/1 running' ? true : undefined), 30_000);
  await page.getByLabel('Instances', { exact: true }).fill('3');
  assert.equal(await page.locator('form.scale-form [data-testid=cli]').innerText(), 'butter service scale back 3');
  await page.getByRole('button', { name: 'Scale', exact: true }).click();
  await until('back 3/3 running in the page', async () => ((await running.innerText()) === '3/3 running' ? true : undefined), 30_000);
  assert.equal((await cloud.admin.call('getService', { params: { name: 'back' } })).count, 3);
  assert.ok(await marked(page), 'the page was not reloaded');
  // Its revisions with a rollback control for none (only one revision): the history is shown.
  assert.match(await page.locator('.revisions').innerText(), /1 \(current\)/);
  await screenshot(page, 'services-scaled');
  noConsoleErrors(o, 'services scale', [401]);
});

test('services: an update from the page rolls out a new revision; a rollback from its history returns to the first', { skip }, async () => {
  const o = await admin('/#/services/front');
  const { page } = o;
  await page.getByRole('button', { name: 'Update front…' }).click();
  const form = page.locator('form.update-form');
  const bp = form.getByLabel('Blueprint (YAML)');
  assert.match(await bp.inputValue(), /public_ip: true/, "the service's blueprint");
  await until("the target revision's variables loaded into the form", async () => ((await form.getByLabel('Variables (YAML map)').inputValue()) === 'Greeting: hello\n' ? true : undefined));
  assert.equal(await form.getByLabel('Template 1 path').inputValue(), 'hello.sh', 'the template it names, to be given again');
  // Bad YAML in the variables is named next to that field, and nothing is sent.
  await form.getByLabel('Variables (YAML map)').fill('[not, a, map]');
  await form.getByRole('button', { name: 'Roll out' }).click();
  await form.locator('[data-field="vars"] .field-error').waitFor();
  await form.getByLabel('Variables (YAML map)').fill('Greeting: hi');
  await form.getByLabel('Template 1 text').fill(HELLO);
  await bp.fill((await bp.inputValue()) + '# revision two\n');
  assert.equal(await form.locator('[data-testid=cli]').innerText(), 'butter service update front --blueprint blueprint.yml --var Greeting=hi');
  await form.getByRole('button', { name: 'Roll out' }).click();
  const revisions = page.locator('.revisions');
  await until('revision 2 current', async () => ((await revisions.innerText()).includes('2 (current)') ? true : undefined), 60_000).catch(async (e) => {
    await screenshot(page, 'services-update-failed');
    throw e;
  });
  const s = await cloud.admin.call('getService', { params: { name: 'front' } });
  assert.deepEqual([s.revision, s.blueprint.includes('# revision two')], [2, true]);

  await revisions.getByRole('button', { name: 'Roll back to 1' }).click();
  assert.equal(await page.getByRole('dialog').locator('[data-testid=cli]').innerText(), 'butter service rollback front --to 1');
  await page.getByRole('dialog').getByRole('button', { name: 'Roll back to 1' }).click();
  await until('revision 1 current again', async () => ((await revisions.innerText()).includes('1 (current)') ? true : undefined), 60_000);
  assert.equal((await cloud.admin.call('getService', { params: { name: 'front' } })).revision, 1);
  await screenshot(page, 'services-rolled-back');
  noConsoleErrors(o, 'services update', [401]);
});

test('networks: a VPN peer joined with a key made in the browser: config and QR shown, only the public key sent; then revoked', { skip }, async () => {
  // A gateway for the network's peers: a node in the mesh with an endpoint.
  const gw = await fakeNode(cloud, 'gw');
  await reportMesh(gw, 'gw', { publicKey: TEST_WG_KEYS[0], listenPort: 51820, endpoint: '192.0.2.2:51820' });
  const o = await admin('/#/networks/default');
  const { page } = o;
  const bodies: string[] = [];
  page.on('request', (r) => bodies.push(r.postData() ?? ''));
  await page.getByLabel('Peer name').fill('laptop');
  await page.getByRole('button', { name: 'Join peer' }).click();
  const conf = await page.getByTestId('peer-conf').innerText();
  const priv = /PrivateKey = (\S+)/.exec(conf)?.[1];
  assert.ok(priv && priv !== '<your', `a private key in the configuration:\n${conf}`);
  assert.match(conf, /Endpoint = 192\.0\.2\.2:51820/);
  const qr = page.getByTestId('peer-qr');
  assert.ok((await qr.locator('path').getAttribute('d'))!.length > 100, 'a QR code is drawn');
  const peers = (await cloud.admin.call('listNetworkPeers', { params: { name: 'default' } })).items;
  assert.deepEqual(peers.map((p) => p.name), ['laptop']);
  assert.equal(peers[0]!.publicKey, publicKeyOf(priv), 'the registered key is the public half of the one in the page');
  assert.ok(bodies.some((b) => b.includes(peers[0]!.publicKey)), 'the public key was sent');
  assert.ok(!bodies.some((b) => b.includes(priv)), 'the private key was never sent');
  await screenshot(page, 'networks-peer-qr');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the networks page');

  await page.getByRole('button', { name: 'Revoke laptop' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke laptop' }).click();
  await page.locator('[data-peer="laptop"]').waitFor({ state: 'detached' });
  assert.equal((await cloud.admin.call('listNetworkPeers', { params: { name: 'default' } })).items.length, 0);
  await cloud.admin.call('deleteNode', { params: { name: 'gw' } }).catch(() => {});
  noConsoleErrors(o, 'networks', [401]);
});

test('images: a file uploaded from the page with its progress, the digest shown, then removed', { skip }, async () => {
  const o = await admin('/#/images');
  const { page } = o;
  // Progress as the page showed it, every change of the label.
  await page.evaluate(() => {
    const seen: string[] = ((window as unknown as { progress: string[] }).progress = []);
    new MutationObserver(() => {
      const t = document.querySelector('[data-testid=upload-progress] label')?.textContent;
      if (t && seen[seen.length - 1] !== t) seen.push(t);
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
  const digest = createHash('sha256').update(bytes).digest('hex');
  await page.getByLabel('Name', { exact: true }).fill('uploaded');
  await page.getByLabel('Disk image file').setInputFiles({ name: 'disk.raw', mimeType: 'application/octet-stream', buffer: bytes });
  await page.getByRole('button', { name: 'Upload and add' }).click();
  const added = page.getByTestId('image-added');
  await added.waitFor();
  assert.match(await added.innerText(), new RegExp(`sha256:${digest}`));
  const progress = (await page.evaluate(() => (window as unknown as { progress: string[] }).progress)) as string[];
  assert.ok(progress.length >= 2, `progress was shown as it went: ${JSON.stringify(progress)}`);
  assert.equal(progress[0], 'uploading disk.raw: 0B / 3M (0%)');
  assert.equal(progress[progress.length - 1], 'uploaded disk.raw: 3M / 3M (100%)');
  assert.equal((await cloud.admin.call('getImage', { params: { name: 'uploaded' } })).sha256, digest);
  await page.locator('[data-image="uploaded"]').waitFor();
  await screenshot(page, 'images-uploaded');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the images page');

  await page.getByRole('button', { name: 'Remove uploaded' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove uploaded' }).click();
  await page.locator('[data-image="uploaded"]').waitFor({ state: 'detached' });
  noConsoleErrors(o, 'images', [401]);
});

test('images: one added by URL: the control plane downloads it, the list shows its progress bar, then it is ready', { skip }, async () => {
  const bytes = Buffer.alloc(2 * 1024 * 1024, 9);
  const digest = createHash('sha256').update(bytes).digest('hex');
  // The origin sends half, then waits: the page must show the import midway.
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const origin = createServer((req, res) => {
    if (req.url !== '/far.raw') return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': bytes.length });
    res.write(bytes.subarray(0, bytes.length / 2));
    void released.then(() => res.end(bytes.subarray(bytes.length / 2)));
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/far.raw`;
    const o = await admin('/#/images');
    const { page } = o;
    const form = page.getByRole('form', { name: 'Add an image by URL' });
    await form.getByLabel('Image name', { exact: true }).fill('far');
    await form.getByLabel('URL', { exact: true }).fill(url);
    await form.getByLabel('sha256', { exact: true }).fill(digest);
    assert.match(await form.locator('.cli-hint').innerText(), new RegExp(`butter image add far --url ${url.replace(/[.]/g, '[.]')} --sha256 ${digest} --remote`));
    await form.getByRole('button', { name: 'Import' }).click();
    await page.getByTestId('import-started').waitFor();
    const bar = page.locator('[data-image="far"] [data-testid=import-progress]');
    await page.waitForFunction(() => /importing: 1M \/ 2M \(50%\)/.test(document.querySelector('[data-image="far"] [data-testid=import-progress] label')?.textContent ?? ''));
    assert.equal(await bar.locator('progress').getAttribute('max'), String(bytes.length));
    await screenshot(page, 'images-importing');
    assert.deepEqual(await seriousA11y(page), [], 'axe with an import under way');
    release();
    await page.locator('[data-image="far"] [data-testid=import-progress]').waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.querySelector('[data-image="far"]')?.textContent?.includes('ready'));
    assert.equal((await cloud.admin.call('getImage', { params: { name: 'far' } })).sha256, digest);
    noConsoleErrors(o, 'images by URL');
  } finally {
    release();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  }
});

test('tokens: one created (its secret shown once, and it works), then revoked (and refused)', { skip }, async () => {
  const o = await admin('/#/tokens');
  const { page } = o;
  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByLabel('Description (optional)').fill('from the panel');
  assert.equal(await page.locator('form[aria-label="Create a token"] [data-testid=cli]').innerText(), "butter token create --role viewer --description 'from the panel'");
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.getByTestId('token-secret').innerText()).trim();
  const who = await new Client({ url: cloud.url, token: secret }).call('whoami', {});
  assert.equal(who.role, 'viewer');
  const id = (await cloud.admin.call('listTokens', {})).items.find((t) => t.description === 'from the panel')!.id;
  await page.locator(`[data-token="${id}"]`).waitFor();
  await screenshot(page, 'tokens-created');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the tokens page');

  await page.getByRole('button', { name: `revoke token ${id}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
  await page.locator(`[data-token="${id}"]`).waitFor({ state: 'detached' });
  await assert.rejects(new Client({ url: cloud.url, token: secret }).call('whoami', {}), (e) => e instanceof ButterError && e.status === 401);
  noConsoleErrors(o, 'tokens', [401]);
});

test('audit log: a change made through the API appears live, and the filters narrow the list', { skip }, async () => {
  const o = await admin('/#/audit');
  const { page } = o;
  await page.locator('table.events tbody tr').first().waitFor();
  await mark(page);
  await cloud.admin.call('createNetwork', { body: { name: 'live-net' } });
  const row = page.locator('table.events tbody tr', { hasText: 'network live-net' });
  await row.waitFor();
  assert.ok(await marked(page), 'not reloaded: the event came from the stream');
  await page.getByLabel('Resource').selectOption('network');
  await page.getByLabel('Name').fill('live-net');
  await until('only live-net events', async () => {
    const names = await page.locator('table.events tbody tr td:nth-child(5)').allInnerTexts();
    return names.length > 0 && names.every((n) => n === 'live-net') ? true : undefined;
  }).catch(async (e) => {
    await screenshot(page, 'audit-filter-failed');
    throw e;
  });
  await screenshot(page, 'audit-live');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the audit page');
  await cloud.admin.call('deleteNetwork', { params: { name: 'live-net' } });
  noConsoleErrors(o, 'audit', [401]);
});

test('a viewer sees these pages without a control that changes anything', { skip }, async () => {
  const o = await cloud.open('/');
  await signIn(o.page, await cloud.token('viewer'));
  const { page } = o;
  for (const [path, absent] of [
    ['/#/services/front', ['Add path', 'Scale', 'Update front…']],
    ['/#/networks/default', ['Create network', 'Join peer', 'Delete network default']],
    ['/#/images', ['Upload and add', 'Remove img']],
    ['/#/tokens', ['Create token']],
  ] as const) {
    await page.goto(cloud.url + path);
    await loaded(page);
    await page.locator('h1').waitFor();
    for (const name of absent) assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `${path}: no "${name}"`);
    assert.equal(await page.locator('main form:not([aria-label="Filter the audit log"]):not(.check-form)').count(), 0, `${path}: no form that changes anything`);
    await screenshot(page, `viewer-${path.replace(/\W+/g, '-').replace(/^-|-$/g, '')}`);
  }
  noConsoleErrors(o, 'viewer pages', [401]);
});

test('at phone width every page fits and has no serious axe finding', { skip }, async () => {
  const o = await admin('/#/services/front');
  const { page } = o;
  await page.setViewportSize({ width: 390, height: 844 });
  for (const p of ['services/front', 'networks/default', 'images', 'tokens', 'audit']) {
    await page.goto(`${cloud.url}/#/${p}`);
    await loaded(page);
    await page.locator('h1').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${p}: the page is ${overflow}px wider than a phone (only the graph and tables scroll, inside their boxes)`);
    assert.deepEqual(await seriousA11y(page), [], `axe on ${p} at phone width`);
    await screenshot(page, `phone-${p.replace('/', '-')}`);
  }
  noConsoleErrors(o, 'phone width', [401]);
});

test('the event stream reconnects after the control plane restarts (same data dir and port) and shows what happened meanwhile', { skip }, async () => {
  // A control plane of its own: this one is stopped and started again.
  const dir = mkdtempSync(join(tmpdir(), 'butter-browser-restart-'));
  const panelDir = await buildPanel();
  let cp = createControlPlane({ dataDir: dir, panelDir });
  const url = await cp.listen('127.0.0.1', 0);
  const port = Number(new URL(url).port);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/#/audit`);
    const token = cp.adminToken!; // made at the first start only
    await signIn(page, token);
    await loaded(page);
    const admin = () => new Client({ url, token });
    await admin().call('createNetwork', { body: { name: 'before-restart' } });
    await page.locator('table.events tbody tr', { hasText: 'network before-restart' }).waitFor();
    await mark(page);

    // Hold the page's reconnect until the change below is committed: it can only come from
    // the replay after the revision the page last saw (Last-Event-ID), not from a live commit.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let reconnects = 0;
    await page.route('**/v1/events/stream**', async (route) => {
      reconnects++;
      await held;
      await route.continue();
    });
    await cp.close();
    cp = createControlPlane({ dataDir: dir, panelDir });
    assert.equal(await cp.listen('127.0.0.1', port), url, 'the same address');
    await admin().call('createNetwork', { body: { name: 'while-away' } });
    await until('the page tries to reconnect', async () => (reconnects > 0 ? true : undefined), 30_000);
    release();
    await page.locator('table.events tbody tr', { hasText: 'network while-away' }).waitFor({ timeout: 30_000 });
    assert.ok(await marked(page), 'the page was not reloaded');
    // And live ones again after the reconnect.
    await admin().call('createNetwork', { body: { name: 'after-restart' } });
    await page.locator('table.events tbody tr', { hasText: 'network after-restart' }).waitFor();
    await screenshot(page, 'audit-after-restart');
    assert.deepEqual(errors, [], 'no uncaught errors in the page');
  } finally {
    await browser.close();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
