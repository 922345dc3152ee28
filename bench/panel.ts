/**
 * Figure (o): the web panel in real headless Chromium against `butter server` on loopback.
 *
 * Event latency: a page shows the audit log (live from `GET /v1/events/stream`); the page
 * itself makes each change (`POST /v1/tokens` with a unique description, through `fetch` with
 * its session cookie and CSRF header) and times, on its own performance clock, until a
 * MutationObserver sees the event's row in the DOM. Both ends are read in the browser, so no
 * two clocks are compared: "round trip" is from sending the call to the row shown (the API
 * call, the commit and its fsync, the stream, the render), "after the answer" from the call's
 * answer (the change committed) to the row shown, 0 when the row came first. 200 changes, one
 * after the other, after one not counted (the stream is connected and warm).
 *
 * First load: a fresh browser context (empty cache) holding the session cookie opens the
 * panel: bytes are every finished response's `encodedDataLength` (CDP Network.loadingFinished:
 * headers and body as sent on the wire, after compression; the event stream, never finished,
 * is not counted), time to interactive is the page's
 * performance clock when the signed-in shell (its role badge) is in the DOM, found by a
 * MutationObserver installed before any script of the page runs. Median of 5 loads.
 *
 * `node --import tsx bench/panel.ts` runs it alone and prints it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { registerCleanup } from './cleanup.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';
import { median, percentile, round } from './stats.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface PanelBenchOptions {
  changes: number;
  loads: number;
}

export const PANEL_DEFAULTS: PanelBenchOptions = { changes: 200, loads: 5 };

export interface PanelLoad {
  bytes: number;
  requests: number;
  /** Navigation start → the signed-in shell in the DOM, ms. */
  interactiveMs: number;
  domContentLoadedMs: number;
  loadMs: number;
}

export interface PanelBenchResult {
  changes: number;
  /** Sending the change → its row in the DOM, ms (the page's clock). */
  roundTrip: { p50Ms: number; p99Ms: number; maxMs: number };
  /** The change's answer (committed) → its row in the DOM, ms; 0 when the row came first. */
  afterAnswer: { p50Ms: number; p99Ms: number; maxMs: number };
  /** Rows that appeared before the API call answered. */
  shownBeforeAnswer: number;
  firstLoad: PanelLoad & { runs: PanelLoad[] };
  transport: 'https' | 'http';
  chromium: string;
}

const LAUNCH = { executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] };

/** The panel must be built (vite) for the server to serve it; `npm run build` does it. */
function ensurePanelBuilt(log: (m: string) => void): void {
  if (existsSync(join(REPO, 'dist/panel/index.html')) && process.env.BENCH_NO_BUILD === '1') return;
  log('building the panel (vite build) ...');
  const r = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--config', 'panel/vite.config.ts', '--logLevel', 'warn'], { cwd: REPO, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`vite build failed: ${(r.stdout ?? '') + (r.stderr ?? '')}`.slice(0, 2000));
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50Ms: round(percentile(s, 50), 1), p99Ms: round(percentile(s, 99), 1), maxMs: round(s[s.length - 1] ?? NaN, 1) };
};

async function signedInContext(browser: Browser, server: ServerProcess, token: string): Promise<BrowserContext> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  await page.goto(server.url + '/');
  const status = await page.evaluate(async (t) => (await fetch('/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t }) })).status, token);
  if (status !== 201) throw new Error(`sign-in answered ${status}`);
  await page.close();
  return ctx;
}

async function firstLoad(browser: Browser, server: ServerProcess, cookies: Awaited<ReturnType<BrowserContext['cookies']>>): Promise<PanelLoad> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    await ctx.addCookies(cookies);
    const page = await ctx.newPage();
    // Before any of the page's scripts: note when the signed-in shell appears.
    // (As text: tsx would wrap a named function of this file in a helper the page lacks.)
    await page.addInitScript({
      content: `new MutationObserver(function () {
        if (window.__interactive === undefined && document.querySelector('[data-testid=role]')) window.__interactive = performance.now();
      }).observe(document, { childList: true, subtree: true });`,
    });
    const cdp = await ctx.newCDPSession(page);
    let bytes = 0;
    let requests = 0;
    cdp.on('Network.loadingFinished', (e: { encodedDataLength: number }) => {
      bytes += e.encodedDataLength;
      requests++;
    });
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await page.goto(server.url + '/#/overview', { waitUntil: 'load' });
    await page.waitForFunction(() => (window as unknown as { __interactive?: number }).__interactive !== undefined, undefined, { timeout: 30_000 }).catch(async (e) => {
      throw new Error(`the panel did not show its signed-in shell: ${(e as Error).message}; the page says: ${(await page.locator('body').innerText()).slice(0, 300)}`);
    });
    // Requests the first screen makes after the shell (its data) count as part of the load;
    // the event stream stays open (never "network idle"), so: until no "Loading…", then 500 ms.
    await page.waitForFunction(() => !document.body.innerText.includes('Loading…'), undefined, { timeout: 30_000 });
    await page.waitForTimeout(500);
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return { interactive: (window as unknown as { __interactive: number }).__interactive, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd };
    });
    return { bytes, requests, interactiveMs: round(t.interactive, 1), domContentLoadedMs: round(t.dcl, 1), loadMs: round(t.load, 1) };
  } finally {
    await ctx.close();
  }
}

