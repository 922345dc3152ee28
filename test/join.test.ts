// Secure join over HTTPS: the CA is pinned by hash, a single-use join token is traded for the
// node's own credential; expired, reused and wrong tokens and a wrong CA hash are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { ensureServerTls } from '../src/server/tls.ts';
import { credentialPath, joinCluster, loadCredential } from '../src/daemon/join.ts';
import { ButterError, Client } from '../src/sdk/node-client.ts';
import { runButter } from './helpers.ts';

let dir: string;
let cp: ControlPlane;
let url: string;
let caHash: string;
let ca: string;
let admin: Client;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-join-'));
  const tls = await ensureServerTls(join(dir, 'cp'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  caHash = tls.caHash;
  ca = tls.ca;
  cp = createControlPlane({ dataDir: join(dir, 'cp'), https: tls });
  await cp.listen('127.0.0.1', 0);
  url = `https://127.0.0.1:${(cp.http.server.address() as { port: number }).port}`;
  admin = new Client({ url, token: cp.adminToken!, ca });
});
after(async () => {
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

const agentDir = (n: string) => mkdtempSync(join(dir, `${n}-`));

async function refusedJoin(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, re);
    return true;
  });
}

test('join: pin the CA, trade the token, keep the credential; the token is spent', async () => {
  const created = await admin.call('createJoinToken', { body: { ttl: '1h', group: 'rack1', zone: 'east' } });
  assert.equal(created.caHash, caHash);
  const stateDir = agentDir('n1');
  const cred = await joinCluster({ url, joinToken: created.token, caHash, name: 'n1', stateDir });
  assert.equal(cred.node, 'n1');
  assert.equal(statSync(credentialPath(stateDir)).mode & 0o777, 0o600);
  assert.deepEqual(loadCredential(stateDir), cred);
  const node = await admin.call('getNode', { params: { name: 'n1' } });
  assert.deepEqual([node.group, node.zone], ['rack1', 'east']);
  // The node's own token works over verified TLS and reaches only its own endpoints.
  const asNode = new Client({ url, token: cred.token, ca: cred.ca! });
  assert.deepEqual((await asNode.call('whoami', {})).node, 'n1');
  await assert.rejects(asNode.call('listVms', {}), (e: ButterError) => e.status === 403);
  // Reuse is refused, naming the node that used it.
  await refusedJoin(joinCluster({ url, joinToken: created.token, caHash, name: 'n2', stateDir: agentDir('n2') }), /already used \(by node n1\)/);
});

test('a wrong CA hash is refused before anything is sent', async () => {
  const { token } = await admin.call('createJoinToken', { body: {} });
  await refusedJoin(joinCluster({ url, joinToken: token, caHash: `sha256:${'0'.repeat(64)}`, name: 'n3', stateDir: agentDir('n3') }), /CA hash does not match.*Do not proceed/);
  await refusedJoin(joinCluster({ url: url.replace('https', 'http'), joinToken: token, caHash, name: 'n3', stateDir: agentDir('n3') }), /must be https/);
  // The token was not spent by the refused attempts.
  assert.equal((await joinCluster({ url, joinToken: token, caHash, name: 'n3', stateDir: agentDir('n3') })).node, 'n3');
});

test('expired and unknown join tokens are refused with a clear message; nothing is made', async () => {
  const { token } = await admin.call('createJoinToken', { body: { ttl: '1s' } });
  await new Promise((r) => setTimeout(r, 1100));
  const nodesBefore = (await admin.call('listNodes', {})).items.length;
  await refusedJoin(joinCluster({ url, joinToken: token, caHash, name: 'late', stateDir: agentDir('late') }), /expired at/);
  await refusedJoin(joinCluster({ url, joinToken: `bj_${'a'.repeat(12)}_${'b'.repeat(32)}`, caHash, name: 'x', stateDir: agentDir('x') }), /unknown join token/);
  await refusedJoin(joinCluster({ url, joinToken: cp.adminToken!, caHash, name: 'x', stateDir: agentDir('x') }), /needs a join token/);
  assert.equal((await admin.call('listNodes', {})).items.length, nodesBefore);
  await assert.rejects(admin.call('createJoinToken', { body: { ttl: '30d' } }), (e: ButterError) => e.status === 400 && e.field === 'ttl');
  await assert.rejects(admin.call('createJoinToken', { body: { ttl: 'soon' } }), (e: ButterError) => e.status === 400 && e.field === 'ttl');
});

// Asynchronous: the control plane runs in this very process and must keep answering.
const butter = runButter;

test('the CLI pins the CA the same way at login', async () => {
  const env = { ...process.env, XDG_CONFIG_HOME: join(dir, 'cfg'), BUTTER_URL: '', BUTTER_TOKEN: '' };
  const bad = await butter(['login', url, '--token', cp.adminToken!, '--ca-hash', `sha256:${'1'.repeat(64)}`], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /CA hash does not match/);
  const noHash = await butter(['login', url, '--token', cp.adminToken!], env);
  assert.equal(noHash.code, 2);
  const ok = await butter(['login', url, '--token', cp.adminToken!, '--ca-hash', caHash], env);
  assert.equal(ok.code, 0, ok.stderr);
  const list = await butter(['node', 'list', '--json'], env);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(JSON.parse(list.stdout).some((n: { name: string }) => n.name === 'n1'));
});
