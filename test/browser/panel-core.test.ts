// The panel's core in headless Chromium against a control plane with simulated nodes: sign in
// and out, the overview, VMs created, resized and deleted from the browser and updated live
// (no reload), a viewer's read-only panel, the API's errors next to their fields, keyboard
// order of the create form, no console errors and no serious axe finding on any page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { until } from '../helpers.ts';
import { loaded, needsChromium, noConsoleErrors, screenshot, seriousA11y, signIn, startPanelCloud, type PanelCloud } from './harness.ts';

const skip = needsChromium();
let cloud: PanelCloud;

before(async () => {
  if (!skip) cloud = await startPanelCloud({ nodes: 2, image: 'tiny' });
});
after(async () => {
  await cloud?.close();
});

/** A mark in the page's window: still there later means the page was never reloaded. */
const mark = (page: Page) => page.evaluate(() => ((window as unknown as { mark: number }).mark = 42));
const marked = (page: Page) => page.evaluate(() => (window as unknown as { mark?: number }).mark === 42);

async function admin(path = '/') {
  const o = await cloud.open(path);
  await signIn(o.page, cloud.cp.adminToken!);
  return o;
}

test('a wrong token is refused with its error; the right one signs in, survives a reload, and sign-out ends the session on the server', { skip }, async () => {
  const o = await cloud.open();
  const { page } = o;
  await screenshot(page, 'sign-in');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the sign-in form');
  await page.getByLabel('API token').fill('bt_wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /token/i);
  assert.equal(await page.getByTestId('role').count(), 0, 'not signed in');

  await signIn(page, cloud.cp.adminToken!);
  assert.equal(await page.getByTestId('role').innerText(), 'admin');
  await page.reload();
  await page.getByTestId('role').waitFor();
  assert.equal(await page.getByTestId('role').innerText(), 'admin', 'the role comes back from GET /v1/session');

  const cookie = (await o.context.cookies()).find((c) => c.name === 'butter_session');
  assert.ok(cookie?.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(await page.evaluate(() => document.cookie.includes('butter_session')), false, 'the page cannot read it');
  assert.equal(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)), '{}{}', 'nothing kept in storage');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  // The old cookie, sent again by hand, no longer authenticates: the server ended the session.
  const res = await fetch(`${cloud.url}/v1/vms`, { headers: { cookie: `butter_session=${cookie.value}` } });
  assert.equal(res.status, 401);
  assert.deepEqual(await (await fetch(`${cloud.url}/v1/session`, { headers: { cookie: `butter_session=${cookie.value}` } })).json(), { session: null });
  // The wrong token's refusal (POST /v1/sessions), which Chromium logs itself.
  noConsoleErrors(o, 'sign in/out', [401]);
});

test('the sign-in page loads with no console error at all (GET /v1/session answers {session: null})', { skip }, async () => {
  const o = await cloud.open();
  await o.page.getByLabel('API token').waitFor();
  await loaded(o.page);
  noConsoleErrors(o, 'the sign-in page');
});

test("revoking a signed-in page's token brings it back to the sign-in form, saying the session ended", { skip }, async () => {
  const { token, secret } = await cloud.admin.call('createToken', { body: { role: 'operator' } });
  const o = await cloud.open('/#/vms');
  const { page } = o;
  await signIn(page, secret);
  await loaded(page);
  assert.equal(await page.getByTestId('session-ended').count(), 0, 'no message before');
  await cloud.admin.call('deleteToken', { params: { id: token.id } });
  // The event stream is ended at the revocation; its reconnect gets the 401.
  await page.getByTestId('session-ended').waitFor();
  assert.match(await page.getByTestId('session-ended').innerText(), /session ended/i);
  await page.getByLabel('API token').waitFor();
  assert.equal(await page.getByTestId('role').count(), 0, 'the shell is gone');
  await screenshot(page, 'session-ended');
  // The one error: Chromium's own line for the refused reconnect (GET /v1/events/stream, 401).
  const others = o.errors.filter((e) => !(e.includes('status of 401') && e.includes('/v1/events/stream')));
  assert.deepEqual(others, [], 'no console error but the refused call');
  // Signing in again works, and the message goes.
  await signIn(page, cloud.cp.adminToken!);
  assert.equal(await page.getByTestId('session-ended').count(), 0);
});

