// The CLI (built `bin/butter`) against a control plane over real HTTP: exit codes, one-line
// errors naming the field, --json, and `image add --url` with digest checking.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUTTER, fakeNode, heartbeat, keepReady, runButter, startTestCloud, type TestCloud } from './helpers.ts';
import type { ButterError, Client } from '../src/sdk/client.ts';
import { publicKeyOf } from '../src/core/wireguard-keys.ts';

let cloud: TestCloud;
let node1: Client;
let files: Server;
let filesUrl: string;
let work: string;
const disk = Buffer.from('a raw disk image, honest\n'.repeat(4000));
const diskSha = createHash('sha256').update(disk).digest('hex');

before(async () => {
  if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) throw new Error('run `npm run build` first');
  // The tests-only option: `image add --remote` imports from the local file server on 127.0.0.1.
  cloud = await startTestCloud({ imageImports: { allowLocalHosts: true } });
  node1 = await fakeNode(cloud, 'node-1', 16);
  work = mkdtempSync(join(tmpdir(), 'butter-cli-'));
  files = createServer((req, res) => {
    if (req.url === '/disk.img') res.writeHead(200, { 'content-length': disk.length }).end(disk);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  filesUrl = `http://127.0.0.1:${(files.address() as { port: number }).port}`;
});
after(async () => {
  files?.close();
  await cloud?.close();
  rmSync(work, { recursive: true, force: true });
});

function butter(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runButter(args, { ...process.env, XDG_CONFIG_HOME: join(work, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken!, ...env });
}

test('image add --url verifies the digest: a mismatch is refused and leaves nothing', async () => {
  const blobs = () => readdirSync(join(cloud.dir, 'blobs', 'sha256')).length;
  const before = blobs();
  const bad = await butter(['image', 'add', 'web', '--url', `${filesUrl}/disk.img`, '--sha256', '0'.repeat(64)]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: sha256 mismatch/m);
  assert.equal(blobs(), before);
  const okRun = await butter(['image', 'add', 'web', '--url', `${filesUrl}/disk.img`, '--sha256', diskSha, '--json']);
  assert.equal(okRun.code, 0, okRun.stderr);
  assert.equal(JSON.parse(okRun.stdout).sha256, diskSha);
  const missing = await butter(['image', 'add', 'gone', '--url', `${filesUrl}/nope.img`]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /url: .* answered 404/);
});

test('image add --url --remote: the control plane imports it; a wrong digest fails with the reason (exit 1)', async () => {
  const okRun = await butter(['image', 'add', 'far', '--url', `${filesUrl}/disk.img`, '--sha256', diskSha, '--remote', '--json']);
  assert.equal(okRun.code, 0, okRun.stderr);
  const img = JSON.parse(okRun.stdout) as { status: string; sha256: string };
  assert.deepEqual([img.status, img.sha256], ['ready', diskSha]);
  const bad = await butter(['image', 'add', 'far-bad', '--url', `${filesUrl}/disk.img`, '--sha256', '0'.repeat(64), '--remote']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /import failed: sha256 mismatch/);
  const noSum = await butter(['image', 'add', 'far-nosum', '--url', `${filesUrl}/disk.img`, '--remote']);
  assert.equal(noSum.code, 2);
  assert.match(noSum.stderr, /sha256: --remote needs/);
});

test('errors are one line naming the field; usage errors exit 2, API refusals 1', async () => {
  const cases: [string[], number, RegExp][] = [
    [['vm', 'create', 'UPPER', '--image', 'web'], 1, /name: must be a DNS label/],
    [['vm', 'create', 'x', '--image', 'web', '--disk', 'big'], 1, /disk: must be a size with a unit/],
    [['vm', 'create', 'x', '--image', 'web', '--memory', '100G'], 1, /node-1: memory .* free < 100G/],
    [['vm', 'create', 'x', '--image', 'web', '--user-data', '/no/such/file'], 2, /user-data: cannot read/],
    [['vm', 'create', 'x', '--image', 'web', '--metadata-tokens', 'sometimes'], 2, /metadata-tokens: must be optional or required/],
    [['vm', 'resize', 'x'], 2, /--cpus/],
    [['image', 'add', 'y', '--file', '/etc/hostname', '--sha256', 'XYZ'], 2, /sha256: must be 64/],
    [['vm', 'show', 'ghost'], 1, /vm ghost not found/],
    [['image', 'rm', 'ghost'], 1, /image ghost not found/],
  ];
  // node-1 must be ready for the memory refusal to name its free memory, however slow the runs.
  await heartbeat(node1, 'node-1', 16);
  const stop = keepReady(node1, 'node-1', 16);
  try {
    for (const [args, code, re] of cases) {
      const r = await butter(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  } finally {
    stop();
  }
  const list = await butter(['vm', 'list', '--json']);
  assert.deepEqual(JSON.parse(list.stdout), []);
});

test('an error of several lines is printed whole: every line, the first after `error:` (exit 1)', async () => {
  // A real one: the services API names every problem of a blueprint, one a line.
  const real = await cloud.admin.call('createService', { body: { network: 'default', name: 'odd', blueprint: 'placement: { availability_zones: 1 }\ninstance: { memory: 256M, cpus: 1 }\nimage: { name: web }\ncolour: blue\nflavour: red\n' } }).then(
    () => assert.fail('the blueprint was taken'),
    (e: ButterError) => e,
  );
  const lines = real.message.split('\n');
  assert.equal(lines.length, 2, real.message);
  // Answered to the CLI by a stand-in for the control plane, as a request it sends would be.
  const stub = createServer((_req, res) => res.writeHead(real.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: real.code, message: real.message, field: real.field } })));
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  try {
    const r = await butter(['vm', 'show', 'x'], { BUTTER_URL: `http://127.0.0.1:${(stub.address() as { port: number }).port}` });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `error: ${lines[0]}\n${lines[1]}\n`);
  } finally {
    stub.close();
  }
});

