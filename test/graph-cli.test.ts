// `butter graph` (the built CLI) against a control plane: DOT on stdout by default, SVG into a
// file with -o, --json, one network, and the errors: a bad --format (usage, exit 2), an
// unknown network, and a control plane without Graphviz (one line naming the package).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { runButter, startTestCloud, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let work: string;
let noDot: ControlPlane;
let noDotUrl: string;

before(async () => {
  if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) throw new Error('run `npm run build` first');
  cloud = await startTestCloud();
  await cloud.admin.call('createNetwork', { body: { name: 'dev', cidr: '10.20.0.0/16' } });
  work = mkdtempSync(join(tmpdir(), 'butter-graph-cli-'));
  // A real lookup of a program that is not there, as on a host without the graphviz package.
  noDot = createControlPlane({ dataDir: join(work, 'nodot'), graphviz: { command: join(work, 'no-such-dot') } });
  noDotUrl = await noDot.listen('127.0.0.1', 0);
});
after(async () => {
  await cloud?.close();
  await noDot?.close();
  rmSync(work, { recursive: true, force: true });
});

const butter = (args: string[], url = cloud.url, token = cloud.cp.adminToken!) => runButter(['graph', ...args], { ...process.env, XDG_CONFIG_HOME: join(work, 'cfg'), BUTTER_URL: url, BUTTER_TOKEN: token });

test('butter graph prints DOT with a cluster per network', async () => {
  const r = await butter([]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^digraph butter \{/);
  assert.ok(r.stdout.includes('subgraph "cluster_default" {') && r.stdout.includes('subgraph "cluster_dev" {'), r.stdout);
});

test('--network N --format svg -o FILE writes the SVG Graphviz drew, and says so on stderr', async () => {
  const file = join(work, 'dev.svg');
  const r = await butter(['--network', 'dev', '--format', 'svg', '-o', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /graph written to .*dev\.svg \(svg\)/);
  const svg = readFileSync(file, 'utf8');
  assert.match(svg, /<svg[\s>]/);
  assert.ok(svg.includes('<title>cluster_dev</title>') && !svg.includes('cluster_default'), svg);
});

test('--json (and --format json) print the graph as JSON', async () => {
  for (const args of [['--json'], ['--format', 'json']]) {
    const r = await butter(args);
    assert.equal(r.code, 0, r.stderr);
    const g = JSON.parse(r.stdout) as { clusters: { network: string }[]; edges: unknown[] };
    assert.deepEqual(
      g.clusters.map((c) => c.network),
      ['default', 'dev'],
    );
    assert.deepEqual(g.edges, []);
  }
});

test('a bad --format is a usage error (exit 2); an unknown network one line naming it', async () => {
  const bad = await butter(['--format', 'png']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /format: must be json, dot, svg, got "png"/);
  const none = await butter(['--network', 'nope']);
  assert.equal(none.code, 1);
  assert.equal(none.stderr, 'error: no network nope\n');
});

test('a control plane without Graphviz: --format svg fails in one line naming the package; DOT still works', async () => {
  const r = await butter(['--format', 'svg'], noDotUrl, noDot.adminToken!);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: format svg needs Graphviz's `.*no-such-dot` on the control plane, which is not installed \(Debian: apt-get install graphviz/);
  assert.equal(r.stdout, '');
  const dot = await butter([], noDotUrl, noDot.adminToken!);
  assert.equal(dot.code, 0, dot.stderr);
  assert.match(dot.stdout, /cluster_default/);
});
