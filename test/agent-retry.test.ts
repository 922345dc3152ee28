// `butter agent` as a process never gives up on its control plane: started while nothing
// answers on the control plane's port, it keeps trying (capped exponential backoff) until the
// control plane comes up, then joins, registers and reports; a later outage does not touch its
// VMs. It logs one line per change of the connection's state, not one per attempt: the test
// counts the attempts on the port (a TCP listener that hangs up on every connection stands in
// for the dead control plane) and the log lines.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Http2Session } from 'node:http2';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { ensureServerTls } from '../src/server/tls.ts';
import { Client } from '../src/sdk/node-client.ts';
import { uploadImage } from './helpers.ts';

const BUTTER = fileURLToPath(new URL('../bin/butter', import.meta.url));
let dir: string;
let port: number;
let cp: ControlPlane | undefined;
const sessions = new Set<Http2Session>();
let agent: ChildProcess | undefined;
let stderr = '';
let exited: number | null | undefined;

async function startCp(listenPort: number): Promise<{ admin: Client; caHash: string }> {
  const tls = await ensureServerTls(join(dir, 'cp'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  cp = createControlPlane({ dataDir: join(dir, 'cp'), https: tls });
  await cp.listen('127.0.0.1', listenPort);
  cp.http.server.on('session', (s: Http2Session) => sessions.add(s.once('close', () => sessions.delete(s))));
  port = (cp.http.server.address() as { port: number }).port;
  const token = readFileSync(cp.adminTokenPath, 'utf8').trim();
  return { admin: new Client({ url: `https://127.0.0.1:${port}`, token, ca: tls.ca }), caHash: tls.caHash };
}

/** The control plane dies (as if killed): its connections are cut, then its port closed. */
async function killCp(): Promise<void> {
  for (const s of sessions) s.destroy();
  await cp!.close();
  cp = undefined;
}

/** The dead control plane: the port accepts and hangs up at once, counting the agent's attempts. */
async function deadPort(): Promise<{ attempts: () => number; close: () => Promise<void> }> {
  let n = 0;
  const s: Server = createServer((sock) => {
    n++;
    sock.destroy();
  });
  await new Promise<void>((res, rej) => s.once('error', rej).listen(port, '127.0.0.1', () => res()));
  return { attempts: () => n, close: () => new Promise((res) => s.close(() => res())) };
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    if (exited !== undefined) assert.fail(`the agent exited (${exited}) while waiting for ${what}:\n${stderr}`);
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lines = (re: RegExp) => stderr.split('\n').filter((l) => re.test(l));

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'butter-agent-retry-'));
});
after(async () => {
  agent?.kill('SIGKILL');
  if (cp) await killCp();
  rmSync(dir, { recursive: true, force: true });
});

test('an agent started before its control plane waits for it, joins, and logs one line per state change', async () => {
  // A join token from the control plane, which then goes away (its port stays ours).
  const first = await startCp(0);
  let admin = first.admin;
  const caHash = first.caHash;
  const { token } = await admin.call('createJoinToken', { body: { ttl: '1h' } });
  await uploadImage(admin, 'img');
  await killCp();
  let dead = await deadPort();

  agent = spawn(BUTTER, ['agent', '--join', `https://127.0.0.1:${port}`, '--token', token, '--ca-hash', caHash, '--name', 'n1', '--driver', 'sim', '--no-mesh', '--state-dir', join(dir, 'agent')], {
    env: { ...process.env, BUTTER_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  agent.stderr!.on('data', (d: Buffer) => (stderr += d));
  agent.on('exit', (code) => (exited = code));

  // Several attempts while nothing answers: the agent is still there, and said so once.
  await until('3 attempts on the dead port', () => (dead.attempts() >= 3 ? true : undefined));
  assert.equal(lines(/control plane unreachable/).length, 1, stderr);

  await dead.close();
  ({ admin } = await startCp(port));
  await until('node n1 ready', async () => ((await admin.call('getNode', { params: { name: 'n1' } }).catch(() => undefined))?.state === 'ready' ? true : undefined));
  assert.equal(lines(/control plane reachable/).length, 1, stderr);

  // A VM runs on it; the control plane goes away again for several attempts.
  await admin.call('createVm', { body: { name: 'v1', image: 'img', memory: '128M' } });
  await until('v1 running', async () => ((await admin.call('getVm', { params: { name: 'v1' } })).state === 'running' ? true : undefined));
  await killCp();
  dead = await deadPort();
  await until('3 more attempts on the dead port', () => (dead.attempts() >= 3 ? true : undefined));
  assert.equal(lines(/control plane unreachable/).length, 2, stderr);
  // The VM is still running on the node while nobody answers.
  const simVms = JSON.parse(readFileSync(join(dir, 'agent', 'sim-vms.json'), 'utf8')) as Record<string, { running: boolean }>;
  assert.deepEqual(Object.values(simVms).map((v) => v.running), [true]);

  await dead.close();
  ({ admin } = await startCp(port));
  await until('the second reconnection logged', () => (lines(/control plane reachable/).length === 2 ? true : undefined));
  // Its next report says the VM still runs.
  await until('n1 ready and v1 running', async () => ((await admin.call('getNode', { params: { name: 'n1' } })).state === 'ready' && (await admin.call('getVm', { params: { name: 'v1' } })).state === 'running' ? true : undefined));
  // Nothing was stopped or destroyed, and each state change was one line.
  assert.deepEqual(lines(/"msg":"(stop|destroy) /), []);
  assert.equal(lines(/control plane unreachable/).length, 2, stderr);
  assert.equal(lines(/control plane reachable/).length, 2, stderr);
  for (const l of lines(/control plane|connected to/)) console.log(`# ${(JSON.parse(l) as { msg: string }).msg}`);
});
