// The panel against a real `butter up` (in a network namespace): a REAL tiny VM created from
// the browser reaches `running` without a reload, and typing into its xterm console shows the
// guest's answer. Chromium stays outside the namespace, as a user's browser is not on the
// hypervisor's network (inside, every tap and bridge the agent adds aborts its requests with
// ERR_NETWORK_CHANGED); it reaches the control plane's HTTPS through a relay: a loopback
// port here, a Unix socket, and a process in the namespace connecting to its 127.0.0.1:7700.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
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
let inside: ChildProcess | undefined;
let outside: Server | undefined;

/** A loopback port here that leads to `port` on the namespace's loopback; resolves to the port. */
async function relay(ns: ButterInNetns, port: number): Promise<number> {
  const sock = join(ns.dir, 'relay.sock');
  const script = `const net = require('node:net'); net.createServer((c) => { const u = net.connect(${port}, '127.0.0.1'); c.pipe(u).pipe(c); u.on('error', () => c.destroy()); c.on('error', () => u.destroy()); }).listen(${JSON.stringify(sock)}, () => console.log('listening'));`;
  inside = spawn('nsenter', [`--net=/run/netns/${ns.ns}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    inside!.stdout!.once('data', () => resolve());
    inside!.once('exit', (code) => reject(new Error(`the relay in ${ns.ns} exited (${code})`)));
  });
  outside = createServer((c) => {
    const u = connect(sock);
    c.pipe(u).pipe(c);
    u.on('error', () => c.destroy());
    c.on('error', () => u.destroy());
  });
  await new Promise<void>((r) => outside!.listen(0, '127.0.0.1', r));
  return (outside.address() as { port: number }).port;
}

before(async () => {
  if (skip) return;
  assert.ok(existsSync(PANEL), 'the built panel (dist/panel/): run `npm run build` first');
  b = new ButterInNetns();
  await b.start();
});
after(async () => {
  await browser?.close().catch(() => {});
  outside?.close();
  inside?.kill('SIGKILL');
  if (process.env.BUTTER_TEST_DEBUG) console.error(b?.upLog);
  await b?.cleanup();
});

test('a real tiny VM made in the panel runs without a reload, and its xterm console answers', { skip }, async () => {
  const ns = b!;
  const port = await relay(ns, ns.port);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  // The control plane's certificate is from its own CA, which this browser does not know.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  const o: Opened = { context, page, errors: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') o.errors.push(m.text());
  });
  page.on('pageerror', (e) => o.errors.push(e.message));
  await page.goto(`https://127.0.0.1:${port}/#/vms`);
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