test('the overview shows every node with its bars, zone, group and accelerator; warnings link to their node', { skip }, async () => {
  await cloud.admin.call('cordonNode', { params: { name: 'sim-2' } });
  try {
    const o = await admin('/#/overview');
    const { page } = o;
    for (const n of ['sim-1', 'sim-2']) {
      const card = page.locator(`[data-node="${n}"]`);
      await card.waitFor();
      const text = await card.innerText();
      assert.match(text, /ready/);
      assert.match(text, new RegExp(`zone z${n.slice(-1)}`));
      assert.match(text, /group default/);
      assert.match(text, /TCG/);
      assert.equal(await card.getByRole('meter').count(), 3, `${n}: CPU, memory and disk bars`);
    }
    assert.match(await page.locator('.totals').innerText(), /2 nodes/);
    const warning = page.locator('.warnings [data-kind="cordoned"] a');
    assert.match(await warning.innerText(), /sim-2 is cordoned/);
    await warning.click();
    await until('the warning focuses its node', async () => ((await page.evaluate(() => document.activeElement?.id)) === 'node-sim-2' ? true : undefined));
    await screenshot(page, 'overview');
    assert.deepEqual(await seriousA11y(page), [], 'axe on the overview');
    noConsoleErrors(o, 'the overview');
  } finally {
    await cloud.admin.call('uncordonNode', { params: { name: 'sim-2' } });
  }
});

test('bad input in the create form shows the API error next to its field; too big a VM shows the scheduler\'s refusal', { skip }, async () => {
  const o = await admin('/#/vms');
  const { page } = o;
  await page.getByRole('button', { name: 'Create VM' }).click();
  const form = page.locator('form.create');
  await form.getByLabel('Name', { exact: true }).fill('Bad_Name');
  await form.getByRole('button', { name: 'Create', exact: true }).click();
  const nameField = form.locator('[data-field="name"]');
  await nameField.locator('.field-error').waitFor();
  assert.match(await nameField.locator('.field-error').innerText(), /name/i);
  assert.equal(await nameField.locator('input').getAttribute('aria-invalid'), 'true');

  await form.getByLabel('Name', { exact: true }).fill('big');
  await form.getByLabel('Memory', { exact: true }).fill('12Q');
  await form.getByRole('button', { name: 'Create', exact: true }).click();
  const memField = form.locator('[data-field="memory"]');
  await memField.locator('.field-error').waitFor();
  assert.equal(await nameField.locator('.field-error').count(), 0, 'the name error is gone');

  await form.getByLabel('Memory', { exact: true }).fill('999G');
  await form.getByRole('button', { name: 'Create', exact: true }).click();
  await until('the refusal', async () => ((await form.locator('p.error').count()) ? true : undefined));
  assert.match(await form.locator('p.error').innerText(), /no_capacity.*no node can take/s);
  await screenshot(page, 'vm-create-errors');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the create form with errors');
  assert.equal((await cloud.admin.call('listVms', {})).items.length, 0, 'nothing was made');
  noConsoleErrors(o, 'the create form', [400, 422]);
});