test('create, list and show speak JSON and tables; the token comes from env or login', async (t) => {
  await heartbeat(node1, 'node-1', 16); // it reported in before(); the tests since may have outlasted the liveness timeout
  t.after(keepReady(node1, 'node-1', 16)); // and this test's own runs may outlast it too
  const ud = join(work, 'ud.sh');
  writeFileSync(ud, '#!/bin/sh\necho hi\n');
  const created = await butter(['vm', 'create', 'app', '--image', 'web', '--memory', '256M', '--disk', '1G', '--user-data', ud, '--json']);
  assert.equal(created.code, 0, created.stderr);
  assert.equal(JSON.parse(created.stdout).state, 'pending');
  const table = await butter(['vm', 'list']);
  assert.match(table.stdout, /^NAME\s+STATE\s+NODE/m);
  assert.match(table.stdout, /^app\s+pending\s+node-1/m);
  assert.equal((await butter(['vm', 'user-data', 'app'])).stdout, '#!/bin/sh\necho hi\n');
  assert.match((await butter(['vm', 'show', 'app'])).stdout, /^metadata tokens:\s+optional$/m);
  const strict = await butter(['vm', 'create', 'strict', '--image', 'web', '--memory', '64M', '--disk', '1G', '--metadata-tokens', 'required', '--json']);
  assert.equal(JSON.parse(strict.stdout).metadataTokens, 'required', strict.stderr);
  assert.match((await butter(['vm', 'show', 'strict'])).stdout, /^metadata tokens:\s+required$/m);
  assert.match((await butter(['vm', 'show', 'app'])).stdout, /^restart:\s+on-failure$/m);
  const never = await butter(['vm', 'create', 'fragile', '--image', 'web', '--memory', '64M', '--disk', '1G', '--restart', 'never', '--json']);
  assert.equal(JSON.parse(never.stdout).restart, 'never', never.stderr);
  const bad = await butter(['vm', 'create', 'bad', '--image', 'web', '--restart', 'sometimes']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /restart: must be always, on-failure, never/);
  const noAuth = await butter(['vm', 'list'], { BUTTER_TOKEN: '' , BUTTER_URL: ''});
  assert.equal(noAuth.code, 2);
  assert.match(noAuth.stderr, /not logged in/);
  const login = await butter(['login', cloud.url, '--token', cloud.cp.adminToken!], { BUTTER_TOKEN: '', BUTTER_URL: '' });
  assert.equal(login.code, 0, login.stderr);
  const afterLogin = await butter(['vm', 'ip', 'app'], { BUTTER_TOKEN: '', BUTTER_URL: '' });
  assert.equal(afterLogin.stdout.trim(), '10.200.0.2');
});

