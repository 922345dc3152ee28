// The panel against a real `butter up` (in a network namespace): a REAL tiny VM created from
// the browser reaches `running` without a reload, and typing into its xterm console shows the
// guest's answer. Chromium runs inside the namespace too (a wrapper enters it), so it reaches
// the control plane on the namespace's loopback, over its HTTPS with its own CA.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { ButterInNetns } from './butter-cli.ts';
import { CHROMIUM, needsChromium, noConsoleErrors, screenshot, signIn, type Opened } from '../browser/harness.ts';
import { until } from '../helpers.ts';

const PANEL = fileURLToPath(new URL('../../dist/panel/index.html', import.meta.url));
const skip = needsChromium();
let b: ButterInNetns | undefined;
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  assert.ok(existsSync(PANEL), 'the built panel (dist/panel/): run `npm run build` first');
  b = new ButterInNetns();
  await b.start();
});
after(async () => {
  await browser?.close().catch(() => {});
  if (process.env.BUTTER_TEST_DEBUG) console.error(b?.upLog);
  await b?.cleanup();
});

test('a real tiny VM made in the panel runs without a reload, and its xterm console answers', { skip }, async () => {
  const ns = b!;
  const wrapper = join(ns.dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=/run/netns/${ns.ns} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  browser = await chromium.launch({ executablePath: wrapper, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  // The control plane's certificate is from its own CA, which this browser does not know.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  const o: Opened = { context, page, errors: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' && !(m.text().includes('status of 401') && m.location().url.endsWith('/v1/session'))) o.errors.push(m.text());
  });
  page.on('pageerror', (e) => o.errors.push(e.message));
  await page.goto(`https://127.0.0.1:${ns.port}/#/vms`);
  await signIn(page, readFileSync(join(ns.dataDir, 'admin.token'), 'utf8').trim());
  await page.evaluate(() => ((window as unknown as { mark: number }).mark = 42));

  await page.getByRole('button', { name: 'Create VM' }).click();
  const form = page.locator('form.create');
  await form.getByLabel('Name', { exact: true }).fill('pv');
  await form.getByLabel('Image', { exact: true }).selectOption('tiny');
  await form.getByLabel('Memory', { exact: true }).fill('256M');
  await form.getByRole('button', { name: 'Create', exact: true }).click();
  const state = page.locator('[data-vm="pv"] [data-testid="vm-state"]');
  await state.waitFor();
  // A generous bound for a TCG boot on a loaded machine, not a speed check.
  await until('pv running in the list', async () => ((await state.innerText()) === 'running' ? true : undefined), 300_000, 500);
  assert.ok(await page.evaluate(() => (window as unknown as { mark?: number }).mark === 42), 'the page was not reloaded');
  assert.match(ns.ok(['vm', 'show', 'pv', '--json']), /"state": "running"/);

  await page.getByRole('link', { name: 'pv', exact: true }).click();
  await until('the console connects', async () => ((await page.getByTestId('console-status').innerText()) === 'open' ? true : undefined), 30_000);
  const rows = page.getByTestId('terminal').locator('.xterm-rows');
  await page.getByTestId('terminal').click();
  // Typed into xterm as keystrokes, sent over the WebSocket to the guest's serial console.
  await page.keyboard.type('\n');
  await page.keyboard.type('echo $((6*7))-from-the-panel\n', { delay: 20 });
  await until('the guest answers in the console', async () => (/42-from-the-panel/.test(await rows.innerText()) ? true : undefined), 60_000, 250);
  await screenshot(page, 'host-vm-console');
  noConsoleErrors(o, 'the VM pages');
  ns.ok(['vm', 'rm', 'pv']);
});
