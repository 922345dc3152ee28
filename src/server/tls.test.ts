import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caHashOf, ensureServerTls } from './tls.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'butter-tls-'));
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const DAY = 24 * 3600 * 1000;
const leafOf = (chainPem: string): X509Certificate => new X509Certificate(chainPem); // first cert of the chain

test('first start makes a CA and a server cert; keys are 0600; the chain ends with the CA', async () => {
  const dir = tempDir();
  const t = await ensureServerTls(dir, { hostnames: ['cp.example'], ips: ['10.0.0.5'] });
  for (const f of ['ca.key', 'server.key']) assert.equal(statSync(join(dir, 'tls', f)).mode & 0o777, 0o600, f);
  assert.equal(statSync(join(dir, 'tls')).mode & 0o777, 0o700);
  assert.equal(readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8'), t.ca);

  const ca = new X509Certificate(t.ca);
  assert.equal(ca.subject, 'CN=Butter CA');
  assert.ok(ca.ca);
  assert.ok(ca.verify(ca.publicKey), 'self-signed');
  assert.ok(new Date(ca.validTo).getTime() - Date.now() > 9 * 365 * DAY);

  const leaf = leafOf(t.cert);
  assert.ok(!leaf.ca);
  assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)); // checkIssued reads "this was issued by"
  assert.ok(t.cert.trimEnd().endsWith(t.ca.trimEnd()), 'cert is leaf + CA');
  for (const h of ['localhost', 'cp.example']) assert.ok(leaf.checkHost(h, { subject: 'never' }), h);
  for (const ip of ['127.0.0.1', '::1', '10.0.0.5']) assert.ok(leaf.checkIP(ip), ip);
  assert.ok(leaf.checkPrivateKey(createPrivateKey(t.key)));
  const days = (new Date(leaf.validTo).getTime() - Date.now()) / DAY;
  assert.ok(days > 360 && days <= 366, String(days));
});

test('caHash is sha256 of the CA public key (SPKI DER), kubeadm style', async () => {
  const t = await ensureServerTls(tempDir(), { hostnames: [], ips: [] });
  const spki = new X509Certificate(t.ca).publicKey.export({ type: 'spki', format: 'der' });
  assert.equal(t.caHash, `sha256:${createHash('sha256').update(spki).digest('hex')}`);
  assert.match(t.caHash, /^sha256:[0-9a-f]{64}$/);
  assert.equal(caHashOf(t.ca), t.caHash);
});

test('a second start reuses the CA and the server cert', async () => {
  const dir = tempDir();
  const a = await ensureServerTls(dir, { hostnames: ['cp.example'], ips: [] });
  const b = await ensureServerTls(dir, { hostnames: ['CP.example'], ips: [] }); // names compare case-insensitively
  assert.deepEqual(b, a);
});

test('a name not covered re-issues the server cert under the same CA', async () => {
  const dir = tempDir();
  const a = await ensureServerTls(dir, { hostnames: [], ips: [] });
  const b = await ensureServerTls(dir, { hostnames: ['new.example', '192.168.7.7'], ips: ['fd00::7'] });
  assert.equal(b.ca, a.ca);
  assert.equal(b.caHash, a.caHash);
  assert.notEqual(b.cert, a.cert);
  assert.notEqual(b.key, a.key);
  const leaf = leafOf(b.cert);
  assert.ok(leaf.checkHost('new.example', { subject: 'never' }));
  assert.ok(leaf.checkIP('192.168.7.7'), 'an address given as a hostname lands in an IP SAN');
  assert.ok(leaf.checkIP('fd00::7'));
  assert.ok(leaf.checkIP('127.0.0.1') && leaf.checkHost('localhost'), 'the loopback names stay');
  assert.ok(leaf.verify(new X509Certificate(a.ca).publicKey));
  assert.equal(statSync(join(dir, 'tls', 'server.key')).mode & 0o777, 0o600);
  // Asking for fewer names than covered does not re-issue.
  assert.deepEqual(await ensureServerTls(dir, { hostnames: ['new.example'], ips: [] }), b);
});

test('a server cert within 30 days of expiry is re-issued', async () => {
  const dir = tempDir();
  const a = await ensureServerTls(dir, { hostnames: [], ips: [] });
  const notAfter = new Date(leafOf(a.cert).validTo).getTime();
  const b = await ensureServerTls(dir, { hostnames: [], ips: [], now: new Date(notAfter - 40 * DAY) });
  assert.equal(b.cert, a.cert, '40 days left: kept');
  const c = await ensureServerTls(dir, { hostnames: [], ips: [], now: new Date(notAfter - 20 * DAY) });
  assert.notEqual(c.cert, a.cert, '20 days left: renewed');
  assert.equal(c.caHash, a.caHash);
  assert.ok(new Date(leafOf(c.cert).validTo).getTime() > notAfter + 300 * DAY);
});

test('a server cert that does not match its key is re-issued', async () => {
  const dir = tempDir();
  const a = await ensureServerTls(dir, { hostnames: [], ips: [] });
  const other = await ensureServerTls(tempDir(), { hostnames: [], ips: [] });
  writeFileSync(join(dir, 'tls', 'server.key'), other.key); // as after a crash between the two writes
  const b = await ensureServerTls(dir, { hostnames: [], ips: [] });
  assert.notEqual(b.cert, a.cert);
  assert.ok(leafOf(b.cert).checkPrivateKey(createPrivateKey(b.key)));
  assert.equal(b.caHash, a.caHash);
});

test('a lost ca.crt is rebuilt from ca.key with the same hash; a lost ca.key is an error, never a new CA', async () => {
  const dir = tempDir();
  const a = await ensureServerTls(dir, { hostnames: [], ips: [] });
  unlinkSync(join(dir, 'tls', 'ca.crt'));
  const b = await ensureServerTls(dir, { hostnames: [], ips: [] });
  assert.equal(b.caHash, a.caHash);
  assert.equal(b.key, a.key, 'the server cert still chains to the same key');

  unlinkSync(join(dir, 'tls', 'ca.key'));
  await assert.rejects(ensureServerTls(dir, { hostnames: [], ips: [] }), /ca\.key is missing/);
});

test('a bad IP is refused', async () => {
  await assert.rejects(ensureServerTls(tempDir(), { hostnames: [], ips: ['cp.example'] }), /not an IP address: cp.example/);
});

test('an internationalised name lands in the SAN as punycode, the form clients compare', async () => {
  const leaf = leafOf((await ensureServerTls(tempDir(), { hostnames: ['Bücher.example'], ips: [] })).cert);
  assert.deepEqual(leaf.subjectAltName?.split(', ').filter((s) => s.startsWith('DNS:')), ['DNS:localhost', 'DNS:xn--bcher-kva.example']);
  assert.ok(leaf.checkHost('xn--bcher-kva.example', { subject: 'never' }));
});

test('a name that is not a DNS name is refused before anything is written', async () => {
  const dir = tempDir();
  for (const bad of ['bad name', 'under_score.example', '-lead.example', 'a..b', `${'x'.repeat(64)}.example`, 'ex*mple.example', '%41.example']) {
    await assert.rejects(ensureServerTls(dir, { hostnames: [bad], ips: [] }), (e: Error) => e.message === `not a DNS name: ${JSON.stringify(bad)}`, bad);
  }
  assert.equal(existsSync(join(dir, 'tls')), false, 'no CA made');
});
