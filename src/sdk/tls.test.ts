import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureServerTls, signCertificate, type ServerTls } from '../server/tls.ts';
import { fetchPinnedCa, trustingFetch } from './tls.ts';

const dirs: string[] = [];
const servers: Http2SecureServer[] = [];
const connections: TLSSocket[] = [];
let ours: ServerTls;
let oursDir: string;
let url: string;

/** A server like the control plane: HTTP/2 over TLS, HTTP/1.1 too. */
async function serve(key: string, cert: string): Promise<string> {
  const s = createSecureServer({ key, cert, allowHTTP1: true }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url }));
  });
  servers.push(s);
  s.on('secureConnection', (c: TLSSocket) => connections.push(c));
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

async function tls(): Promise<{ dir: string; t: ServerTls }> {
  const dir = mkdtempSync(join(tmpdir(), 'butter-sdk-tls-'));
  dirs.push(dir);
  return { dir, t: await ensureServerTls(dir, { hostnames: [], ips: [] }) };
}

const newKeyPem = (): string => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const soon = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000) };

before(async () => {
  ({ dir: oursDir, t: ours } = await tls());
  url = await serve(ours.key, ours.cert);
});
after(() => {
  for (const s of servers) s.close();
  for (const c of connections) c.destroy();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

test('the right hash yields the CA, and trustingFetch then does verified HTTPS', async () => {
  assert.equal(await fetchPinnedCa(url, ours.caHash), ours.ca);
  assert.equal(await fetchPinnedCa(url.replace('127.0.0.1', 'localhost'), ours.caHash.toUpperCase().replace('SHA256', 'sha256')), ours.ca);
  const f = trustingFetch(ours.ca);
  try {
    const res = await f(`${url}/v1/hello?x=1`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { path: '/v1/hello?x=1' });
    const res2 = await f(new URL('/v1/other', url), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.deepEqual(await res2.json(), { path: '/v1/other' });
  } finally {
    await f.close();
  }
});

test('a wrong hash is refused and the message shows what was offered', async () => {
  const wrong = `sha256:${'ab'.repeat(32)}`;
  await assert.rejects(fetchPinnedCa(url, wrong), (e: Error) => {
    assert.match(e.message, /CA hash does not match/);
    assert.ok(e.message.includes(wrong), e.message);
    assert.ok(e.message.includes(`offered ${ours.caHash}`), e.message);
    assert.match(e.message, /Do not proceed/);
    return true;
  });
});

test('a leaf signed by another key is refused even when the server sends our CA along', async () => {
  // The attacker copies everything public about our CA: its name, its key id, the certificate itself.
  const evilCa = createPrivateKey(newKeyPem());
  const leafKey = newKeyPem();
  const forged = signCertificate(evilCa, {
    issuer: 'Butter CA',
    subject: 'localhost',
    publicKey: createPrivateKey(leafKey),
    dns: ['localhost'],
    ips: ['127.0.0.1'],
    authorityKey: new X509Certificate(ours.ca).publicKey,
    ...soon,
  });
  const evilUrl = await serve(leafKey, forged + ours.ca);
  await assert.rejects(fetchPinnedCa(evilUrl, ours.caHash), (e: Error) => {
    // Not "does not match": the hash did match a sent certificate; only the signature check catches it.
    assert.match(e.message, /is not signed by the pinned CA/);
    assert.match(e.message, /Do not proceed/);
    return true;
  });
});

test('a server whose certificate does not name the host is refused by both steps', async () => {
  const leafKey = newKeyPem();
  const caKey = createPrivateKey(readFileSync(join(oursDir, 'tls', 'ca.key'), 'utf8'));
  const cert = signCertificate(caKey, { issuer: 'Butter CA', subject: 'elsewhere', publicKey: createPrivateKey(leafKey), dns: ['elsewhere.example'], authorityKey: caKey, ...soon });
  const otherUrl = await serve(leafKey, cert + ours.ca);
  await assert.rejects(fetchPinnedCa(otherUrl, ours.caHash), /does not cover 127\.0\.0\.1/);
  const f = trustingFetch(ours.ca);
  try {
    await assert.rejects(f(`${otherUrl}/`), (e: Error & { cause?: { code?: string } }) => {
      assert.equal(e.cause?.code, 'ERR_TLS_CERT_ALTNAME_INVALID', String(e.cause));
      return true;
    });
  } finally {
    await f.close();
  }
});

test('trustingFetch refuses a server with another CA', async () => {
  const { t: theirs } = await tls();
  const theirUrl = await serve(theirs.key, theirs.cert);
  const f = trustingFetch(ours.ca);
  try {
    await assert.rejects(f(`${theirUrl}/`), (e: Error & { cause?: { code?: string } }) => {
      assert.match(String(e.cause?.code), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/, String(e.cause));
      return true;
    });
  } finally {
    await f.close();
  }
  // Their own pin works against their server, of course.
  assert.equal(await fetchPinnedCa(theirUrl, theirs.caHash), theirs.ca);
  await assert.rejects(fetchPinnedCa(theirUrl, ours.caHash), /CA hash does not match/);
});

test('http:// and malformed hashes are refused', async () => {
  const plain = url.replace('https:', 'http:');
  await assert.rejects(fetchPinnedCa(plain, ours.caHash), /is not https:\/\/ .*use https:\/\/127\.0\.0\.1/);
  await assert.rejects(fetchPinnedCa(url, 'abc'), /bad CA hash "abc": expected sha256:<64 hex digits>/);
  await assert.rejects(fetchPinnedCa(url, `sha1:${'a'.repeat(40)}`), /bad CA hash/);
  const f = trustingFetch(ours.ca);
  try {
    await assert.rejects(f(`${plain}/`), /is not https:\/\//);
  } finally {
    await f.close();
  }
});
