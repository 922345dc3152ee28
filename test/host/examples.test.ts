// The blueprints of examples/ for real: `butter test examples/X run` (the built CLI, from the
// control plane's namespace) against a real control plane and a real agent on a namespace
// machine, real tiny guests under QEMU, the paths enforced and published by the node. Each
// example's fixture checks real HTTP answers through the published endpoint (the node's own
// address on the underlay, inside our namespaces); a fixture whose verify fails exits non-zero
// with everything torn down. One cluster, one node, one guest at a time (two for two-tier).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NamespaceCluster } from './cluster-harness.ts';
import { within } from '../within.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
let c: NamespaceCluster;
let defaultNetworks: string[];
const t0 = Date.now();

before(async () => {
  if (!existsSync(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url)))) throw new Error('run `npm run build` first');
  c = new NamespaceCluster();
  await c.startServer();
  await c.addNode('n1', 'east');
  const { buildTiny } = await import('../../src/daemon/tiny-image.ts');
  const t = await buildTiny(`${c.dir}/tiny`);
  const r = c.cli(['image', 'add', 'tiny', '--kernel', t.kernel, '--initrd', t.initrd, '--root-disk', t.rootDisk, '--cmdline', t.cmdline]);
  assert.equal(r.code, 0, r.stderr);
  defaultNetworks = c.json<{ name: string }[]>(['network', 'list']).map((n) => n.name);
});

after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(c?.log);
  await c?.cleanup();
  console.log(`# examples host test: ${Math.round((Date.now() - t0) / 1000)} s in all`);
});

interface Report {
  ok: boolean;
  network: string | null;
  service: string | null;
  exitCode: number;
  error: string | null;
  steps: { step: string; ok: boolean; skipped?: boolean; message?: string }[];
}

/** A copy of examples/NAME (the checkout is not written to: the tester keeps its state in DIR/.butter/). */
function copyOf(name: string, as = name): string {
  const dir = join(c.dir, 'examples', as);
  cpSync(join(EXAMPLES, name), dir, { recursive: true, filter: (src) => !src.includes('/.butter') });
  return dir;
}

async function butterTest(dir: string): Promise<{ code: number; report: Report; stderr: string }> {
  const r = await within(c.cliAsync(['test', dir, 'run', '--json']), 900_000, `butter test ${dir}`);
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    assert.fail(`butter test ${dir} printed no report (exit ${r.code}):\n${r.stdout}\n${r.stderr}\n${c.log.slice(-3000)}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

/** What the test made is gone: its network, every service and VM, the guests' QEMU, the state. */
async function nothingLeft(dir: string, network: string | null): Promise<void> {
  assert.ok(network, 'the report names the network');
  assert.deepEqual(c.json<{ name: string }[]>(['network', 'list']).map((n) => n.name), defaultNetworks, 'no network left');
  assert.deepEqual(c.json<unknown[]>(['service', 'list']), [], 'no service left');
  assert.deepEqual(c.json<unknown[]>(['vm', 'list']), [], 'no VM left');
  assert.deepEqual(c.json<unknown[]>(['path', 'list']), [], 'no path left');
  await c.until('no QEMU left on n1', () => c.qemus('n1').length === 0, 60_000);
  assert.equal(existsSync(join(dir, '.butter')), false, 'no state left in DIR/.butter');
}

function passed(r: { code: number; report: Report; stderr: string }): void {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.report.error}\n${r.stderr}\n${c.log.slice(-3000)}`);
  assert.equal(r.report.ok, true);
  const steps = Object.fromEntries(r.report.steps.map((s) => [s.step, s.ok]));
  for (const s of ['network', 'setupBeforeTestedService', 'service', 'setupAfterTestedService', 'verify', 'path verify', 'cleanup']) assert.equal(steps[s], true, `${s} ran and passed`);
  assert.equal(r.report.steps.find((s) => s.step === 'path verify')?.skipped, undefined, 'path verify probed the network for real');
  assert.match(r.stderr, /path verify: the data plane agrees with the paths \([1-9]\d* probe\(s\)\)/);
}

test('a fixture whose verify fails: exit 1 naming it, and everything is torn down', { timeout: 1_000_000 }, async () => {
  const dir = copyOf('hello-web', 'broken-web');
  writeFileSync(
    join(dir, 'blueprint-fixture.js'),
    `export function setupBeforeTestedService() { return { deploymentInfo: {}, blueprintVars: { Greeting: 'unused' } }; }
export function verify(network, service) { throw new Error('deliberately failing verify of ' + service.name); }
`,
  );
  rmSync(join(dir, 'blueprint-fixture.ts')); // the failing one above instead
  const r = await butterTest(dir);
  assert.equal(r.code, 1, `${r.report.error}\n${r.stderr}`);
  assert.equal(r.report.ok, false);
  assert.match(r.report.error ?? '', new RegExp(`^verify: deliberately failing verify of ${r.report.service}$`));
  await nothingLeft(dir, r.report.network);
});

test('examples/hello-web: the published web service answers its greeting through the node', { timeout: 1_000_000 }, async () => {
  const dir = copyOf('hello-web');
  const r = await butterTest(dir);
  passed(r);
  assert.match(r.stderr, /GET http:\/\/10\.251\.0\.\d+:80\n/, 'through the node address on the underlay');
  await nothingLeft(dir, r.report.network);
});

test('examples/two-tier: the front end answers with the back end’s page; the back end is not reachable from outside', { timeout: 1_000_000 }, async () => {
  const dir = copyOf('two-tier');
  const r = await butterTest(dir);
  passed(r);
  await nothingLeft(dir, r.report.network);
});
