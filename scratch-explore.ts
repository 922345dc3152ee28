import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Agent } from './src/agent/agent.ts';
import { SimDriver } from './src/agent/host/sim-driver.ts';
import { createControlPlane } from './src/server/control-plane.ts';
import { Client } from './src/sdk/client.ts';
import { uploadImage } from './test/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'pp-'));
const cp = createControlPlane({ dataDir: join(dir, 'cp') });
const url = await cp.listen('127.0.0.1', 0);
const admin = new Client({ url, token: cp.adminToken! });
await uploadImage(admin, 'img');
const agents: Agent[] = [];
for (const name of ['n1', 'n2']) {
  const { token } = await admin.call('createNode', { body: { name } });
  const stateDir = join(dir, name);
  const a = new Agent({ client: new Client({ url, token }), node: name, stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'sim' }, heartbeatMs: 200, capacity: { cpus: 8, memoryBytes: 16 * 1024 ** 3, diskBytes: 200 * 1024 ** 3 } });
  await a.start();
  agents.push(a);
}
const bp = `network: { subnetwork_max_instance_count: 8 }\ninstance: { memory: 256M, cpus: 1 }\nimage: { name: img }\ncount: 1\n`;
await admin.call('createService', { body: { network: 'default', name: 'front', blueprint: bp.replace('cpus: 1', 'cpus: 1, public_ip: true') } });
await admin.call('createService', { body: { network: 'default', name: 'back', blueprint: bp } });
await admin.call('createPath', { body: { from: '0.0.0.0/0', to: 'front', ports: '80' } });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
page.on('console', (m) => console.log('console', m.type(), m.text()));
page.on('pageerror', (e) => console.log('pageerror', e.message));
await page.goto(url + '/');
console.log(await page.evaluate(async (t) => (await fetch('/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t }) })).status, cp.adminToken!));
await page.reload();
for (const p of (process.env.PAGES ?? 'services,networks/default,images,tokens,audit').split(',')) {
  await page.goto(url + '/#/' + p);
  await page.reload();
  await page.waitForTimeout(1500);
  await page.screenshot({ path: `/tmp/pp/${p.replace('/', '_')}.png`, fullPage: true });
}
await page.goto(url + '/#/services');
await page.reload();
await page.getByLabel('From (service or CIDR)').fill('front');
await page.getByLabel('To (service)').selectOption('back');
await page.getByLabel('Ports', { exact: true }).fill('8080');
await page.getByRole('button', { name: 'Add path' }).click();
await page.waitForSelector('[data-edge="service:front>service:back"]');
await page.click('[data-node="service:front"]');
await page.click('[data-node="service:back"]');
await page.getByRole('button', { name: 'Check', exact: true }).click();
console.log(await page.getByTestId('check-answer').innerText());
await page.click('[data-edge="service:front>service:back"]');
await page.screenshot({ path: '/tmp/pp/check.png', fullPage: true });
await page.setViewportSize({ width: 390, height: 800 });
await page.screenshot({ path: '/tmp/pp/phone.png', fullPage: true });
await browser.close();
for (const a of agents) await a.stop();
await cp.close();
