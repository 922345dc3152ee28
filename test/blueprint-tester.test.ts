// `butter test DIR` (the built CLI) against a control plane with a real agent on the simulated
// driver: a TypeScript fixture loaded by the compiled CLI on plain Node, the steps in order with
// a throwaway network, the state in DIR/.butter/ between deploy, check and cleanup, exit codes a
// CI can tell apart, and everything torn down after a failed verify, a failed setup and a real
// SIGINT and SIGTERM in the middle of a verify.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from '../src/agent/agent.ts';
import { BUTTER, simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let agent: Agent;
let agentDir: string;
let work: string;
let defaultNetworks: string[];

const BLUEPRINT = `network: { subnetwork_max_instance_count: 4 }
placement: { availability_zones: 1 }
instance: { memory: 128M, cpus: 1 }
image: { name: tiny }
initialization:
  - path: hello.sh
    vars: { Greeting: { required: true } }
`;
const HELLO = '#!/bin/sh\necho "{{ Greeting }} from {{ service }}.{{ network }}"\n';

// TypeScript that plain Node cannot run (an interface, parameter types): the CLI must compile it.
// It makes a second service before the one under test (as the original's haproxy fixture made
// its back ends), hands the greeting to the blueprint, and checks the rendered user-data.
const TS_FIXTURE = `import assert from 'node:assert/strict';
interface Info { deploymentInfo: { helper: string }; blueprintVars: { Greeting: string } }
type Ctx = { client: any; uniqueName(p: string): string; log(m: string): void; retry<T>(f: () => Promise<T>, o?: { deadlineMs?: number; intervalMs?: number }): Promise<T> };

export async function setupBeforeTestedService(network: { name: string; cidr: string }, t: Ctx): Promise<Info> {
  const helper = t.uniqueName('helper');
  await t.client.service.create(network.name, helper, { blueprint: { text: ${JSON.stringify(BLUEPRINT)}, files: { 'hello.sh': 'echo {{ Greeting }}' } }, vars: { Greeting: 'helping' }, wait: true });
  return { deploymentInfo: { helper }, blueprintVars: { Greeting: 'hello-' + network.name } };
}

export async function setupAfterTestedService(network: { name: string }, service: { name: string }, info: Info, t: Ctx): Promise<void> {
  t.log('after: ' + service.name + ' next to ' + info.deploymentInfo.helper);
}

export async function verify(network: { name: string }, service: { name: string; network: string; instances: { name: string }[] }, info: Info, t: Ctx): Promise<void> {
  assert.equal(service.network, network.name);
  const helper = await t.client.service.get(network.name, info.deploymentInfo.helper);
  assert.ok(helper, 'the helper service is there');
  await t.retry(async () => {
    const { userData } = await t.client.call('getUserData', { params: { name: service.instances[0]!.name } });
    assert.match(userData, new RegExp(info.blueprintVars.Greeting + ' from ' + service.name + '.' + network.name));
  }, { deadlineMs: 20000, intervalMs: 200 });
}
`;

// Plain JavaScript fixtures: a verify that fails, a setup that fails, a verify that waits forever
// (after saying so in a file, for the test to send its signal then).
const JS_FAILING = `export function setupBeforeTestedService() { return { deploymentInfo: {}, blueprintVars: { Greeting: 'x' } }; }
export function verify() { throw new Error('deliberately broken: the page says nothing'); }
`;
const JS_SETUP_FAILS = `export function setupBeforeTestedService() { throw new Error('no back end to test against'); }
export function verify() {}
`;
const JS_HANGS = `import { writeFileSync } from 'node:fs';
export function setupBeforeTestedService() { return { deploymentInfo: {}, blueprintVars: { Greeting: 'x' } }; }
export function verify(network, service, info, t) { writeFileSync(t.dir + '/verifying', network.name); return new Promise(() => {}); }
`;
// A verify still retrying (its timers keep running) when the signal comes: the CLI must not wait for it.
const JS_RETRIES = `import { writeFileSync } from 'node:fs';
export function setupBeforeTestedService() { return { deploymentInfo: {}, blueprintVars: { Greeting: 'x' } }; }
export function verify(network, service, info, t) {
  writeFileSync(t.dir + '/verifying', network.name);
  return t.retry(() => { throw new Error('not yet'); }, { deadlineMs: 3600000, intervalMs: 50 });
}
`;

function bundleDir(name: string, fixture: { file: string; text: string } | undefined, blueprint = BLUEPRINT): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'blueprint.yml'), blueprint);
  writeFileSync(join(d, 'hello.sh'), HELLO);
  if (fixture) writeFileSync(join(d, fixture.file), fixture.text);
  return d;
}