test('roles: token create --role operator; a viewer reading logs or user-data gets one line and exit 1', async () => {
  const made = await butter(['token', 'create', '--role', 'operator', '--json']);
  assert.equal(made.code, 0, made.stderr);
  const operator = JSON.parse(made.stdout) as { token: { role: string }; secret: string };
  assert.equal(operator.token.role, 'operator');
  const bad = await butter(['token', 'create', '--role', 'root']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: role: must be admin, operator, viewer or metrics, got "root"$/m);
  // Prometheus' token: made by the CLI, refused everything but /metrics (and whoami).
  const scraper = await butter(['token', 'create', '--role', 'metrics']);
  assert.equal(scraper.code, 0, scraper.stderr);
  const asScraper = await butter(['vm', 'list'], { BUTTER_TOKEN: scraper.stdout.trim() });
  assert.equal(asScraper.code, 1);
  assert.equal(asScraper.stderr, 'error: a metrics token may not call this route: it needs a viewer, operator or admin token\n');
  const { secret: viewer } = await cloud.admin.call('createToken', { body: { role: 'viewer' } });
  for (const args of [['vm', 'logs', 'app'], ['vm', 'user-data', 'app']]) {
    const r = await butter(args, { BUTTER_TOKEN: viewer });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'error: a viewer token may not call this route: it needs an operator or admin token\n');
  }
  assert.equal((await butter(['vm', 'list'], { BUTTER_TOKEN: viewer })).code, 0);
  const asOperator = await butter(['vm', 'user-data', 'app'], { BUTTER_TOKEN: operator.secret });
  assert.equal(asOperator.code, 0, asOperator.stderr);
  assert.equal(asOperator.stdout, '#!/bin/sh\necho hi\n');
  const tokens = await butter(['token', 'list'], { BUTTER_TOKEN: operator.secret });
  assert.equal(tokens.code, 1);
  assert.match(tokens.stderr, /^error: an operator token may not call this route: it needs an admin token$/m);
});

