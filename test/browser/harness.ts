/**
 * The panel in a real browser, for test/browser/*.test.ts: the panel built from panel/ (once
 * per process, into a temp dir), a control plane serving it, agents with the simulated
 * driver, headless Debian Chromium through playwright-core, a sign-in, the page's console
 * errors collected, axe-core's serious and critical findings, screenshots in
 * test-artifacts/screenshots/ (git-ignored; CI keeps them).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { build } from 'vite';
import type { Agent } from '../../src/agent/agent.ts';
import { createControlPlane, type ControlPlane } from '../../src/server/control-plane.ts';
import { Client } from '../../src/sdk/client.ts';
import { simAgent, uploadImage, type TestCloud } from '../helpers.ts';
import { requires } from '../requires.ts';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOTS = join(ROOT, 'test-artifacts', 'screenshots');

/** The `skip` option of a browser test: no Chromium skips it, and fails it under CI=true. */
export const needsChromium = (): string | false => requires(existsSync(CHROMIUM), `needs Debian chromium at ${CHROMIUM} (apt-get install chromium)`);

let built: Promise<string> | undefined;
/** Builds the panel from its source into a temp dir, once per process: a test sees today's panel/, not a stale dist/. */
export function buildPanel(): Promise<string> {
  built ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), 'butter-panel-'));
    process.once('exit', () => rmSync(out, { recursive: true, force: true }));
    await build({ configFile: join(ROOT, 'panel', 'vite.config.ts'), logLevel: 'warn', build: { outDir: out, emptyOutDir: true } });
    return out;
  })();
  return built;
}

export interface PanelCloud extends TestCloud {
  browser: Browser;
  agents: Agent[];
  /** A fresh browser context (its own cookies) and page, its console errors collected. */
  open(path?: string): Promise<Opened>;
  /** A token of `role`, as `butter token create --role` makes it. */
  token(role: 'viewer' | 'operator' | 'admin'): Promise<string>;
}

export interface Opened {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions of the page so far. */
  errors: string[];
}

export interface PanelOptions {
  /** Simulated nodes, `sim-1`…, each in zone `z<i>`; default 2. */
  nodes?: number;
  /** An image of this name (a few bytes: the simulated driver boots anything). */
  image?: string;
  /** The tests-only import option: images imported by URL may come from 127.0.0.1 (image-import.ts). */
  localImports?: boolean;
}

export async function startPanelCloud(o: PanelOptions = {}): Promise<PanelCloud> {
  const panelDir = await buildPanel();
  const dir = mkdtempSync(join(tmpdir(), 'butter-browser-'));
  const cp: ControlPlane = createControlPlane({ dataDir: dir, panelDir, ...(o.localImports ? { imageImports: { allowLocalHosts: true } } : {}) });
  const url = await cp.listen('127.0.0.1', 0);
  const admin = new Client({ url, token: cp.adminToken! });
  const agents: Agent[] = [];
  const stateDirs: string[] = [];
  const contexts: BrowserContext[] = [];
  let browser: Browser | undefined;
  const close = async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    await browser?.close().catch(() => {});
    await Promise.all(agents.map((a) => a.stop().catch(() => {})));
    await cp.close();
    for (const d of [dir, ...stateDirs]) rmSync(d, { recursive: true, force: true });
  };
  try {
    const cloud: TestCloud = { cp, url, admin, dir, close };
    for (let i = 1; i <= (o.nodes ?? 2); i++) {
      const sim = await simAgent(cloud, `sim-${i}`);
      stateDirs.push(sim.stateDir);
      agents.push(sim.agent);
      await sim.agent.start();
      await admin.call('updateNode', { params: { name: `sim-${i}` }, body: { zone: `z${i}` } });
    }
    if (o.image) await uploadImage(admin, o.image);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    const b = browser;
    return {
      ...cloud,
      browser: b,
      agents,
      async open(path = '/') {
        const context = await b.newContext({ viewport: { width: 1200, height: 900 } });
        contexts.push(context);
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`);
        });
        page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
        await page.goto(`${url}${path}`);
        return { context, page, errors };
      },
      async token(role) {
        return (await admin.call('createToken', { body: { role } })).secret;
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Signs in through the form and waits for the shell (the role shown in the header). */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('role').waitFor();
}

/** axe-core's serious and critical findings on the page as it is now, as readable lines. */
export async function seriousA11y(page: Page): Promise<string[]> {
  const r = await new AxeBuilder({ page }).analyze();
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Saves a full-page screenshot as test-artifacts/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * Fails with the page's console errors, if any. `refused`: statuses of requests the test made
 * fail on purpose, which Chromium itself logs as "Failed to load resource" errors.
 */
export function noConsoleErrors(o: Opened, where: string, refused: number[] = []): void {
  const expected = (e: string) => refused.some((s) => e.includes(`Failed to load resource: the server responded with a status of ${s}`));
  assert.deepEqual(o.errors.filter((e) => !expected(e)), [], `console errors on ${where}`);
}

/** Waits until the page shows no "Loading…" (an event stream is always open: never network-idle). */
export async function loaded(page: Page): Promise<void> {
  await page.getByText('Loading…').first().waitFor({ state: 'detached' }).catch(() => {});
  await page.waitForFunction(() => !document.body.innerText.includes('Loading…'));
}
