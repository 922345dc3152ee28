/**
 * The control plane's TLS: a private CA made on first start and kept in DATA/tls, and a server
 * certificate it signs. Agents and the CLI pin the CA by the SHA-256 of its public key
 * (kubeadm's discovery hash), so the CA key is never replaced silently: losing it means every
 * machine has to join again.
 *
 * Certificates are encoded here with a few lines of DER over node:crypto (ECDSA P-256,
 * SHA-256). @peculiar/x509 would do it too, but v2 needs a global Reflect-metadata polyfill
 * and twenty packages; what we need is two fixed certificate shapes.
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP, isIPv4 } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { toDnsName } from '../core/dns-name.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';

export interface ServerTls {
  /** The server's private key (PKCS#8 PEM). */
  key: string;
  /** Server certificate PEM followed by the CA PEM: a client that pins can find the CA in the handshake. */
  cert: string;
  /** The CA certificate PEM. */
  ca: string;
  /** `sha256:<hex>` of the CA's SubjectPublicKeyInfo. */
  caHash: string;
  /** When the CA and the server certificate expire (ISO 8601). */
  caNotAfter: string;
  certNotAfter: string;
}

/** What the server certificate names (besides localhost and the loopback addresses). */
export interface TlsNames {
  /** DNS names (international ones become punycode) or addresses. */
  hostnames: string[];
  ips: string[];
}

export interface TlsOptions extends TlsNames {
  now?: Date;
}

const DAY = 24 * 3600 * 1000;
const CA_DAYS = 3650;
const SERVER_DAYS = 365;
/** Renew when less than this, or a third of the certificate's life, remains (whichever is less). */
const RENEW_DAYS = 30;
// Clocks on other machines may be a little behind ours; "not yet valid" there would fail a join.
const BACKDATE = 5 * 60 * 1000;
const CA_NAME = 'Butter CA';

/** kubeadm's discovery hash: `sha256:` + hex SHA-256 of the certificate's DER SubjectPublicKeyInfo. */
export function caHashOf(caPem: string): string {
  return `sha256:${createHash('sha256').update(spkiOf(new X509Certificate(caPem).publicKey)).digest('hex')}`;
}