test('Tab goes through every field of the create form to its submit button', { skip }, async () => {
  const o = await admin('/#/vms');
  const { page } = o;
  await page.getByRole('button', { name: 'Create VM' }).click();
  await page.locator('form.create').getByLabel('Name', { exact: true }).focus();
  const seen: string[] = [];
  for (let i = 0; i < 20; i++) {
    seen.push(await page.evaluate(() => {
      const el = document.activeElement as HTMLInputElement | HTMLButtonElement | null;
      return el ? `${el.tagName.toLowerCase()}:${el.getAttribute('name') ?? el.textContent?.trim()}` : '';
    }));
    if (seen.at(-1) === 'button:Create') break;
    await page.keyboard.press('Tab');
  }
  const want = ['input:name', 'select:image', 'input:cpus', 'input:memory', 'input:disk', 'input:placement', 'input:networks', 'textarea:userData', 'textarea:sshKeys', 'button:Create'];
  assert.deepEqual(seen.filter((s) => want.includes(s)), want, `focus went ${seen.join(' → ')}`);
  noConsoleErrors(o, 'the create form');
});

test('a VM created in the browser reaches running without a reload; resize; delete with confirmation', { skip }, async () => {
  const o = await admin('/#/vms');
  const { page } = o;
  await mark(page);
  await page.getByRole('button', { name: 'Create VM' }).click();
  const form = page.locator('form.create');
  await form.getByLabel('Name', { exact: true }).fill('web');
  await form.getByLabel('Memory', { exact: true }).fill('256M');
  assert.equal(await form.getByTestId('cli').innerText(), 'butter vm create web --image tiny --cpus 1 --memory 256M --disk 2G');
  await form.getByRole('button', { name: 'Create', exact: true }).click();
  const state = page.locator('[data-vm="web"] [data-testid="vm-state"]');
  await state.waitFor();
  await until('web running in the list', async () => ((await state.innerText()) === 'running' ? true : undefined), 30_000);
  assert.ok(await marked(page), 'the page was not reloaded');
  await screenshot(page, 'vms');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the VM list');

  await page.getByRole('link', { name: 'web' }).click();
  await page.getByTestId('vm-address').waitFor();
  const vm = await cloud.admin.call('getVm', { params: { name: 'web' } });
  assert.match(await page.getByTestId('vm-address').innerText(), new RegExp(vm.ip!.replace(/\./g, '\\.')));
  await page.getByTestId('terminal').locator('.xterm').waitFor();
  await until('the console connects', async () => ((await page.getByTestId('console-status').innerText()) === 'open' ? true : undefined));

  const resize = page.locator('form.resize');
  await resize.getByLabel('Memory', { exact: true }).fill('512M');
  assert.equal(await resize.getByTestId('cli').innerText(), 'butter vm resize web --memory 512M');
  await resize.getByRole('button', { name: 'Resize', exact: true }).click();
  await until('the resize shown', async () => (/512M/.test(await page.getByTestId('vm-size').innerText()) ? true : undefined));
  const resized = await cloud.admin.call('getVm', { params: { name: 'web' } });
  assert.equal(resized.pending?.memoryBytes ?? resized.memoryBytes, 512 * 1024 ** 2);
  await screenshot(page, 'vm-detail');
  assert.deepEqual(await seriousA11y(page), [], 'axe on the VM page');

  await page.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog');
  assert.match(await dialog.innerText(), /butter vm rm web/);
  await dialog.getByRole('button', { name: 'Delete web' }).click();
  await until('web gone from the list', async () => ((await page.locator('[data-vm="web"]').count()) === 0 && page.url().endsWith('#/vms') ? true : undefined), 30_000);
  await until('web gone from the API', async () => ((await cloud.admin.call('listVms', {})).items.length === 0 ? true : undefined), 30_000);
  assert.ok(await marked(page), 'the page was not reloaded');
  noConsoleErrors(o, 'the VM pages');
});