const env = () => ({ ...process.env, XDG_CONFIG_HOME: join(work, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! });

function butter(args: string[], onSpawn?: (pid: number) => void): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // node itself, not bin/butter's sh: a signal must reach the CLI's process, as Ctrl-C's does.
    // Simulated nodes cannot send path verify's probes: every test but the one about it skips it.
    const all = args[0] === 'test' && !args.includes('--path-verify') ? [...args, '--no-path-verify'] : args.filter((a) => a !== '--path-verify');
    const child = spawn(process.execPath, [join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'cli', 'main.js'), ...all], { env: env() });
    onSpawn?.(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** No network but those there before, no service, no VM, no state in `dir`. */
async function nothingLeft(dir: string): Promise<void> {
  const nets = (await cloud.admin.call('listNetworks', {})).items.map((n) => n.name);
  assert.deepEqual(nets, defaultNetworks, 'no network left');
  assert.deepEqual((await cloud.admin.call('listServices', { query: {} })).items.map((s) => s.name), [], 'no service left');
  assert.deepEqual((await cloud.admin.call('listVms', {})).items.map((v) => v.name), [], 'no VM left');
  assert.equal(existsSync(join(dir, '.butter')), false, 'no state left');
}

before(async () => {
  if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) throw new Error('run `npm run build` first');
  void BUTTER;
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'tiny');
  const a = await simAgent(cloud, 'n1', { capacity: { cpus: 8, memoryBytes: 16 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 } });
  agent = a.agent;
  agentDir = a.stateDir;
  await agent.start();
  await until('n1 ready', async () => ((await cloud.admin.call('getNode', { params: { name: 'n1' } })).state === 'ready' ? true : undefined));
  work = mkdtempSync(join(tmpdir(), 'butter-tester-'));
  defaultNetworks = (await cloud.admin.call('listNetworks', {})).items.map((n) => n.name);
});

after(async () => {
  await agent?.stop();
  await cloud?.close();
  for (const d of [work, agentDir]) if (d) rmSync(d, { recursive: true, force: true });
});

test('run: a TypeScript fixture deploys in a throwaway network, verifies, and everything is torn down', async () => {
  const dir = bundleDir('hello', { file: 'blueprint-fixture.ts', text: TS_FIXTURE });
  const r = await butter(['test', dir, '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout) as { ok: boolean; network: string; service: string; steps: { step: string; ok: boolean; skipped?: boolean }[] };
  assert.equal(report.ok, true);
  assert.match(report.network, /^test-[0-9a-f]{6}$/);
  assert.match(report.service, /^hello-[0-9a-f]{6}$/);
  assert.deepEqual(
    report.steps.map((s) => [s.step, s.ok]),
    [
      ['network', true],
      ['setupBeforeTestedService', true],
      ['service', true],
      ['setupAfterTestedService', true],
      ['verify', true],
      ['path verify', true],
      ['cleanup', true],
    ],
  );
  assert.equal(report.steps.find((s) => s.step === 'path verify')?.skipped, true, 'skipped, and said so');
  assert.match(r.stderr, /network test-[0-9a-f]{6} \(10\.20[0-7]\.\d+\.0\/22\) created/);
  assert.match(r.stderr, /after: hello-[0-9a-f]{6} next to helper-[0-9a-f]{6}/, 'setupAfterTestedService ran with the setup info');
  await nothingLeft(dir);
});

test('run: a verify that throws exits 1 with its message, and nothing is left', async () => {
  const dir = bundleDir('broken', { file: 'blueprint-fixture.js', text: JS_FAILING });
  const r = await butter(['test', dir]);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /^FAIL run .*broken: verify: deliberately broken: the page says nothing$/m);
  assert.match(r.stderr, /FAIL {2}verify/);
  await nothingLeft(dir);
});

test('run: after verify, path verify runs on the network, and nodes that cannot answer its probes fail the test', async () => {
  const dir = bundleDir('probed', { file: 'blueprint-fixture.ts', text: TS_FIXTURE });
  const r = await butter(['test', dir, '--path-verify', '--json']);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout) as { error: string; steps: { step: string; ok: boolean; skipped?: boolean }[] };
  assert.equal(report.steps.find((s) => s.step === 'verify')?.ok, true, 'verify itself passed');
  assert.match(report.error, /^path verify: the data plane disagrees with the paths: node n1 did not answer for \d+ probe\(s\): .*simulated driver/);
  await nothingLeft(dir);
});