/**
 * Runs in the page (as text: tsx would wrap this file's named functions in a helper the page
 * lacks): makes each change and times until its row is in the audit table.
 */
const IN_PAGE_LOOP = `async function ({ n, nonce }) {
  const { csrf } = (await (await fetch('/v1/session')).json()).session;
  const seen = new Map();
  const waiting = new Map();
  const re = new RegExp('[(](b-' + nonce + '-[0-9]+)[)]');
  new MutationObserver(function (records) {
    const t = performance.now();
    for (const r of records)
      for (const node of r.addedNodes) {
        const m = re.exec(node.textContent || '');
        if (m && !seen.has(m[1])) {
          seen.set(m[1], t);
          const w = waiting.get(m[1]);
          if (w) w();
        }
      }
  }).observe(document.querySelector('table.events'), { childList: true, subtree: true, characterData: true });
  function shown(d) {
    return new Promise(function (resolve, reject) {
      if (seen.has(d)) return resolve();
      const timer = setTimeout(function () { reject(new Error('event ' + d + ' not shown within 10 s')); }, 10000);
      waiting.set(d, function () { clearTimeout(timer); resolve(); });
    });
  }
  const out = [];
  for (let i = -1; i < n; i++) {
    const d = 'b-' + nonce + '-' + (i + 1);
    const t0 = performance.now();
    const res = await fetch('/v1/tokens', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify({ role: 'viewer', description: d }) });
    const t1 = performance.now();
    if (res.status !== 201) throw new Error('POST /v1/tokens answered ' + res.status + ': ' + (await res.text()));
    await shown(d);
    const t2 = seen.get(d);
    if (i >= 0) out.push({ total: t2 - t0, afterAnswer: Math.max(0, t2 - t1), before: t2 < t1 });
  }
  return out;
}`;

/** The in-page loop: make a change, time until its row is in the audit table. */
async function eventLatency(ctx: BrowserContext, server: ServerProcess, changes: number): Promise<{ total: number; afterAnswer: number; before: boolean }[]> {
  const page = await ctx.newPage();
  await page.goto(server.url + '/#/audit');
  await page.waitForSelector('table.events');
  const nonce = Math.random().toString(36).slice(2, 8);
  const out = (await page.evaluate(`(${IN_PAGE_LOOP})(${JSON.stringify({ n: changes, nonce })})`)) as { total: number; afterAnswer: number; before: boolean }[];
  await page.close();
  return out;
}

export async function benchPanel(opts: PanelBenchOptions = PANEL_DEFAULTS, log: (m: string) => void = () => {}): Promise<PanelBenchResult> {
  ensurePanelBuilt(log);
  const server = await startServerProcess();
  let browser: Browser | undefined;
  const done = registerCleanup('panel bench chromium', () => browser?.close());
  try {
    browser = await chromium.launch(LAUNCH);
    const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    const ctx = await signedInContext(browser, server, token);
    const cookies = await ctx.cookies();
    log(`chromium ${browser.version()} against ${server.url}`);
    const runs: PanelLoad[] = [];
    for (let i = 0; i < opts.loads; i++) runs.push(await firstLoad(browser, server, cookies));
    log(`first loads: ${runs.map((r) => `${r.bytes} B / ${r.interactiveMs} ms`).join(', ')}`);
    const samples = await eventLatency(ctx, server, opts.changes);
    const pick = (k: keyof PanelLoad) => median(runs.map((r) => r[k]));
    return {
      changes: samples.length,
      roundTrip: stats(samples.map((s) => s.total)),
      afterAnswer: stats(samples.map((s) => s.afterAnswer)),
      shownBeforeAnswer: samples.filter((s) => s.before).length,
      firstLoad: { bytes: pick('bytes'), requests: pick('requests'), interactiveMs: pick('interactiveMs'), domContentLoadedMs: pick('domContentLoadedMs'), loadMs: pick('loadMs'), runs },
      transport: server.transport,
      chromium: browser.version(),
    };
  } finally {
    await browser?.close();
    done();
    await server.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await benchPanel(PANEL_DEFAULTS, (m) => console.log(m));
  console.log(JSON.stringify(r, null, 2));
}
