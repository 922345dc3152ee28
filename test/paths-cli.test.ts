// `butter path` (the built CLI) against a control plane: add, list, check (exit 0 allowed, 3
// denied), rm by id and by FROM TO PORT, `--json` on each, a refusal as one line naming the
// field with exit 1 and nothing made, and `service show` listing the published endpoint.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '../src/sdk/client.ts';
import { fakeNode, heartbeat, runButter, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let work: string;
let node: Client;

const blueprint = (publicIp: boolean) => `image: { name: img }\ninstance: { memory: 256M, cpus: 1, public_ip: ${publicIp} }\n`;

before(async () => {
  if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) throw new Error('run `npm run build` first');
  cloud = await startTestCloud();
  node = await fakeNode(cloud, 'n1', 16);
  await uploadImage(cloud.admin, 'img');
  await cloud.admin.call('createService', { body: { network: 'default', name: 'web', blueprint: blueprint(true) } });
  await cloud.admin.call('createService', { body: { network: 'default', name: 'db', blueprint: blueprint(false) } });
  work = mkdtempSync(join(tmpdir(), 'butter-path-cli-'));
});
after(async () => {
  await cloud?.close();
  rmSync(work, { recursive: true, force: true });
});

const butter = (args: string[]) => runButter(args, { ...process.env, XDG_CONFIG_HOME: join(work, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! });
const rows = () => cloud.cp.services.store.db.prepare(`SELECT * FROM paths ORDER BY id`).all();

test('path add, list, check and rm, in words and in JSON; check exits 3 when denied', async () => {
  await heartbeat(node, 'n1', 16);
  const added = await butter(['path', 'add', 'web', 'db', '5432']);
  assert.equal(added.code, 0, added.stderr);
  const id = /^path ([0-9a-f]{12}) added: web -> db:5432\/tcp in default\n$/.exec(added.stdout)?.[1];
  assert.ok(id, added.stdout);

  const json = await butter(['path', 'add', '0.0.0.0/0', 'web', '8000-8001', '--host-port', '9000', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const pub = JSON.parse(json.stdout) as { id: string; hostPorts: [number, number]; text: string };
  assert.deepEqual(pub.hostPorts, [9000, 9001]);
  assert.equal(pub.text, '0.0.0.0/0 -> web:8000-8001/tcp');

  const list = await butter(['path', 'list', '--network', 'default']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0]!, /^ID\s+NETWORK\s+FROM\s+TO\s+PORTS\s+PUBLISHED\s+AGE$/);
  assert.ok(lines.some((l) => new RegExp(`^${id}\\s+default\\s+web\\s+db\\s+5432/tcp\\s+-\\s`).test(l)), list.stdout);
  assert.ok(lines.some((l) => new RegExp(`^${pub.id}\\s+default\\s+0\\.0\\.0\\.0/0\\s+web\\s+8000-8001/tcp\\s+9000-9001/tcp\\s`).test(l)), list.stdout);
  const listJson = JSON.parse((await butter(['path', 'list', '--service', 'db', '--json'])).stdout) as { id: string }[];
  assert.deepEqual(listJson.map((p) => p.id), [id]);

  const allowed = await butter(['path', 'check', 'web', 'db', '5432']);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(allowed.stdout, `allowed: web -> db:5432/tcp by path ${id} (web -> db:5432/tcp)\n`);
  const denied = await butter(['path', 'check', 'db', 'web', '5432']);
  assert.equal(denied.code, 3, 'denied exits 3');
  assert.equal(denied.stdout, 'denied: db -> web:5432/tcp: no path allows it\n');
  const internet = await butter(['path', 'check', '--internet', 'web', '8001']);
  assert.equal(internet.code, 0, internet.stderr);
  assert.match(internet.stdout, new RegExp(`^allowed: 0\\.0\\.0\\.0/0 -> web:8001/tcp by path ${pub.id}`));
  const internetJson = await butter(['path', 'check', '--internet', 'db', '5432', '--json']);
  assert.equal(internetJson.code, 3);
  assert.equal((JSON.parse(internetJson.stdout) as { allowed: boolean }).allowed, false);
  const usage = await butter(['path', 'check', 'web', 'db']);
  assert.equal(usage.code, 2, 'FROM TO without PORT is a usage mistake');

  const show = await butter(['service', 'show', 'web']);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /PUBLISHED\s+TO PORTS\s+FROM\s+ON\n9000-9001\/tcp\s+8000-8001\s+0\.0\.0\.0\/0\s+n1\n/);

  const rmTriple = await butter(['path', 'rm', 'web', 'db', '5432']);
  assert.equal(rmTriple.code, 0, rmTriple.stderr);
  assert.equal(rmTriple.stdout, `path ${id} removed: web -> db:5432/tcp\n`);
  const rmId = await butter(['path', 'rm', pub.id, '--json']);
  assert.equal(rmId.code, 0, rmId.stderr);
  assert.equal((JSON.parse(rmId.stdout) as { id: string }).id, pub.id);
  assert.deepEqual(rows(), []);
});

test('a refused path is one line naming the field, exit 1, and nothing made', async () => {
  for (const [args, message] of [
    [['path', 'add', 'web', 'db', '70000'], /^error: port 70000 is out of range 1\.\.65535\n$/],
    [['path', 'add', '0.0.0.0/0', 'db', '5432'], /^error: service db may not be published: .*public_ip: false/],
    [['path', 'add', '10.1.2.3/8', 'web', '80'], /^error: 10\.1\.2\.3\/8 has host bits set; did you mean 10\.0\.0\.0\/8\?\n$/],
    [['path', 'add', '0.0.0.0/0', 'web', '22'], /^error: host port 22\/tcp is sshd's/],
    [['path', 'rm', 'web', 'db', '1'], /^error: no path web -> db:1\/tcp in network default\n$/],
  ] as const) {
    const r = await butter([...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
  const badHost = await butter(['path', 'add', '0.0.0.0/0', 'web', '80', '--host-port', 'eighty']);
  assert.equal(badHost.code, 2);
  assert.match(badHost.stderr, /--host-port: must be a port number/);
  assert.deepEqual(rows(), []);
});