test('run: a setup that throws exits 3 (the deployment failed), and the network it was given is removed', async () => {
  const dir = bundleDir('nosetup', { file: 'blueprint-fixture.js', text: JS_SETUP_FAILS });
  const r = await butter(['test', dir, '--json']);
  assert.equal(r.code, 3, r.stderr + r.stdout);
  assert.match((JSON.parse(r.stdout) as { error: string }).error, /^setupBeforeTestedService: no back end to test against$/);
  await nothingLeft(dir);
});

test('deploy, check and cleanup: the state is kept in DIR/.butter/ between them', async () => {
  const dir = bundleDir('steps', { file: 'blueprint-fixture.ts', text: TS_FIXTURE });
  const d = await butter(['test', dir, 'deploy']);
  assert.equal(d.code, 0, d.stderr);
  const state = JSON.parse(readFileSync(join(dir, '.butter', 'test-state.json'), 'utf8')) as { network: string; service: string; phase: string; setupInfo: { deploymentInfo: { helper: string } } };
  assert.equal(state.phase, 'deployed');
  const s = await cloud.admin.call('getService', { params: { name: state.service } });
  assert.equal(s.network, state.network);
  assert.deepEqual(s.instances.map((i) => i.state), ['running']);
  assert.equal((await cloud.admin.call('getService', { params: { name: state.setupInfo.deploymentInfo.helper } })).network, state.network);

  const again = await butter(['test', dir, 'deploy']);
  assert.equal(again.code, 2, 'a second deploy is refused');
  assert.match(again.stderr, new RegExp(`holds a deployment \\(network ${state.network}\\)`));
  assert.equal((await cloud.admin.call('getNetwork', { params: { name: state.network } })).name, state.network, 'and leaves the first alone');

  const c = await butter(['test', dir, 'check']);
  assert.equal(c.code, 0, c.stderr + c.stdout);
  assert.match(c.stdout, /^PASS check /m);
  const c2 = await butter(['test', dir, 'check']);
  assert.equal(c2.code, 0, 'check can run again: it changes nothing');

  const u = await butter(['test', dir, 'cleanup']);
  assert.equal(u.code, 0, u.stderr);
  await nothingLeft(dir);
  const nothing = await butter(['test', dir, 'check']);
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /no deployment in .*: run `butter test .* deploy` first/);
});

for (const [signal, code, fixture, what] of [
  ['SIGINT', 130, JS_HANGS, 'a verify awaiting a promise that never settles'],
  ['SIGTERM', 143, JS_RETRIES, 'a verify retrying for an hour'],
] as const) {
  test(`${signal} in the middle of ${what} tears everything down and exits ${code}`, async () => {
    const dir = bundleDir(`hangs-${signal.toLowerCase()}`, { file: 'blueprint-fixture.js', text: fixture });
    let pid = 0;
    const done = butter(['test', dir], (p) => (pid = p));
    const network = await until('the fixture is in verify', async () => (existsSync(join(dir, 'verifying')) ? readFileSync(join(dir, 'verifying'), 'utf8') : undefined), 60_000, 100);
    assert.equal((await cloud.admin.call('getNetwork', { params: { name: network } })).name, network, 'deployed before the signal');
    process.kill(pid, signal);
    const r = await done;
    assert.equal(r.code, code, r.stderr + r.stdout);
    assert.match(r.stderr, new RegExp(`${signal}: stopping; tearing down`));
    assert.match(r.stdout, new RegExp(`^FAIL run .*: interrupted by ${signal}$`, 'm'));
    rmSync(join(dir, 'verifying'));
    await nothingLeft(dir);
  });
}

test('usage: no blueprint, no fixture or an unknown command exit 2 and make nothing', async () => {
  const empty = join(work, 'empty');
  mkdirSync(empty);
  const noBp = await butter(['test', empty]);
  assert.equal(noBp.code, 2);
  assert.match(noBp.stderr, /^error: dir: no blueprint\.yml in /m);
  const noFixture = bundleDir('nofixture', undefined);
  const r = await butter(['test', noFixture]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: fixture: no blueprint-fixture\.ts or blueprint-fixture\.js/m);
  const bad = await butter(['test', noFixture, 'deploy-all']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: command: must be one of deploy, check, cleanup, run/m);
  const broken = bundleDir('badfixture', { file: 'blueprint-fixture.ts', text: 'export const verify: number = 1;\nexport function setupBeforeTestedService() {}\n' });
  const b = await butter(['test', broken]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /^error: fixture: .*blueprint-fixture\.ts exports no function verify/m);
  for (const d of [empty, noFixture, broken]) await nothingLeft(d);
});