// Last: these take a while, and the fake node above sends no heartbeats meanwhile.
test('VPN peers and the mesh flags: bad input exits non-zero naming the field', async () => {
  const cases: [string[], number, RegExp][] = [
    [['network', 'join', 'default', '--peer', 'laptop', '--public-key', 'nope'], 2, /public-key: must be a WireGuard public key/],
    [['network', 'join', 'default', '--peer', 'laptop', '--endpoint', 'no-port'], 2, /endpoint: must be host:port/],
    [['network', 'join', 'default', '--peer', 'Laptop_1'], 1, /name: must be a DNS label/],
    [['network', 'join', 'ghost', '--peer', 'laptop'], 1, /network ghost not found/],
    [['network', 'revoke', 'default', 'ghost'], 1, /network default has no peer ghost/],
    // The mesh flags are checked before an agent starts anything.
    [['agent', '--state-dir', join(work, 'agent'), '--wg-port', '0'], 2, /wg-port: must be a port number/],
    [['agent', '--state-dir', join(work, 'agent'), '--wg-interface', 'far-too-long-for-linux'], 2, /wg-interface: must be 1-15/],
    [['agent', '--state-dir', join(work, 'agent'), '--wg-endpoint', 'no-port'], 2, /wg-endpoint: must be host:port/],
  ];
  for (const [args, code, re] of cases) {
    const r = await butter(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
  assert.deepEqual(JSON.parse((await butter(['network', 'peers', 'default', '--json'])).stdout), []);
});

test('network join makes the key pair here, prints a wg-quick file and a QR code; the server keeps only the public key', async () => {
  // node-1 joins the mesh with an endpoint a laptop can reach: it becomes the VPN gateway.
  await node1.call('nodeReport', {
    params: { name: 'node-1' },
    body: { capacity: { cpus: 4, memoryBytes: 16 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [], mesh: { publicKey: 'S343edvTdLPDUssjfYcnSBZcot1qvWePgii2qp0dEU8=', listenPort: 51820, endpoint: '192.0.2.1:51820' } },
  });
  const r = await butter(['network', 'join', 'default', '--peer', 'laptop', '--qr']);
  assert.equal(r.code, 0, r.stderr);
  const priv = /^PrivateKey = (\S+)$/m.exec(r.stdout)?.[1] ?? '';
  assert.match(r.stdout, /^Endpoint = 192\.0\.2\.1:51820$/m);
  assert.match(r.stdout, /^PublicKey = S343edvTdLPDUssjfYcnSBZcot1qvWePgii2qp0dEU8=$/m);
  assert.match(r.stdout, /^AllowedIPs = 10\.200\.0\.0\/16$/m);
  assert.match(r.stdout, /[▀▄█]/, 'a QR code in block characters');
  const peers = JSON.parse((await butter(['network', 'peers', 'default', '--json'])).stdout) as { name: string; publicKey: string }[];
  assert.deepEqual(peers.map((p) => [p.name, p.publicKey]), [['laptop', publicKeyOf(priv)]]);
  assert.ok(!JSON.stringify(cloud.cp.services.store.db.prepare('SELECT * FROM vpn_peers').all()).includes(priv), 'the private key is nowhere on the server');

  // With the user's own key: a placeholder, written to a 0600 file, no QR without a terminal.
  const file = join(work, 'phone.conf');
  const own = await butter(['network', 'join', 'default', '--peer', 'phone', '--public-key', 'XBTipIAq4xgA/0Nh3/epgdL7QY3EFby0c43DJtqKaQE=', '-o', file]);
  assert.equal(own.code, 0, own.stderr);
  assert.equal(own.stdout, '');
  assert.match(readFileSync(file, 'utf8'), /^PrivateKey = <your private key>$/m);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  for (const peer of ['laptop', 'phone']) assert.equal((await butter(['network', 'revoke', 'default', peer])).code, 0);
});

test("network join through a gateway beside the control plane: the endpoint is its default-route address, and stderr says so", async () => {
  // node-1 reports from loopback (as under `butter up`), no endpoint, its address on the default route.
  await node1.call('nodeReport', {
    params: { name: 'node-1' },
    body: { capacity: { cpus: 4, memoryBytes: 16 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [], mesh: { publicKey: 'S343edvTdLPDUssjfYcnSBZcot1qvWePgii2qp0dEU8=', listenPort: 51820, defaultAddress: '192.0.2.10' } },
  });
  const r = await butter(['network', 'join', 'default', '--peer', 'laptop', '--no-qr']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Endpoint = 192\.0\.2\.10:51820$/m);
  assert.equal(r.stderr, "endpoint 192.0.2.10:51820: node node-1's address on its default route; use --endpoint to choose another\n");
  // Chosen by the user: nothing to say.
  const own = await butter(['network', 'join', 'default', '--peer', 'phone', '--no-qr', '--endpoint', 'vpn.example.net:51820']);
  assert.equal(own.code, 0, own.stderr);
  assert.match(own.stdout, /^Endpoint = vpn\.example\.net:51820$/m);
  assert.equal(own.stderr, '');
  for (const peer of ['laptop', 'phone']) assert.equal((await butter(['network', 'revoke', 'default', peer])).code, 0);
});

test('server --san: a name that is not a DNS name or address is refused (exit 2, naming --san) before anything is written', async () => {
  const dataDir = join(work, 'san-server');
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(BUTTER, ['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--san', 'ok.example', '--san', 'bad_name.example'], { env: { ...process.env, XDG_CONFIG_HOME: join(work, 'cfg') } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    // A server that started anyway would run until stopped.
    const stop = setTimeout(() => child.kill('SIGTERM'), 20_000);
    child.on('close', (code) => {
      clearTimeout(stop);
      resolve({ code, stderr });
    });
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: san: --san "bad_name\.example" is not a DNS name or an IP address\n$/);
  assert.equal(existsSync(dataDir), false, 'no data dir, no CA');
});

test('vm create --idempotency-key: run again, it prints the same VM; vm rm on a lost node says so, --force forgets it; node remove --force', async () => {
  await fakeNode(cloud, 'node-k', 16);
  const args = ['vm', 'create', 'keyed', '--image', 'web', '--memory', '64M', '--disk', '1G', '--node', 'node-k', '--idempotency-key', 'run-7', '--json'];
  const first = await butter(args);
  assert.equal(first.code, 0, first.stderr);
  const again = await butter(args);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).id, JSON.parse(first.stdout).id);
  const other = await butter(['vm', 'create', 'keyed2', '--image', 'web', '--memory', '64M', '--disk', '1G', '--idempotency-key', 'run-7']);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /Idempotency-Key/);

  cloud.cp.services.nodes.sweep(new Date(Date.now() + 60_000)); // node-k (and every node) is lost
  const plain = await butter(['vm', 'rm', 'keyed']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /node node-k is not reachable: .*butter vm rm --force keyed/);
  assert.equal(plain.stdout, 'vm keyed is being deleted\n');
  const forced = await butter(['vm', 'rm', 'keyed', '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, 'vm keyed deleted (forced)\n');
  assert.equal((await butter(['vm', 'show', 'keyed'])).code, 1);
  const removed = await butter(['node', 'remove', 'node-k', '--force']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stdout, 'node node-k removed (forced)\n');
});

test('vm logs: past the control plane\'s cap the oldest output is dropped, and stderr says how much', async () => {
  const blob = await cloud.admin.uploadBlob((await import('node:stream')).Readable.from([Buffer.from('chatty disk'.repeat(100))]));
  await cloud.admin.call('createImage', { body: { name: 'chatty-img', kind: 'disk', disk: blob.sha256 } });
  // A node of its own: an earlier test leaves every node lost.
  const node = await fakeNode(cloud, 'node-chatty', 16);
  const vm = await cloud.admin.call('createVm', { body: { name: 'chatty', image: 'chatty-img', memory: '128M', node: 'node-chatty' } });
  // 1.4 MiB of numbered lines, past the default 1 MiB (and its quarter of slack).
  const lines = Array.from({ length: 120_000 }, (_, i) => `${String(i).padStart(11, '0')}\n`).join('');
  const bytes = Buffer.from(lines);
  for (let offset = 0; offset < bytes.length; offset += 700_000) {
    await node.call('nodeConsole', { params: { name: 'node-chatty', id: vm.id }, body: { offset, base64: bytes.subarray(offset, offset + 700_000).toString('base64'), stream: '0123456789abcdef' } });
  }
  const r = await butter(['vm', 'logs', 'chatty']);
  assert.equal(r.code, 0, r.stderr);
  const m = /\[butter: (\d+) earlier bytes of console output were dropped\]/.exec(r.stderr);
  assert.ok(m, r.stderr);
  const dropped = Number(m[1]);
  assert.ok(dropped > 0 && dropped <= bytes.length - 1024 * 1024, `dropped ${dropped}`);
  assert.equal(r.stdout, lines.slice(dropped), 'the newest output, from where the dropped part ends');
});

test('vm create --data-disk (repeatable) makes data disks; vm show lists them, in text and --json', async () => {
  const r = await butter(['vm', 'create', 'store', '--image', 'web', '--memory', '64M', '--disk', '1G', '--data-disk', '16M', '--data-disk', '2G', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const want = [
    { index: 1, sizeBytes: 16 * 1024 ** 2, device: 'vdb' },
    { index: 2, sizeBytes: 2 * 1024 ** 3, device: 'vdc' },
  ];
  assert.deepEqual(JSON.parse(r.stdout).disks, want);
  assert.deepEqual(JSON.parse((await butter(['vm', 'show', 'store', '--json'])).stdout).disks, want);
  assert.deepEqual(JSON.parse((await butter(['vm', 'list', '--json'])).stdout).find((v: { name: string }) => v.name === 'store').disks, want);
  const shown = (await butter(['vm', 'show', 'store'])).stdout;
  assert.match(shown, /^disk:\s+1G \(vda\)$/m);
  assert.match(shown, /^data disk 1:\s+16M \(vdb\)$/m);
  assert.match(shown, /^data disk 2:\s+2G \(vdc\)$/m);
  const bad = await butter(['vm', 'create', 'nope', '--image', 'web', '--data-disk', '1G', '--data-disk', 'big']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: disks\[1\]\.size: must be a size with a unit/m);
  assert.equal((await butter(['vm', 'show', 'nope'])).code, 1, 'nothing made');
});
