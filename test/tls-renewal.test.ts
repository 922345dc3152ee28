// The server certificate is renewed while the control plane runs: the real HTTPS (HTTP/2 +
// HTTP/1.1) server, its hourly check driven by an injected clock, new handshakes seeing the
// new certificate under the same CA while open connections keep theirs; the CA's end is
// warned about and shown by GET /v1/whoami.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { ensureServerTls } from '../src/server/tls.ts';
import { Client } from '../src/sdk/node-client.ts';
import { runButter } from './helpers.ts';

const DAY = 24 * 3600 * 1000;
const names = { hostnames: ['localhost'], ips: ['127.0.0.1'] };
const dirs: string[] = [];
const planes: ControlPlane[] = [];
const sockets: TLSSocket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const cp of planes) await cp.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The built CLI, run without blocking (the control plane answering it is in this process). */
const butter = runButter;

function logs(): { lines: { level: string; msg: string }[]; log: { info(m: string): void; warn(m: string): void } } {
  const lines: { level: string; msg: string }[] = [];
  return { lines, log: { info: (msg) => lines.push({ level: 'info', msg }), warn: (msg) => lines.push({ level: 'warn', msg }) } };
}

/** A verified TLS connection (the CA alone is trusted), left open; its peer's certificate. */
async function handshake(port: number, ca: string): Promise<{ socket: TLSSocket; cert: X509Certificate }> {
  const socket = connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'] });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  return { socket, cert: socket.getPeerX509Certificate()! };
}

/** One HTTP/1.1 request on an open connection; the status line. */
async function get(socket: TLSSocket, path: string): Promise<string> {
  const answer = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString().split('\r\n')[0]!)));
  socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
  return answer;
}

async function start(dir: string, now: () => Date, log: ReturnType<typeof logs>['log'], everyMs?: number): Promise<{ cp: ControlPlane; port: number; url: string; ca: string }> {
  const tls = await ensureServerTls(dir, { ...names, now: now() });
  const cp = createControlPlane({ dataDir: dir, https: tls, tlsRenewal: { dataDir: dir, names, log, clock: now, ...(everyMs ? { everyMs } : {}) } });
  planes.push(cp);
  await cp.listen('127.0.0.1', 0);
  const port = (cp.http.server.address() as { port: number }).port;
  return { cp, port, url: `https://127.0.0.1:${port}`, ca: tls.ca };
}

test('a running server renews its certificate before it expires: new handshakes get it, open connections go on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-renew-'));
  dirs.push(dir);
  // Made 340 days ago: 25 days left of 365 (renewal is due below 30), valid at the real time.
  let now = new Date(Date.now() - 340 * DAY);
  const { lines, log } = logs();
  const { port, url, ca, cp } = await start(dir, () => now, log, 50);
  const first = await handshake(port, ca);
  const client = new Client({ url, token: cp.adminToken!, ca });
  assert.equal((await client.call('whoami', {})).role, 'admin');

  // The clock reaches today: the next hourly check (every 50 ms here) renews.
  now = new Date();
  let second = await handshake(port, ca);
  for (let i = 0; i < 100 && second.cert.serialNumber === first.cert.serialNumber; i++) {
    await new Promise((r) => setTimeout(r, 50));
    second = await handshake(port, ca);
  }
  assert.notEqual(second.cert.serialNumber, first.cert.serialNumber, 'a new handshake sees a new certificate');
  const caCert = new X509Certificate(ca);
  assert.ok(second.cert.checkIssued(caCert) && second.cert.verify(caCert.publicKey), 'issued by the same CA');
  assert.ok(new Date(second.cert.validTo).getTime() > Date.now() + 360 * DAY, second.cert.validTo);
  assert.ok(new Date(first.cert.validTo).getTime() < Date.now() + 30 * DAY);
  assert.ok(second.cert.checkHost('localhost') && second.cert.checkIP('127.0.0.1'), 'the same names');
  // The connection opened before the renewal (on the old certificate) still works.
  assert.equal(await get(first.socket, '/healthz'), 'HTTP/1.1 200 OK');
  // The SDK's CA-pinned clients work: the one already connected, and a new one.
  const whoami = await client.call('whoami', {});
  assert.equal(whoami.tls?.certNotAfter, new Date(second.cert.validTo).toISOString());
  assert.equal((await new Client({ url, token: cp.adminToken!, ca }).call('whoami', {})).tls?.caNotAfter, new Date(caCert.validTo).toISOString());

  // On disk (for the next start): the new pair, the key private, no temporary file left.
  assert.equal(new X509Certificate(readFileSync(join(dir, 'tls/server.crt'))).serialNumber, second.cert.serialNumber);
  assert.equal(statSync(join(dir, 'tls/server.key')).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(join(dir, 'tls')).sort(), ['ca.crt', 'ca.key', 'server.crt', 'server.key']);
  const renewed = lines.filter((l) => /renewed/.test(l.msg));
  assert.equal(renewed.length, 1, JSON.stringify(lines));
  assert.match(renewed[0]!.msg, new RegExp(`valid until ${new Date(second.cert.validTo).toISOString()}`));
});

test('a CA near its end is warned about at start and on each check; the server certificate never outlives it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-renew-'));
  dirs.push(dir);
  // The CA was made 3,550 days ago: 100 days of its 3,650 left.
  await ensureServerTls(dir, { ...names, now: new Date(Date.now() - 3550 * DAY) });
  let now = new Date();
  const { lines, log } = logs();
  const { cp, url, ca } = await start(dir, () => now, log);
  const caEnd = new Date(new X509Certificate(ca).validTo).toISOString();
  const warnings = () => lines.filter((l) => l.level === 'warn' && l.msg.includes(`CA certificate expires at ${caEnd}`));
  assert.equal(warnings().length, 1, `at start: ${JSON.stringify(lines)}`);
  assert.match(warnings()[0]!.msg, /in 100 days/);

  const who = await new Client({ url, token: cp.adminToken!, ca }).call('whoami', {});
  assert.equal(who.tls?.caNotAfter, caEnd);
  assert.equal(who.tls?.certNotAfter, caEnd, 'capped at the CA');

  // The CLI shows both dates (its own `butter login`, pinning the CA, then `butter whoami`).
  const env = { ...process.env, XDG_CONFIG_HOME: join(dir, 'cfg'), BUTTER_URL: '', BUTTER_TOKEN: '' };
  const login = await butter(['login', url, '--token', cp.adminToken!, '--ca-hash', who.tls!.caHash], env);
  assert.equal(login.code, 0, login.stderr);
  const shown = await butter(['whoami'], env);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`^ca: +${who.tls!.caHash}, valid until ${caEnd} \\(in 100 days\\)`, 'm'));
  assert.match(shown.stdout, new RegExp(`^certificate: +valid until ${caEnd} \\(in 100 days\\)`, 'm'));
  // ... and `node show`, for the nodes that pinned it.
  await new Client({ url, token: cp.adminToken!, ca }).call('createNode', { body: { name: 'n1' } });
  const node = await butter(['node', 'show', 'n1'], env);
  assert.equal(node.code, 0, node.stderr);
  assert.match(node.stdout, new RegExp(`^ca: +the control plane's CA \\(pinned when it joined\\) is valid until ${caEnd} \\(in 100 days\\)`, 'm'));

  // Later checks warn again and do not re-issue a certificate that cannot last longer.
  now = new Date(Date.now() + 20 * DAY);
  assert.equal(await cp.tlsRenewal!.check(), false);
  assert.equal(warnings().length, 2);
  assert.match(warnings()[1]!.msg, /in 80 days/);
});