export async function ensureServerTls(dataDir: string, opts: TlsOptions): Promise<ServerTls> {
  const now = opts.now ?? new Date();
  const want = wantedNames(opts); // bad names change nothing on disk
  const dir = join(dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const { caKey, caPem } = await ensureCa(dir, now);

  let key = await readOptional(join(dir, 'server.key'));
  let crt = await readOptional(join(dir, 'server.crt'));
  if (key === null || crt === null || !serverCertFits(key, crt, caPem, want, now)) {
    ({ key, cert: crt } = await issueServerCert(caKey, caPem, want, now));
    // Key first: a crash between the two renames leaves a pair that does not match, which
    // serverCertFits notices on the next start.
    writeFileAtomic(join(dir, 'server.key'), key, 0o600);
    // Certificates are public, but nothing but the server reads them here: owner-only like the rest.
    writeFileAtomic(join(dir, 'server.crt'), crt, 0o600);
  }
  return {
    key,
    cert: `${crt.trimEnd()}\n${caPem.trimEnd()}\n`,
    ca: caPem,
    caHash: caHashOf(caPem),
    caNotAfter: notAfterOf(caPem).toISOString(),
    certNotAfter: notAfterOf(crt).toISOString(),
  };
}

export function notAfterOf(pem: string): Date {
  return new Date(new X509Certificate(pem).validTo);
}

async function ensureCa(dir: string, now: Date): Promise<{ caKey: KeyObject; caPem: string }> {
  const keyPath = join(dir, 'ca.key');
  const crtPath = join(dir, 'ca.crt');
  let keyPem = await readOptional(keyPath);
  let crtPem = await readOptional(crtPath);
  if (keyPem === null && crtPem !== null) {
    throw new Error(`${crtPath} exists but ${keyPath} is missing: restore the CA key (machines pinned this CA), or remove ${dir} to make a new CA and join every machine again`);
  }
  if (keyPem === null) {
    keyPem = await newKey();
    writeFileAtomic(keyPath, keyPem, 0o600);
  }
  await chmod(keyPath, 0o600); // in case someone loosened it
  const caKey = createPrivateKey(keyPem);
  if (crtPem === null) {
    // Also the way back from a crash between writing ca.key and ca.crt. The pin is a hash of
    // the public key only, so a certificate rebuilt from the kept key keeps every pin valid.
    crtPem = signCertificate(caKey, {
      issuer: CA_NAME,
      subject: CA_NAME,
      publicKey: caKey,
      notBefore: new Date(now.getTime() - BACKDATE),
      notAfter: new Date(now.getTime() + CA_DAYS * DAY),
      ca: true,
    });
    writeFileAtomic(crtPath, crtPem, 0o600);
  } else if (!spkiOf(new X509Certificate(crtPem).publicKey).equals(spkiOf(caKey))) {
    throw new Error(`${crtPath} does not belong to ${keyPath}: restore the pair (machines pinned this CA)`);
  }
  return { caKey, caPem: crtPem };
}

interface Names {
  dns: string[];
  ips: string[];
}

function wantedNames(opts: TlsOptions): Names {
  const dns = new Set(['localhost']);
  const ips = new Set(['127.0.0.1', '::1']);
  for (const h of opts.hostnames) {
    // An address given as a hostname belongs in an IP SAN, or clients will not match it.
    if (isIP(unbracket(h))) ips.add(unbracket(h));
    else dns.add(dnsNameOf(h));
  }
  for (const ip of opts.ips) {
    if (!isIP(unbracket(ip))) throw new Error(`not an IP address: ${ip}`);
    ips.add(unbracket(ip));
  }
  return { dns: [...dns], ips: [...ips] };
}

/** The SAN form of a host name: punycode for international names (a dNSName is ASCII); anything else is refused. */
function dnsNameOf(h: string): string {
  const name = toDnsName(h);
  if (name === null) throw new Error(`not a DNS name: ${JSON.stringify(h)}`);
  return name;
}

/**
 * Reusable when it is ours (this CA, this key), names everything wanted and is not near expiry.
 * Near: less than RENEW_DAYS or a third of its life left, unless it already ends with the CA
 * (a new one could last no longer; the CA's own end is warned about, see tls-renewal.ts).
 */
function serverCertFits(keyPem: string, crtPem: string, caPem: string, want: Names, now: Date): boolean {
  try {
    const cert = new X509Certificate(crtPem);
    const ca = new X509Certificate(caPem);
    if (!cert.verify(ca.publicKey)) return false;
    if (!spkiOf(cert.publicKey).equals(spkiOf(createPrivateKey(keyPem)))) return false;
    const [from, to] = [new Date(cert.validFrom).getTime(), new Date(cert.validTo).getTime()];
    const renewBefore = Math.min(RENEW_DAYS * DAY, (to - from) / 3);
    if (to - now.getTime() < renewBefore && to < new Date(ca.validTo).getTime()) return false;
    if (from > now.getTime()) return false;
    // The same matching TLS clients do; `subject: 'never'` so only SANs count.
    return want.dns.every((h) => cert.checkHost(h, { subject: 'never' }) !== undefined) && want.ips.every((ip) => cert.checkIP(ip) !== undefined);
  } catch {
    return false; // unreadable: make a new one
  }
}

async function issueServerCert(caKey: KeyObject, caPem: string, want: Names, now: Date): Promise<{ key: string; cert: string }> {
  const key = await newKey();
  const caNotAfter = new Date(new X509Certificate(caPem).validTo).getTime();
  const cert = signCertificate(caKey, {
    issuer: CA_NAME,
    subject: want.dns.find((h) => h !== 'localhost') ?? 'Butter control plane',
    publicKey: createPrivateKey(key),
    notBefore: new Date(now.getTime() - BACKDATE),
    notAfter: new Date(Math.min(now.getTime() + SERVER_DAYS * DAY, caNotAfter)), // never outlive the CA
    dns: want.dns,
    ips: want.ips,
    authorityKey: caKey,
  });
  return { key, cert };
}

// ---- X.509 (RFC 5280) in DER, just the parts we use ----

export interface CertRequest {
  /** Common names; Butter's names are a single CN. */
  issuer: string;
  subject: string;
  /** The subject's key (a private key is fine: only its public half is used). */
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** A CA that signs only leaves (pathLen 0); otherwise a TLS server leaf. */
  ca?: boolean;
  dns?: string[];
  ips?: string[];
  /** Key whose identifier goes in authorityKeyIdentifier (the issuer's). */
  authorityKey?: KeyObject;
}

/**
 * Signs one ECDSA P-256 / SHA-256 certificate and returns its PEM. Used for our CA and server
 * certificates; exported so tests can also forge what an attacker would (a leaf that names our
 * CA as issuer but is signed by another key).
 */
export function signCertificate(signer: KeyObject, r: CertRequest): string {
  const spki = spkiOf(r.publicKey);
  const extensions = r.ca
    ? [
        ext('2.5.29.19', true, seq(bool(true), int(Buffer.from([0])))), // basicConstraints: CA, pathLen 0
        ext('2.5.29.15', true, bitString(Buffer.from([0x86]), 1)), // keyUsage: digitalSignature, keyCertSign, cRLSign
      ]
    : [
        ext('2.5.29.19', true, seq()), // basicConstraints: not a CA
        ext('2.5.29.15', true, bitString(Buffer.from([0x80]), 7)), // keyUsage: digitalSignature
        ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
        ext('2.5.29.17', false, seq(...(r.dns ?? []).map((d) => tlv(0x82, ia5(d))), ...(r.ips ?? []).map((ip) => tlv(0x87, ipBytes(ip))))),
      ];
  extensions.push(ext('2.5.29.14', false, octets(keyId(spki)))); // subjectKeyIdentifier
  if (r.authorityKey) extensions.push(ext('2.5.29.35', false, seq(tlv(0x80, keyId(spkiOf(r.authorityKey)))))); // = the issuer's SKI
  const tbs = seq(
    tlv(0xa0, int(Buffer.from([2]))), // version v3
    int(serial()),
    ecdsaSha256(),
    name(r.issuer),
    seq(time(r.notBefore), time(r.notAfter)),
    name(r.subject),
    spki,
    tlv(0xa3, seq(...extensions)),
  );
  const sig = sign('sha256', tbs, { key: signer, dsaEncoding: 'der' });
  const der = seq(tbs, ecdsaSha256(), bitString(sig, 0));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').trimEnd()}\n-----END CERTIFICATE-----\n`;
}

/** IA5String bytes; anything else would be mangled by a lossy encoding, so it is an error here. */
function ia5(s: string): Buffer {
  if ([...s].some((c) => c > '\x7f')) throw new Error(`not ASCII: ${JSON.stringify(s)} (DNS names go in as punycode)`);
  return Buffer.from(s, 'ascii');
}

function ecdsaSha256(): Buffer {
  return seq(oid('1.2.840.10045.4.3.2'));
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  if (n > 0xffff) throw new Error('DER value too long'); // far beyond any certificate we make
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}
function octets(b: Buffer): Buffer {
  return tlv(0x04, b);
}
function bool(v: boolean): Buffer {
  return tlv(0x01, Buffer.from([v ? 0xff : 0]));
}
/** Unsigned big-endian magnitude → DER INTEGER (a leading 0 keeps it positive). */
function int(b: Buffer): Buffer {
  return tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}
function bitString(b: Buffer, unusedBits: number): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), b]));
}
/** Name with a single CN, as UTF8String. */
function name(cn: string): Buffer {
  return seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}
/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }. */
function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after. */
function time(d: Date): Buffer {
  const s = d.toISOString().replace(/\.\d+/, '').replace(/[-:T]/g, ''); // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(s.slice(2), 'ascii')) : tlv(0x18, Buffer.from(s, 'ascii'));
}

/** 16 random bytes, first byte non-zero and top bit clear: a positive serial of minimal encoding. */
function serial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b;
}

/** Key identifier: SHA-1 of the SubjectPublicKeyInfo (any stable unique value is allowed; SKI and AKI agree). */
function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and an embedded dotted IPv4 tail into eight 16-bit groups.
  let s = ip.split('%')[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [p, q, r, t] = v4[1]!.split('.').map(Number);
    s = s.slice(0, v4.index) + `${((p! << 8) | q!).toString(16)}:${((r! << 8) | t!).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

// ---- keys and files ----

function spkiOf(k: KeyObject): Buffer {
  return (k.type === 'private' ? createPublicKey(k) : k).export({ type: 'spki', format: 'der' });
}

async function newKey(): Promise<string> {
  const { privateKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function unbracket(s: string): string {
  return s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
