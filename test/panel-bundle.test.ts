// The panel is bundled for a browser: no module it pulls in may import a Node module. The
// panel's build refuses one (panel/vite.config.ts), and the browser-safe SDK modules the panel
// uses (the Client, its event stream, the console socket) build clean by themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CONFIG = join(ROOT, 'panel', 'vite.config.ts');

/** Builds `entry` (source text, in panel/src so its imports resolve as the panel's) with the panel's config; the output's JS. */
async function bundle(entry: string): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'butter-bundle-'));
  const file = join(ROOT, 'panel', 'src', `.bundle-probe-${process.pid}.ts`);
  writeFileSync(file, entry);
  try {
    await build({ configFile: CONFIG, logLevel: 'silent', build: { outDir: out, emptyOutDir: true, rollupOptions: { input: file } } });
    return readdirSync(join(out, 'assets'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(out, 'assets', f), 'utf8'))
      .join('\n');
  } finally {
    rmSync(file, { force: true });
    rmSync(out, { recursive: true, force: true });
  }
}

test('the browser-safe SDK modules bundle for a browser without a Node module', async () => {
  const js = await bundle(
    [
      "import { Client } from '../../src/sdk/client.ts';",
      "import { EventVerbs } from '../../src/sdk/events.ts';",
      "import { consoleSocketUrl } from '../../src/sdk/console-socket.ts';",
      "const c = new Client({ url: location.origin, credentials: 'same-origin', csrf: () => 'x' });",
      "console.log(c, new EventVerbs(c), consoleSocketUrl(c.url, 'web'));",
    ].join('\n'),
  );
  assert.match(js, /x-csrf-token/, 'the client is in the bundle');
  assert.doesNotMatch(js, /["']node:/, 'no node: import left in the bundle');
});

test("the panel's build refuses a Node module, naming the importer", async () => {
  await assert.rejects(bundle("import { randomUUID } from 'node:crypto';\nconsole.log(randomUUID());\n"), /bundle-probe-\d+\.ts imports node:crypto: the panel runs in a browser/);
  await assert.rejects(bundle("import { Readable } from 'stream';\nconsole.log(Readable);\n"), /imports stream: the panel runs in a browser/);
});
