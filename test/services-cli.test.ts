// `butter service` (the built CLI) against a control plane: blueprint and templates read from
// files relative to the blueprint, bad input a one-line error naming the field with nothing
// made, and the verbs' output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '../src/sdk/client.ts';
import { fakeNode, keepReady, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

const BUTTER = fileURLToPath(new URL('../bin/butter', import.meta.url));
let cloud: TestCloud;
let work: string;
let node: Client;

const BLUEPRINT = `placement: { availability_zones: 1 }
instance: { memory: 256M, cpus: 1 }
image: { name: img }
initialization:
  - path: tpl/hello.sh
    vars: { Who: { required: true } }
`;

before(async () => {
  if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) throw new Error('run `npm run build` first');
  cloud = await startTestCloud();
  node = await fakeNode(cloud, 'n1', 16);
  await uploadImage(cloud.admin, 'img');
  work = mkdtempSync(join(tmpdir(), 'butter-svc-cli-'));
  mkdirSync(join(work, 'bp', 'tpl'), { recursive: true });
  writeFileSync(join(work, 'bp', 'web.yml'), BLUEPRINT);
  writeFileSync(join(work, 'bp', 'tpl', 'hello.sh'), '#!/bin/sh\necho "hello {{ Who }} from {{ service }}"\n');
  writeFileSync(join(work, 'bp', 'broken.yml'), 'placement: { availability_zones: 1\nimage: [\n');
  writeFileSync(join(work, 'bp', 'lost.yml'), BLUEPRINT.replace('tpl/hello.sh', 'tpl/missing.sh'));
  writeFileSync(join(work, 'bp', 'odd.yml'), BLUEPRINT + 'colour: blue\n');
  writeFileSync(join(work, 'bp', 'gpu.yml'), BLUEPRINT.replace('memory: 256M', 'memory: 256M, gpu: true'));
  writeFileSync(join(work, 'bp', 'noimage.yml'), BLUEPRINT.replace('name: img', 'name: ghost'));
  writeFileSync(join(work, 'bp', 'zones.yml'), BLUEPRINT.replace('availability_zones: 1', 'availability_zones: 2'));
});
after(async () => {
  await cloud?.close();
  rmSync(work, { recursive: true, force: true });
});

function butter(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(BUTTER, args, { env: { ...process.env, XDG_CONFIG_HOME: join(work, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The fake node's report: without one for 10 s it is counted lost. */
const heartbeat = () => node.call('nodeReport', { params: { name: 'n1' }, body: { capacity: { cpus: 4, memoryBytes: 16 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] } });

function nothingMade(): void {
  const db = cloud.cp.services.store.db;
  for (const table of ['services', 'service_revisions', 'vms']) assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n, 0, `no row in ${table}`);
}

const bad: [string, string[], RegExp][] = [
  ['malformed YAML', ['--blueprint', 'broken.yml', '--var', 'Who=x'], /^error: .*broken\.yml:\d+:\d+/m],
  ['an unknown key', ['--blueprint', 'odd.yml', '--var', 'Who=x'], /^error: .*odd\.yml.*colour/m],
  ['a missing template file', ['--blueprint', 'lost.yml', '--var', 'Who=x'], /^error: .*initialization\[0\]\.path.*missing\.sh/m],
  ['a missing variable', ['--blueprint', 'web.yml'], /^error: .*Who/m],
  ['gpu: true', ['--blueprint', 'gpu.yml', '--var', 'Who=x'], /^error: .*instance\.gpu.*GPU passthrough/m],
  ['an unknown image', ['--blueprint', 'noimage.yml', '--var', 'Who=x'], /^error: .*image\.name: image ghost not found/m],
  ['more zones than exist', ['--blueprint', 'zones.yml', '--var', 'Who=x'], /^error: .*placement\.availability_zones: 2 zones wanted, 1 found/m],
  ['a malformed --var', ['--blueprint', 'web.yml', '--var', 'nonsense'], /^error: .*--var/m],
];
for (const [what, args, message] of bad) {
  test(`service create refuses ${what}, naming it, and makes nothing`, async () => {
    await heartbeat(); // n1 stays ready (and its zone counted) however slow the runs before were
    const r = await butter(['service', 'create', 'default', 'web', ...args.map((a) => (a.endsWith('.yml') ? join(work, 'bp', a) : a))]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('error:')).length, 1, r.stderr);
    nothingMade();
  });
}

test('service create, list, show, scale, history and rm', async () => {
  await heartbeat();
  // n1 stays ready through the CLI runs below, which on a loaded machine outlast the liveness
  // timeout by themselves (its instances then showed `unknown`); stopped before the rm, whose
  // `deleting` a heartbeat without the instances would end.
  const stopBeats = keepReady(node, 'n1', 16);
  const made = await butter(['service', 'create', 'default', 'web', '--blueprint', join(work, 'bp', 'web.yml'), '--var', 'Who=world', '--json']);
  assert.equal(made.code, 0, made.stderr);
  const s = JSON.parse(made.stdout) as { name: string; count: number; instances: { name: string }[] };
  assert.equal(s.count, 1);
  assert.deepEqual(s.instances.map((i) => i.name), ['web-0']);
  const ud = await cloud.admin.call('getUserData', { params: { name: 'web-0' } });
  assert.match(ud.userData, /hello world from web/, 'the template was read relative to the blueprint and rendered');

  const list = await butter(['service', 'list']);
  assert.match(list.stdout, /^web\s+default\s+\S+\/\d+\s+0\/1\s+1\s+done/m);
  const shown = await butter(['service', 'show', 'web']);
  assert.match(shown.stdout, /^dns name:\s+web\.default\.internal$/m);
  assert.match(shown.stdout, /^web-0\s+pending\s+n1\s+default\s+\S+\s+1$/m);
  const vms = await butter(['vm', 'list']);
  assert.match(vms.stdout, /^web-0 .* web\s+\S+$/m, 'vm list names the service');
  const rm = await butter(['vm', 'rm', 'web-0']);
  assert.notEqual(rm.code, 0);
  assert.match(rm.stderr, /service scale web/);

  await heartbeat(); // the CLI runs since the last one may have outlasted the liveness timeout on a loaded machine
  const up = await butter(['service', 'scale', 'web', '2']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal((await cloud.admin.call('getService', { params: { name: 'web' } })).instances.length, 2);
  const waited = await butter(['service', 'scale', 'web', '2', '--wait', '--timeout', '1']);
  assert.equal(waited.code, 1, 'the instances never run here: --wait gives up and says so');
  assert.match(waited.stderr, /^error: timed out after 1s waiting for service web \(web: 0\/2 running, rollout done\)$/m);
  const history = await butter(['service', 'history', 'web', '--json']);
  assert.deepEqual((JSON.parse(history.stdout) as { number: number; vars: unknown }[]).map((r) => [r.number, r.vars]), [[1, { Who: 'world' }]]);

  stopBeats();
  const gone = await butter(['service', 'rm', 'web']);
  assert.equal(gone.code, 0, gone.stderr);
  assert.match(gone.stdout, /being deleted/);
  assert.equal((await cloud.admin.call('getService', { params: { name: 'web' } })).state, 'deleting');
});
