/**
 * A VPN peer's WireGuard key pair, made where the panel runs (WebCrypto X25519): the private
 * half never leaves this browser; only the public half is sent (`POST …/peers`). Browsers
 * without X25519 in WebCrypto get null, and the page asks for a public key to paste instead.
 */

export interface BrowserWireguardKey {
  privateKey: string;
  publicKey: string;
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * WireGuard's keys are raw X25519 keys in base64: the JWK's `d` (private) and the raw
 * public key are exactly those bytes (WireGuard clamps the scalar itself, as X25519 does).
 */
export async function makeWireguardKey(subtle: SubtleCrypto | null | undefined = globalThis.crypto?.subtle): Promise<BrowserWireguardKey | null> {
  if (!subtle) return null; // not a secure context (plain HTTP to a remote host)
  try {
    const pair = (await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair;
    const jwk = await subtle.exportKey('jwk', pair.privateKey);
    const pub = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
    if (!jwk.d || pub.length !== 32) return null;
    return { privateKey: base64(fromBase64url(jwk.d)), publicKey: base64(pub) };
  } catch {
    return null; // X25519 not implemented here
  }
}