test('suspend and resume from the VM page, each with its CLI line; the state follows live', { skip }, async () => {
  await cloud.admin.call('createVm', { body: { name: 'nap', image: 'tiny', memory: '256M' } });
  await until('nap running', async () => ((await cloud.admin.call('getVm', { params: { name: 'nap' } })).state === 'running' ? true : undefined), 30_000);
  const o = await admin('/#/vms/nap');
  const { page } = o;
  await mark(page);
  const state = page.getByTestId('vm-state');
  await until('the page shows running', async () => ((await state.innerText()) === 'running' ? true : undefined), 30_000);
  await page.getByRole('button', { name: 'Suspend', exact: true }).click();
  const dialog = page.getByRole('dialog');
  assert.match(await dialog.innerText(), /butter vm suspend nap/);
  await dialog.getByRole('button', { name: 'Suspend nap', exact: true }).click();
  await until('the page shows suspended', async () => ((await state.innerText()) === 'suspended' ? true : undefined), 30_000);
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'nap' } })).power, 'suspended');
  const resume = page.getByRole('button', { name: 'Resume', exact: true });
  await resume.focus();
  await until('the resume line shown', async () => ((await page.getByTestId('cli').allInnerTexts()).includes('butter vm resume nap') ? true : undefined));
  await resume.click();
  await until('the page shows running again', async () => ((await state.innerText()) === 'running' ? true : undefined), 30_000);
  assert.ok(await marked(page), 'the page was not reloaded');
  await cloud.admin.call('deleteVm', { params: { name: 'nap' } });
  await until('nap gone', async () => ((await cloud.admin.call('listVms', {})).items.some((v) => v.name === 'nap') ? undefined : true), 30_000);
  noConsoleErrors(o, 'suspend and resume');
});

test('a viewer sees no control that changes anything, and the API refuses a forced change', { skip }, async () => {
  await cloud.admin.call('createVm', { body: { name: 'seen', image: 'tiny', memory: '128M' } });
  const o = await cloud.open('/#/vms');
  const { page } = o;
  await signIn(page, await cloud.token('viewer'));
  assert.equal(await page.getByTestId('role').innerText(), 'viewer');
  await page.locator('[data-vm="seen"]').waitFor();
  const controls = async () => (await page.locator('main button, main input, main select, main textarea').evaluateAll((els) => els.map((e) => e.textContent?.trim() || e.getAttribute('name') || e.tagName))).filter((t) => t !== 'copy');
  assert.deepEqual(await controls(), [], 'no controls on the VM list');
  await page.getByRole('link', { name: 'seen' }).click();
  await page.getByTestId('vm-state').waitFor();
  assert.deepEqual(await controls(), [], 'no controls on the VM page');
  await screenshot(page, 'vm-detail-viewer');
  // Forced: the page's own session and CSRF value, a create by hand.
  const status = await page.evaluate(async () => {
    const s = ((await (await fetch('/v1/session')).json()) as { session: { csrf: string } }).session;
    const r = await fetch('/v1/vms', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrf }, body: JSON.stringify({ name: 'forced', image: 'tiny' }) });
    return r.status;
  });
  assert.equal(status, 403);
  assert.equal((await cloud.admin.call('listVms', {})).items.some((v) => v.name === 'forced'), false);
  noConsoleErrors(o, 'the viewer\'s pages', [403]);
  await cloud.admin.call('deleteVm', { params: { name: 'seen' } });
});

test('every page loads with no console error and no serious axe finding, at desktop and phone width', { skip }, async () => {
  const o = await admin('/');
  const { page } = o;
  const links = await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').evaluateAll((as) => as.map((a) => a.getAttribute('href')!));
  assert.ok(links.length >= 7, links.join(' '));
  for (const width of [1200, 390]) {
    await page.setViewportSize({ width, height: 900 });
    for (const href of links) {
      await page.goto(`${cloud.url}/${href}`);
      await page.locator('main h1').waitFor();
      await loaded(page);
      const name = href.replace(/^#\//, '') || 'overview';
      await screenshot(page, width < 600 ? `phone-${name}` : `page-${name}`);
      assert.deepEqual(await seriousA11y(page), [], `axe on ${href} at ${width}px`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${href} at ${width}px is ${overflow}px wider than the screen`);
    }
  }
  noConsoleErrors(o, 'the pages');
});
