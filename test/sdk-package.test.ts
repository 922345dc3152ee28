/**
 * `butter/sdk` as another package sees it: the package is packed (`npm pack`, so only what it
 * ships), unpacked into a scratch project's node_modules (its dependencies linked from ours:
 * offline, and nothing of ours is touched), and a tiny ESM script there imports
 * `butter/sdk`, connects as the CLI would (its saved login) and drives a real control plane.
 * The shipped types are checked by compiling a consumer with tsc. Needs `npm run build`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCloud, type TestCloud } from './helpers.ts';
import { packSdk, root, run, savedLoginEnv } from './packed-sdk.ts';

let cloud: TestCloud;
let work: string;
let project: string;

before(async () => {
  cloud = await startTestCloud();
  ({ work, project } = await packSdk());
});
after(async () => {
  await cloud?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the package ships the SDK entry with its types, and nothing of the sources or tests', () => {
  const pkg = join(project, 'node_modules', 'butter');
  assert.ok(existsSync(join(pkg, 'dist/sdk/index.js')));
  assert.ok(existsSync(join(pkg, 'dist/sdk/index.d.ts')));
  assert.equal(existsSync(join(pkg, 'src')), false);
  assert.equal(existsSync(join(pkg, 'test')), false);
});

test('a script of another package imports butter/sdk, connects with the CLI\'s saved login and creates, gets, lists and destroys a network', async () => {
  // As `butter login` leaves it; no BUTTER_* variables.
  const env = savedLoginEnv(work, cloud.url, cloud.cp.adminToken!);
  writeFileSync(
    join(project, 'script.mjs'),
    `import { connect, ButterError, Client } from 'butter/sdk';
const butter = connect();
const made = await butter.network.create('sdk-net', { cidr: '10.77.0.0/24' });
const listed = (await butter.network.list()).map((n) => n.name);
const got = await butter.network.get('sdk-net');
const missing = await butter.network.get('no-such-net');
let clash;
try { await butter.network.create('sdk-net'); } catch (e) { clash = e instanceof ButterError ? e.code : String(e); }
await butter.network.destroy(got);
console.log(JSON.stringify({ from: import.meta.resolve('butter/sdk'), client: butter instanceof Client, made: made.cidr, listed, got: got.name, missing: missing ?? null, clash, after: (await butter.network.list()).map((n) => n.name) }));
`,
  );
  const { stdout } = await run(process.execPath, ['script.mjs'], { cwd: project, env });
  const out = JSON.parse(stdout) as Record<string, unknown>;
  assert.equal(out.from, `file://${join(project, 'node_modules/butter/dist/sdk/index.js')}`, 'resolved through the package\'s exports');
  assert.deepEqual(out, { ...out, client: true, made: '10.77.0.0/24', listed: ['default', 'sdk-net'], got: 'sdk-net', missing: null, clash: 'conflict', after: ['default'] });
  // The control plane saw the create and the destroy (its audit events), not a stand-in.
  const { items } = await cloud.admin.call('listEvents', {});
  const mine = items.filter((e) => e.resource === 'network' && e.name === 'sdk-net').map((e) => e.action);
  assert.deepEqual(mine, ['create', 'delete']);
});

test('the shipped types: a TypeScript consumer compiles against butter/sdk, and a wrong call does not', async () => {
  writeFileSync(
    join(project, 'consumer.ts'),
    `import { connect, ButterError, type Network, type Service, type ServiceInstance } from 'butter/sdk';
const butter = connect({ url: 'http://127.0.0.1:1', token: 't' });
export const one: Promise<Network | undefined> = butter.network.get('dev');
export const all: Promise<Network[]> = butter.network.list();
export const made: Promise<Network> = butter.network.create('dev', { cidr: '10.1.0.0/16', nat: false });
export const nodes = butter.call('listNodes', {}).then((r) => r.items.map((n) => n.name));
export const isError = (e: unknown): boolean => e instanceof ButterError && e.status === 404;
export const svc: Promise<Service> = butter.service.create('dev', 'web', { blueprint: 'web/blueprint.yml', vars: { Ips: ['10.0.0.5'] }, count: 2, wait: { timeoutMs: 1000 } });
export const ips: Promise<(string | null)[]> = butter.service.getInstances('web').then((is: ServiceInstance[]) => is.map((i) => i.ip));
// @ts-expect-error: a service needs a blueprint
export const noBlueprint = butter.service.create('dev', 'web', { vars: {} });
// @ts-expect-error: a network's name is a string
export const bad = butter.network.create(42);
// @ts-expect-error: no such option
export const unknown = butter.network.create('dev', { size: 3 });
`,
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', 'consumer.ts'];
  const r = await run(process.execPath, [tsc, ...args], { cwd: project }).catch((e: { stdout: string; code: number }) => e);
  assert.equal('code' in r ? r.code : 0, 0, r.stdout);
});
