/**
 * Trust in the control plane's private CA, the kubeadm way: the user brings `sha256:<hex>` of
 * the CA's public key (printed by `butter server`); one unverified handshake fetches the chain,
 * we keep the CA whose key has that hash only if it really signed the server's certificate, and
 * from then on every request is verified TLS against that CA alone.
 */
import { X509Certificate, createHash, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, type DetailedPeerCertificate } from 'node:tls';
import { http2Fetch, type ClosableFetch } from './h2-fetch.ts';

const DISCOVERY_TIMEOUT_MS = 10_000;

/** Nothing answered the handshake: worth trying again later, unlike a CA that does not match. */
export class ControlPlaneUnreachable extends Error {
  override name = 'ControlPlaneUnreachable';
}

/** The CA hash (`sha256:` of its SubjectPublicKeyInfo) of a CA certificate in PEM. */
export function caHashOfPem(pem: string): string {
  return spkiHash(new X509Certificate(pem).publicKey);
}

/** Connects to `url` (https only), finds the CA whose public key hashes to `caHash`, checks it issued the server's certificate, and returns its PEM. */
export async function fetchPinnedCa(url: string, caHash: string): Promise<string> {
  const u = parseHttps(url, 'the CA can only be checked over TLS');
  const want = normalizeHash(caHash);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 443);
  const { chain, leafInfo } = await peerChain(host, port);
  const leaf = chain[0]!;
  const ca = chain.find((c) => spkiHash(c.publicKey) === want);
  if (!ca) {
    // Show what the server did offer: its CA(s), or only its leaf when it sent no chain.
    const offered = (chain.length > 1 ? chain.slice(1) : chain).map((c) => `${spkiHash(c.publicKey)} (${c.subject.replace(/\n/g, ', ')})`);
    throw new Error(
      `CA hash does not match: ${u.host} did not present a CA with ${want}; it offered ${offered.join('; ')}. ` +
        'Do not proceed: this may not be your control plane, or someone is in between. Check the hash `butter server` printed.',
    );
  }
  if (ca === leaf || !ca.ca) throw new Error(`the certificate with ${want} is not a CA certificate at ${u.host}; refusing to trust it`);
  // Sending our CA proves nothing (it is public): the server's own certificate must be signed by
  // that CA's key, directly or through intermediates it sent that are themselves signed.
  if (!chainsTo(leaf, ca, chain)) {
    throw new Error(
      `the certificate of ${u.host} is not signed by the pinned CA ${want} (the CA was only sent along). ` +
        'Do not proceed: this is not your control plane, or someone is in between.',
    );
  }
  // The verified requests that follow check the name too; saying so now is clearer.
  const nameError = checkServerIdentity(host, leafInfo);
  if (nameError) throw new Error(`the control plane's certificate does not cover ${host}: ${nameError.message}`);
  return ca.toString();
}

export type TrustingFetch = ClosableFetch;

/**
 * A fetch that trusts only `caPem` (not the system store), with certificate and hostname
 * verification on, and refuses plain http so a token never leaves unencrypted. All its
 * requests share one HTTP/2 connection per control plane (h2-fetch.ts). `close()` drops it.
 */
export function trustingFetch(caPem: string): TrustingFetch {
  const h2 = http2Fetch({ ca: caPem });
  const f = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    parseHttps(String(input), 'refusing to send a request in clear to a control plane pinned by its CA');
    return h2(input, init);
  };
  return Object.assign(f, { close: () => h2.close() });
}

function parseHttps(url: string, why: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a URL: ${url}`);
  }
  if (u.protocol !== 'https:') throw new Error(`${url} is not https:// — ${why}; use https://${u.host}`);
  return u;
}

function normalizeHash(h: string): string {
  const m = /^sha256:([0-9a-f]{64})$/i.exec(h.trim());
  if (!m) throw new Error(`bad CA hash ${JSON.stringify(h)}: expected sha256:<64 hex digits>, as printed by \`butter server\``);
  return `sha256:${m[1]!.toLowerCase()}`;
}

/** The kubeadm discovery hash of a key; the same as `caHashOf` on the server (the SDK does not import the server). */
function spkiHash(key: KeyObject): string {
  return `sha256:${createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** True when a path leaf → intermediates (from `pool`) → ca exists with every signature checked. */
function chainsTo(leaf: X509Certificate, ca: X509Certificate, pool: X509Certificate[]): boolean {
  const issued = (parent: X509Certificate, child: X509Certificate): boolean => child.checkIssued(parent) && child.verify(parent.publicKey);
  let cur = leaf;
  for (let depth = 0; depth < pool.length; depth++) {
    if (issued(ca, cur)) return true;
    const next = pool.find((p) => p !== cur && p !== ca && p !== leaf && p.ca && issued(p, cur));
    if (!next) return false;
    cur = next;
  }
  return false;
}

/** One TLS handshake without verification (discovery only) to read the certificates the server sends. */
function peerChain(host: string, port: number): Promise<{ chain: X509Certificate[]; leafInfo: DetailedPeerCertificate }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, servername: isIP(host) ? undefined : host, rejectUnauthorized: false }, () => {
      try {
        const leafInfo = sock.getPeerCertificate(true);
        const chain: X509Certificate[] = [];
        const seen = new Set<string>();
        // node links issuerCertificate by name/key id among what the server sent (a self-signed root points at itself).
        for (let c: DetailedPeerCertificate | undefined = leafInfo; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
          seen.add(c.fingerprint256);
          chain.push(new X509Certificate(c.raw));
        }
        if (chain.length === 0) throw new Error(`${host}:${port} sent no certificate`);
        resolve({ chain, leafInfo });
      } catch (e) {
        reject(e as Error);
      } finally {
        sock.destroy();
      }
    });
    sock.setTimeout(DISCOVERY_TIMEOUT_MS, () => sock.destroy(new ControlPlaneUnreachable(`timed out reaching ${host}:${port}`)));
    sock.once('error', (e) => reject(e instanceof ControlPlaneUnreachable ? e : new ControlPlaneUnreachable(`cannot reach the control plane at ${host}:${port}: ${e.message}`)));
  });
}
